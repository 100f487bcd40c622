"""Each alert as an Atom feed file (``archive/alerts/NAME.xml``), so that any feed reader can subscribe to it.

One entry per match, newest first, with the passage that matched; the file is written again, whole and in one
rename, after each run that found something new.
"""

from __future__ import annotations

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


def path(directory: Path, name: str) -> Path:
    return directory / FOLDER / f"{name}.xml"


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


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, f"{{{_ATOM}}}{tag}").text = text


def _time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
