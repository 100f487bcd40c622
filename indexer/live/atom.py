"""Atom feed files: where each alert's is (``archive/alerts/NAME.xml``), so that any feed reader can subscribe to
it, and writing one, whole and in one rename (what goes in it is :func:`indexer.live.alerts.write_feed`'s)."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from indexer.storage import layout

FOLDER = "alerts"
LATEST = 200  # entries a feed file holds: readers keep what they have read
_ATOM = "http://www.w3.org/2005/Atom"
MAX_NAME_BYTES = 200  # a file name holds 255 bytes on most file systems; ".xml" and room to spare
_PLAIN = re.compile(r"[^/\\\x00-\x1f\x7f]+")  # what an alert name may hold to be its file's name as it is
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold


def path(directory: Path, name: str) -> Path:
    """Alert ``name``'s feed file: ``NAME.xml``, or -- for a name no file can have (too long, a slash, control
    characters), which an archive from before names were checked may hold -- a name made from it and its hash."""
    if _PLAIN.fullmatch(name) and len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES:
        return directory / FOLDER / f"{name}.xml"
    slug = re.sub(r"[^\w.-]+", "-", name)[:40].strip(".-") or "alert"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return directory / FOLDER / f"{slug}-{digest}.xml"


@dataclass(frozen=True)
class Entry:
    """One entry of a feed: ``summary`` is its text, ``link`` the page it is about."""

    id: str
    title: str
    updated: datetime
    summary: str
    link: str | None = None
    published: datetime | None = None


def write(target: Path, feed_id: str, title: str, updated: datetime, entries: Iterable[Entry]) -> None:
    """Write an Atom feed file, whole and in one rename."""
    ET.register_namespace("", _ATOM)
    feed = ET.Element(f"{{{_ATOM}}}feed")
    _text(feed, "id", feed_id)
    _text(feed, "title", title)
    _text(feed, "updated", _time(updated))
    author = ET.SubElement(feed, f"{{{_ATOM}}}author")
    _text(author, "name", "newsarchive")
    _text(feed, "generator", "newsarchive")
    for item in entries:
        entry = ET.SubElement(feed, f"{{{_ATOM}}}entry")
        _text(entry, "id", item.id)
        _text(entry, "title", item.title)
        if item.link:
            ET.SubElement(entry, f"{{{_ATOM}}}link", href=item.link, rel="alternate")
        _text(entry, "updated", _time(item.updated))
        if item.published:
            _text(entry, "published", _time(item.published))
        _text(entry, "summary", item.summary)
    target.parent.mkdir(exist_ok=True)
    layout.write_atomically(target, ET.tostring(feed, encoding="utf-8", xml_declaration=True))


def _text(parent: ET.Element, tag: str, text: str | None) -> None:
    ET.SubElement(parent, f"{{{_ATOM}}}{tag}").text = _NOT_XML.sub("", text) if text else text


def _time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
