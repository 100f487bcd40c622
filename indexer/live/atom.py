"""Each alert as an Atom feed file (``archive/alerts/NAME.xml``), so that any feed reader can subscribe to it.

One entry per match, newest first, with the passage that matched; the file is written again, whole and in one
rename, after each run that found something new.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..storage import layout

if TYPE_CHECKING:
    from .alerts import Alert, Match

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


def write(directory: Path, alert: Alert, matches: list[Match]) -> Path:
    """Write alert ``alert``'s feed file from its matches (newest first)."""
    ET.register_namespace("", _ATOM)
    feed = ET.Element(f"{{{_ATOM}}}feed")
    _text(feed, "id", f"urn:newsarchive:alert:{alert.name}")
    _text(feed, "title", f"newsarchive alert {alert.name}: {alert.query}")
    _text(feed, "updated", _time(matches[0].matched_at if matches else alert.created_at))
    author = ET.SubElement(feed, f"{{{_ATOM}}}author")
    _text(author, "name", "newsarchive")
    _text(feed, "generator", "newsarchive")
    for match in matches[:LATEST]:
        entry = ET.SubElement(feed, f"{{{_ATOM}}}entry")
        _text(entry, "id", f"urn:newsarchive:alert:{alert.name}:{match.article_id}")
        _text(entry, "title", match.title)
        if match.url:
            ET.SubElement(entry, f"{{{_ATOM}}}link", href=match.url, rel="alternate")
        _text(entry, "updated", _time(match.matched_at))
        if match.published:
            _text(entry, "published", _time(match.published))
        source = f" ({match.source})" if match.source else ""
        _text(entry, "summary", f"{match.passage}{source}")
    target = path(directory, alert.name)
    target.parent.mkdir(exist_ok=True)
    layout.write_atomically(target, ET.tostring(feed, encoding="utf-8", xml_declaration=True))
    return target


def _text(parent: ET.Element, tag: str, text: str | None) -> None:
    ET.SubElement(parent, f"{{{_ATOM}}}{tag}").text = _NOT_XML.sub("", text) if text else text


def _time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
