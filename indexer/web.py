"""Articles from the web: saved HTML pages, RSS and Atom feeds, and URLs.

trafilatura finds a page's main text (without navigation, ads or comments) and its metadata; feedparser reads
feeds, one article per entry. A feed entry that carries only a summary gets its page's main text when the page can
be fetched (:mod:`indexer.fetching`). A URL that fails is one :class:`InputProblem`: the rest is still read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import fetching
from .errors import InputProblem

HTML_SUFFIXES = (".html", ".htm")
FEED_SUFFIXES = (".rss", ".atom", ".xml")
MIN_TEXT_CHARS = 30  # less main text than this is a page of links ("Home"), not an article
SUMMARY_CHARS = 600  # a feed entry's text shorter than this is a summary, and its page is fetched
_PUBLISHED_KEYS = {"article:published_time", "og:article:published_time", "datepublished", "pubdate", "publishdate"}
_FEED_START = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(rss|feed|rdf:RDF)\b", re.S)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def url_id(url: str) -> str:
    """A stable article id for a URL: its host and path, slashes made dashes (ids cannot hold slashes)."""
    parts = urlsplit(url)
    name = parts.netloc.removeprefix("www.") + parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    name = re.sub(r"[/\\\s\x00-\x1f]+", "-", name).strip("-")
    if len(name) > 150:  # long ids are unwieldy in SQL; the hash keeps them apart
        name = f"{name[:140]}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"
    return name


def fetch(url: str) -> tuple[bytes, str]:
    """The body of ``url`` and its content type (:func:`indexer.fetching.get`).

    Raises:
        InputProblem: The server answered with an error, did not answer in time, or cannot be reached.
    """
    response = fetching.get(url)
    return response.body, response.content_type


def read_url(url: str) -> Iterator[Any]:
    """The article at ``url``, or every entry of the feed there; a failure is one :class:`InputProblem`."""
    try:
        body, content_type = fetch(url)
    except InputProblem as problem:
        yield problem
        return
    feed = "rss" in content_type or "atom" in content_type or bool(_FEED_START.match(body[:2000]))
    yield from read_document(url, body, feed)


def read_document(where: str, body: bytes, feed: bool) -> Iterator[Any]:
    """The entries of a feed, or the one article of a page, from a file or a URL (``where``).

    What cannot be read is an :class:`InputProblem`, never raised.
    """
    if feed:
        yield from read_feed(where, body)
        return
    try:
        yield read_page(where, body)
    except InputProblem as problem:
        yield problem


def page_fields(html: bytes | str, url: str | None = None) -> dict[str, Any] | None:
    """A page's main text and metadata (``title``, ``text``, ``published``, ``source``, ``url``, ``language``,
    ``author``).

    ``None`` when trafilatura finds no main text.
    """
    import trafilatura

    document = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        date_extraction_params={"original_date": True},
    )
    if document is None or len((document.text or "").strip()) < MIN_TEXT_CHARS:
        return None
    stated = page_metadata(html)
    return {
        "title": document.title,
        "text": document.text,
        "source": document.sitename or document.hostname,
        "url": document.url or url,
        "language": stated["language"],
        "published": first_date(stated["published"], document.date),
        "author": document.author,
    }


def page_metadata(html: bytes | str) -> dict[str, str | None]:
    """The language and publication time a page's markup states.

    The language is ``<html lang>`` (else content-language) as a two-letter code; the time is
    ``article:published_time`` and kin, else JSON-LD ``datePublished``, which keep the time of day and the zone
    that trafilatura's date drops.
    """
    from lxml import etree
    from lxml import html as lxml_html

    try:
        root = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return {"language": None, "published": None}
    language = root.get("lang")
    published = None
    for meta in root.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key == "content-language" or (meta.get("http-equiv") or "").lower() == "content-language":
            language = language or meta.get("content")
        elif key in _PUBLISHED_KEYS and meta.get("content") and published is None:
            published = meta.get("content").strip()
    if published is None:
        for script in root.iter("script"):
            match = re.search(r'"datePublished"\s*:\s*"([^"]+)"', script.text or "")
            if script.get("type") == "application/ld+json" and match:
                published = match.group(1)
                break
    code = re.match(r"[A-Za-z]{2,3}\b", (language or "").strip())
    return {"language": code.group(0).lower() if code else None, "published": published}


def read_page(where: str, html: bytes | str) -> Any:
    """One HTML page (from a file or a URL) as an article; its id is from its canonical URL, else the file's name.

    Raises:
        InputProblem: The page holds no article text.
    """
    from .articles import make_article

    fields = page_fields(html, where if is_url(where) else None)
    if fields is None:
        raise InputProblem(where, "no article text found in this page")
    article_id = url_id(fields["url"]) if is_url(where) and fields["url"] else Path(where).stem
    return make_article(where, fields, article_id)


def read_feed(where: str, content: bytes) -> Iterator[Any]:
    """Every entry of an RSS or Atom feed as an article, with the entry's date, link and the feed's title as source.

    An entry whose text is only a summary gets its page's main text when the page answers.
    """
    parsed = parse_feed(where, content)
    if isinstance(parsed, InputProblem):
        yield parsed
        return
    for number, entry in enumerate(parsed.entries, start=1):
        yield entry_article(where, parsed, entry, number)


def parse_feed(where: str, content: bytes) -> Any:
    """The feed as feedparser reads it (``.feed``, ``.entries``), or an :class:`InputProblem` saying what is wrong."""
    import feedparser

    feed = feedparser.parse(content)
    if not feed.entries:
        reason = getattr(feed, "bozo_exception", None)
        return InputProblem(where, f"not a feed, or a feed without entries{f' ({reason})' if reason else ''}")
    return feed


def entry_key(entry: Any) -> str | None:
    """What names an entry from one fetch of its feed to the next: its id, else its link."""
    return entry.get("id") or entry.get("link") or None


def entry_article(where: str, feed: Any, entry: Any, number: int, source: str | None = None) -> Any:
    """Entry ``number`` of ``feed`` (from :func:`parse_feed`) as an article, or an :class:`InputProblem`; an entry
    whose text is only a summary gets its page's main text when the page answers. ``source`` replaces the feed's
    title as the article's source."""
    from .articles import make_article

    link = entry.get("link")
    contents = [c.get("value", "") for c in entry.get("content", [])]
    text = _html_text(max(contents, key=len) if contents else entry.get("summary", ""))
    fields = {
        "title": entry.get("title"),
        "text": text,
        # "updated" only when needed: feedparser warns when it is asked for and only "published" exists.
        "published": first_date(entry.get("published")) or first_date(entry.get("updated")),
        "source": source or feed.feed.get("title"),
        "url": link,
        "language": (entry.get("language") or feed.feed.get("language") or "")[:2] or None,
        "author": entry.get("author"),
    }
    if link and is_url(link) and len(text) < SUMMARY_CHARS:
        try:
            page = page_fields(fetch(link)[0], link)
        except InputProblem:
            page = None  # the summary is indexed instead
        if page is not None:
            fields = {**page, **{k: v for k, v in fields.items() if v and k != "text"}, "text": page["text"]}
    article_id = url_id(link) if link and is_url(link) else str(entry.get("id") or f"{Path(where).stem}-{number}")
    try:
        if not (fields["text"] or "").strip():
            raise InputProblem(where, f"feed entry {number} has no text", number)
        return make_article(where, fields, article_id, number)
    except InputProblem as problem:
        return problem


def first_date(*candidates: str | None) -> str | None:
    """The first of these dates that can be read: a page's or feed's unreadable date is left out, not an error."""
    from .articles import parse_published

    for candidate in candidates:
        try:
            if candidate and parse_published(candidate):
                return candidate
        except InputProblem:
            continue
    return None


def _html_text(html: str) -> str:
    """The text of an HTML fragment (a feed entry's content), a paragraph a line."""
    if "<" not in html:
        return html.strip()
    from lxml import html as lxml_html

    try:
        root = lxml_html.fragment_fromstring(html, create_parent="div")
    except Exception:  # noqa: BLE001 -- lxml raises several kinds on broken markup; the raw text will do
        return re.sub(r"<[^>]+>", " ", html).strip()
    for block in root.iter("p", "br", "div", "li", "h1", "h2", "h3", "h4"):
        block.tail = "\n" + (block.tail or "")
    return "\n".join(line.strip() for line in root.text_content().splitlines() if line.strip())
