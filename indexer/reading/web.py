"""Articles from the web: saved HTML pages, RSS and Atom feeds, and URLs.

trafilatura finds a page's main text (without navigation, ads or comments) and its metadata; feedparser reads
feeds, one article per entry. A feed entry that carries only a summary gets its page's main text when the page can
be fetched (:mod:`indexer.reading.fetching`): the pages of a feed's entries are fetched several at once, all within
:data:`PAGES_BUDGET`, and only where the fetch policy allows (:func:`indexer.reading.fetching.get_link`). A URL, a feed
or an entry that fails is one :class:`InputProblem`: the rest is still read.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from indexer.errors import InputProblem, Note, unforeseen
from indexer.reading import fetching
from indexer.reading.fetch_policy import shown

log = logging.getLogger(__name__)

HTML_SUFFIXES = (".html", ".htm")
FEED_SUFFIXES = (".rss", ".atom", ".xml")
MIN_TEXT_CHARS = 30  # less main text than this is a page of links ("Home"), not an article
SUMMARY_CHARS = 600  # a feed entry's text shorter than this is a summary, and its page is fetched
PAGES_AT_ONCE = 8  # pages of one feed's entries fetched at the same time
PAGES_BUDGET = 60.0  # seconds for all the pages of one feed's entries: those not in by then keep their summary
REFUSALS_SHOWN = 3  # links of one feed refused by the fetch policy, each a line; the rest are counted
_PUBLISHED_KEYS = {"article:published_time", "og:article:published_time", "datepublished", "pubdate", "publishdate"}
# What may come before a feed's root: the XML declaration, comments, a stylesheet (<?xml-stylesheet?>), a DOCTYPE.
_FEED_START = re.compile(rb"^\s*(?:(?:<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*>)\s*)*<(rss|feed|rdf:RDF)\b", re.S | re.I)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def looks_like_feed(body: bytes) -> bool:
    """Whether a document starts as an RSS, RDF or Atom feed does (a UTF-8 byte order mark first is allowed)."""
    return bool(_FEED_START.match(body[:4000].removeprefix(b"\xef\xbb\xbf")))


def url_id(url: str) -> str:
    """A stable article id for a URL: its host and path, slashes made dashes (ids cannot hold slashes).

    Raises:
        InputProblem: ``url`` cannot be read as a URL (``http://[::1/x``).
    """
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise InputProblem(shown(url), f"not a URL that can be read ({error})") from None
    name = parts.netloc.removeprefix("www.") + parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    name = re.sub(r"[/\\\s\x00-\x1f]+", "-", name).strip("-")
    if len(name) > 150:  # long ids are unwieldy in SQL; the hash keeps them apart
        name = f"{name[:140]}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"
    return name


def fetch(url: str) -> tuple[bytes, str]:
    """The body of ``url`` and its content type (:func:`indexer.reading.fetching.get`).

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
    feed = "rss" in content_type or "atom" in content_type or looks_like_feed(body)
    yield from read_document(url, body, feed)


def read_document(where: str, body: bytes, feed: bool) -> Iterator[Any]:
    """The entries of a feed, or the one article of a page, from a file or a URL (``where``).

    What cannot be read is an :class:`InputProblem`, never raised -- a failure nobody foresaw included, as the last
    line of what was read from ``where``.
    """
    try:
        if feed:
            yield from read_feed(where, body)
        else:
            yield read_page(where, body)
    except InputProblem as problem:
        yield problem
    except Exception as error:  # noqa: BLE001 -- a last resort: one input's fault must not stop the others
        log.debug("reading %s failed", shown(where), exc_info=True)
        yield InputProblem(shown(where), unforeseen(error))


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
    from indexer.reading.article import make_article

    fields = page_fields(html, where if is_url(where) else None)
    if fields is None:
        raise InputProblem(shown(where), "no article text found in this page")
    article_id = Path(where).stem
    if is_url(where):
        try:
            article_id = url_id(fields["url"] or where)
        except InputProblem:  # a canonical URL that cannot be read: the page's own
            article_id = url_id(where)
    return make_article(shown(where), fields, article_id)


def read_feed(where: str, content: bytes) -> Iterator[Any]:
    """Every entry of an RSS or Atom feed as an article, with the entry's date, link and the feed's title as source.

    An entry whose text is only a summary gets its page's main text when the page answers in time
    (:func:`read_entries`); what went wrong on the way follows the articles, a line each.
    """
    parsed = parse_feed(where, content)
    if isinstance(parsed, InputProblem):
        yield parsed
        return
    entries, notes = read_entries(where, parsed, range(1, len(parsed.entries) + 1))
    for entry in entries:
        yield entry.item
    yield from notes


def parse_feed(where: str, content: bytes) -> Any:
    """The feed as feedparser reads it (``.feed``, ``.entries``), or an :class:`InputProblem` saying what is wrong."""
    import feedparser

    feed = feedparser.parse(content)
    if not feed.entries:
        reason = getattr(feed, "bozo_exception", None)
        return InputProblem(shown(where), f"not a feed, or a feed without entries{f' ({reason})' if reason else ''}")
    return feed


def entry_key(entry: Any) -> str | None:
    """What names an entry from one fetch of its feed to the next: its id, else its link."""
    return entry.get("id") or entry.get("link") or None


@dataclass
class EntryRead:
    """Entry ``number`` of a feed as an :class:`~indexer.reading.article.Article`, or the :class:`InputProblem` that
    kept it out; ``page_late``: its page did not come in time, so its summary stands and it is worth reading again."""

    number: int
    item: Any
    page_late: bool = False


@dataclass
class _Draft:
    number: int
    fields: dict[str, Any]
    link: str | None  # the page to fetch for a summary
    article_id: str


def read_entries(
    where: str,
    feed: Any,
    numbers: Sequence[int],
    source: str | None = None,
    deadline: float | None = None,
) -> tuple[list[EntryRead], list[InputProblem]]:
    """Entries ``numbers`` (1-based) of ``feed`` (from :func:`parse_feed`), read from ``where`` (a file, or a URL
    the operator gave), as articles; ``source`` replaces the feed's title as their source.

    An entry whose text is only a summary gets its page's main text when the page answers: the pages are fetched
    :data:`PAGES_AT_ONCE` at a time, by ``deadline`` (a ``time.monotonic()``; default :data:`PAGES_BUDGET` from
    now), and only on public addresses or ``where``'s own site (:func:`indexer.reading.fetching.get_link`).

    Returns:
        The entries in order, and lines on what went wrong with their pages: each refused link, and how many pages
        did not come in time (their entries keep their summaries).
    """
    drafts = [_guarded(where, number, _draft, where, feed, number, source) for number in numbers]
    links = list(dict.fromkeys(d.link for d in drafts if isinstance(d, _Draft) and d.link))
    pages = _linked_pages(links, where, time.monotonic() + PAGES_BUDGET if deadline is None else deadline)
    read: list[EntryRead] = []
    refused: list[InputProblem] = []
    late = 0
    for draft in drafts:
        if isinstance(draft, EntryRead):
            read.append(draft)
            continue
        page = pages.get(draft.link) if draft.link else None
        if isinstance(page, fetching.FetchFailed) and page.reason.startswith("refused:") and page not in refused:
            refused.append(Note(page.path, f"{page.reason}; the entry's summary was indexed"))
        late += page is _LATE
        read.append(_guarded(where, draft.number, _article, where, draft, page))
    notes = refused[:REFUSALS_SHOWN]
    if len(refused) > REFUSALS_SHOWN:
        more = len(refused) - REFUSALS_SHOWN
        notes.append(Note(shown(where), f"{more} more of its entries' links were refused likewise"))
    if late:
        notes.append(
            Note(
                shown(where),
                f"{late} of its entries' pages did not come in time ({PAGES_BUDGET:g} s for a feed's pages, "
                f"{PAGES_AT_ONCE} at once); their summaries were indexed, and they are tried again next time",
            )
        )
    return read, notes


def _draft(where: str, feed: Any, number: int, source: str | None) -> _Draft:
    """What entry ``number`` says of itself, and the page to fetch when it holds only a summary.

    Raises:
        InputProblem: Its link is not a URL.
    """
    entry = feed.entries[number - 1]
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
    article_id = str(entry.get("id") or f"{Path(where).stem}-{number}")
    if link and is_url(link):
        try:
            article_id = url_id(link)
        except InputProblem as problem:
            raise InputProblem(shown(where), f"feed entry {number}: its link {problem}", number) from None
    wanted = link if link and is_url(link) and len(text) < SUMMARY_CHARS else None
    return _Draft(number, fields, wanted, article_id)


def _article(where: str, draft: _Draft, page: Any) -> EntryRead:
    """The entry of ``draft`` as an article, with the main text of its ``page`` (its body) when that has some."""
    from indexer.reading.article import make_article

    fields = draft.fields
    found = page_fields(page, draft.link) if isinstance(page, bytes) else None
    if found is not None:
        fields = {**found, **{k: v for k, v in fields.items() if v and k != "text"}, "text": found["text"]}
    if not (fields["text"] or "").strip():
        raise InputProblem(shown(where), f"feed entry {draft.number} has no text", draft.number)
    return EntryRead(draft.number, make_article(shown(where), fields, draft.article_id, draft.number), page is _LATE)


def _guarded(where: str, number: int, read: Any, *args: Any) -> Any:
    """``read(*args)`` for entry ``number``; what goes wrong is that entry's :class:`InputProblem`, a failure
    nobody foresaw included (an entry or a page that breaks a parser), and the feed's other entries are read."""
    try:
        return read(*args)
    except InputProblem as problem:
        return EntryRead(number, problem)
    except Exception as error:  # noqa: BLE001 -- a last resort: one entry's fault must not cost the feed
        log.debug("entry %s of %s could not be read", number, shown(where), exc_info=True)
        return EntryRead(number, InputProblem(shown(where), f"feed entry {number} {unforeseen(error)}", number))


_LATE = object()  # a page that did not come by the deadline


def _linked_pages(links: list[str], where: str, deadline: float) -> dict[str, Any]:
    """Each link's page body, its :class:`~indexer.reading.fetching.FetchFailed`, or ``_LATE`` when it did not come in
    time (by its own deadline or ``deadline``, or its turn came after ``deadline``)."""
    if not links:
        return {}
    found_in = where if is_url(where) else None

    def page(link: str) -> Any:
        if time.monotonic() >= deadline:
            return _LATE
        try:
            return fetching.get_link(link, found_in, client, deadline=deadline).body
        except fetching.FetchFailed as problem:
            return _LATE if problem.timed_out else problem

    with fetching.new_client() as client, ThreadPoolExecutor(min(PAGES_AT_ONCE, len(links))) as pool:
        # Each in a copy of this context: --allow-private rides in a context variable.
        futures = {link: pool.submit(contextvars.copy_context().run, page, link) for link in links}
        return {link: future.result() for link, future in futures.items()}


def first_date(*candidates: str | None) -> str | None:
    """The first of these dates that can be read: a page's or feed's unreadable date is left out, not an error."""
    from indexer.reading.article import parse_published

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
