"""One article as every reader makes it: its fields, its paragraphs and headings, its publication date."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from indexer.errors import InputProblem

METADATA_KEYS = ("id", "title", "source", "url", "published", "language", "author")
# A heading is a short line that does not end like a sentence.
_HEADING_MAX_CHARS = 100
_SENTENCE_END = tuple(".!?;:,…\"»”’'")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BAD_ID = re.compile(r"[/\\\x00-\x1f]")


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of an article: ``article.text[start:end]``, under the section ``heading`` (if any)."""

    start: int
    end: int
    heading: str | None


@dataclass(frozen=True)
class Article:
    """One news article, as read from a file.

    ``text`` is the body below the title, section headings included; paragraph offsets point into it.
    """

    article_id: str
    title: str
    text: str
    paragraphs: tuple[Paragraph, ...]
    path: str
    source: str | None = None
    url: str | None = None
    published: datetime | None = None
    language: str | None = None
    author: str | None = None
    line: int | None = None  # its line in a JSONL file
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        published = self.published.isoformat() if self.published else None
        content = [self.title, self.text, self.source, self.url, published, self.language]
        if self.author:  # appended only when known: an upgraded index's articles keep their hashes
            content.append(self.author)
        digest = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()
        object.__setattr__(self, "content_hash", digest)


def printable_path(path: str | Path) -> str:
    """``path`` as text that can be printed and stored: bytes of its name that are not UTF-8 as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def valid_article_id(article_id: str) -> bool:
    """Whether ``article_id`` may name an article: not blank, without slashes or control characters."""
    return bool(article_id.strip()) and not _BAD_ID.search(article_id)


def make_article(where: str, fields: dict[str, Any], article_id: str, line: int | None = None) -> Article:
    """An article from extracted ``fields``: ``text``, and ``title`` and :data:`METADATA_KEYS` where known."""
    body = fields["text"].replace("\r\n", "\n").strip()
    title = fields.get("title") or first_line(body)
    first, _, rest = body.partition("\n")
    if " ".join(first.split()) == " ".join(str(title).split()) and rest.strip():
        body = rest.strip()  # pages repeat their headline above the text: it is the title, not a paragraph
    meta = {key: fields[key] for key in METADATA_KEYS if fields.get(key) is not None}
    return build_article(where, meta, article_id, str(title), body, plain_paragraphs(body), line)


def build_article(
    path: str | Path,
    meta: dict[str, Any],
    article_id: str,
    title: str,
    body: str,
    paragraphs: list[Paragraph],
    line: int | None = None,
) -> Article:
    if not valid_article_id(article_id):
        raise InputProblem(
            str(path), f"article id {article_id!r} must be non-empty, without slashes or control characters", line
        )
    if not paragraphs:
        # An article that is only a title is still findable by its title.
        body, paragraphs = title, [Paragraph(0, len(title), None)]
    for value in (str(path), article_id, title, body, *meta.values()):
        if isinstance(value, str) and not is_text(value):
            reason = "holds an unpaired surrogate (a \\ud800-\\udfff escape): not text"
            raise InputProblem(printable_path(path), reason, line)
    return Article(
        article_id=article_id,
        title=" ".join(title.split()),
        text=body,
        paragraphs=tuple(paragraphs),
        path=str(path),
        source=_optional_str(meta.get("source")),
        url=_optional_str(meta.get("url")),
        published=parse_published(meta.get("published"), str(path), line),
        language=_optional_str(meta.get("language")),
        author=_optional_str(meta.get("author")),
        line=line,
    )


def split_title(text: str, markdown: bool) -> tuple[str, str]:
    """The first non-empty line is the title (a leading ``#`` heading, in Markdown); the rest is the body."""
    stripped = text.lstrip()
    first, _, rest = stripped.partition("\n")
    heading = _MD_HEADING.match(first) if markdown else None
    title = heading.group(1) if heading else first.strip()
    return title, rest.strip()


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][: _HEADING_MAX_CHARS * 2]


def _line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line's content with surrounding blanks removed; a blank line gives start == end."""
    spans = []
    offset = 0
    for line in text.split("\n"):
        lead = len(line) - len(line.lstrip())
        spans.append((offset + lead, offset + max(lead, len(line.rstrip()))))
        offset += len(line) + 1
    return spans


def is_heading(line: str) -> bool:
    """Whether a line of plain text reads as a section heading: short, and not ending like a sentence."""
    line = line.strip()
    return 0 < len(line) <= _HEADING_MAX_CHARS and not line.endswith(_SENTENCE_END)


def plain_paragraphs(body: str) -> list[Paragraph]:
    """Paragraphs of plain text.

    Where blank lines separate blocks, each block is a paragraph (hard-wrapped lines stay together); otherwise
    each line is one. A short unpunctuated line on its own, followed by more text, is a heading: context for
    what follows.
    """
    spans = _line_spans(body)
    blocks: list[list[tuple[int, int]]] = []
    has_blank_separators = any(start == end for start, end in spans)
    for start, end in spans:
        if start == end:
            if blocks and blocks[-1]:
                blocks.append([])
        elif has_blank_separators and blocks and blocks[-1]:
            blocks[-1].append((start, end))
        else:
            blocks.append([(start, end)])
    blocks = [block for block in blocks if block]
    paragraphs: list[Paragraph] = []
    heading = None
    for index, block in enumerate(blocks):
        first_start, first_end = block[0]
        first_line = body[first_start:first_end]
        # A heading stands alone, with text after it: in a hard-wrapped block, a short first line is just a line.
        if len(block) == 1 and is_heading(first_line) and index + 1 < len(blocks):
            heading = first_line
            continue
        paragraphs.append(Paragraph(block[0][0], block[-1][1], heading))
    return paragraphs


def markdown_paragraphs(body: str) -> list[Paragraph]:
    """Paragraphs of Markdown: blocks separated by blank lines, under the latest ``#`` heading."""
    paragraphs: list[Paragraph] = []
    heading = None
    block: list[tuple[int, int]] = []

    def close() -> None:
        if block:
            paragraphs.append(Paragraph(block[0][0], block[-1][1], heading))
            block.clear()

    for start, end in _line_spans(body):
        match = _MD_HEADING.match(body[start:end])
        if start == end or match:
            close()
            if match:
                heading = match.group(1) or None
        else:
            block.append((start, end))
    close()
    return paragraphs


def parse_published(value: Any, path: str = "", line: int | None = None) -> datetime | None:
    """Read a publication date (ISO 8601 or a common written form) as an aware datetime; naive means UTC.

    Raises:
        InputProblem: ``value`` is not a date, or not one an archive can store: in UTC, between the years 1 and
            9999 (``9999-12-31T23:59:59-14:00`` is in the year 10000 there).
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        from dateutil import parser

        try:
            moment = parser.isoparse(str(value))
        except (ValueError, OverflowError):
            try:
                moment = parser.parse(str(value))
            except (ValueError, OverflowError):
                raise InputProblem(path, f"published: cannot read {_short(value)} as a date", line) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    try:
        moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        reason = f"published: {_short(value)} is outside the dates an archive stores (the years 1 to 9999 in UTC)"
        raise InputProblem(path, reason, line) from None
    return moment


def _short(value: Any) -> str:
    """``value`` quoted for a message, cut short: a date field may hold anything."""
    text = repr(str(value))
    return text if len(text) <= 60 else text[:58] + "…" + text[-1]


def is_text(value: str) -> bool:
    """Whether ``value`` can be written as UTF-8: a JSON ``\\ud800`` escape makes a string that cannot."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _optional_str(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None
