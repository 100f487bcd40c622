"""Rounds of following feeds: each due feed is fetched, its new and changed entries indexed, and every feed's health
recorded, in one commit per round.

A round fetches before it takes the writer's lock, so a slow feed holds up no one, and fetches several feeds at
once, so a feed that hangs until the timeout holds up no other. Requests are conditional (the
feed's ``ETag`` and ``Last-Modified``): an unchanged feed answers 304 and costs nothing more. An entry seen in the
feed's previous fetch, unchanged (by a hash of what the feed says of it), is not read again: its page is not
fetched and nothing is embedded. A changed or new entry becomes an article as ``newsarchive index URL`` would make
it, and the index embeds it only if its text is new. A feed that fails is one line of the round's report and is
tried again later (:meth:`indexer.live.feeds.Feed.failed`); the other feeds go on. So does a feed whose reading
fails in a way nobody foresaw: a last resort records it as failed rather than letting it stop the round. A bad
entry is one line naming the feed and the entry; the rest of the feed is read.

Fetching has a budget: :data:`ROUND_BUDGET` for a round's feeds and their entries' pages, besides each request's
own deadline (:mod:`indexer.reading.fetch_policy`); a feed whose turn comes after it is fetched next round.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from indexer import config
from indexer.errors import IndexBusy, IndexNotFound, InputProblem, NewsarchiveError, unforeseen
from indexer.ingest.index import IndexReport, Ingestion, settings_of
from indexer.live.alerts import Match, run_alerts
from indexer.live.feeds import Feed, followed, from_table, to_table
from indexer.models.embedder import Embedder
from indexer.reading import fetch_policy, fetching, web
from indexer.reading.article import Article
from indexer.reading.fetch_policy import shown
from indexer.storage import Snapshot, Writer
from indexer.storage.tables import SCHEMAS

log = logging.getLogger(__name__)
IDLE_CHECK = 60  # seconds `follow` sleeps at most between rounds, so that a feed added meanwhile is soon fetched
FETCHING_AT_ONCE = 8  # feeds fetched at the same time (each from its own server, mostly)
ROUND_BUDGET = 120.0  # seconds for a round's fetching: its feeds, and the pages their entries link to


@dataclass
class Fetched:
    """One feed's part of a round: the feed after it, the articles of its new and changed entries, the entries it
    holds now (``None`` when it was not read: unchanged, or failed), and what could not be read."""

    feed: Feed
    articles: list[Article] = field(default_factory=list)
    entries: list[tuple[str, str, str]] | None = None  # (entry, entry_hash, article_id)
    problems: list[InputProblem] = field(default_factory=list)


@dataclass
class Round:
    """What one round did."""

    at: datetime
    fetched: list[Fetched]
    index: IndexReport
    seconds: float
    embedder: Embedder | None = None  # the model, once loaded: the next round reuses it
    matches: list[Match] = field(default_factory=list)  # what alerts found among the new articles

    def lines(self) -> list[str]:
        """The round in one line, then one line per feed that failed, per entry or article that was not indexed,
        and per alert match."""
        feeds = [item.feed for item in self.fetched]
        failed = [feed for feed in feeds if feed.failures]
        unchanged = sum(feed.last_status == 304 for feed in feeds)
        report = self.index
        first = (
            f"{self.at:%Y-%m-%d %H:%M:%S} round: {len(feeds)} feeds fetched ({unchanged} unchanged, {len(failed)} "
            f"failed); {report.added} new articles, {report.updated} updated; {self.seconds:.1f} s"
        )
        rest = [
            f"  {shown(feed.url)}: {feed.last_error} ({feed.failures} in a row; "
            f"next try {feed.next_due:%Y-%m-%d %H:%M})"
            for feed in failed
        ]
        rest += [f"  {problem}" for problem in self.index.problems]  # the feeds' problems, then the index's
        rest += [f"  alert {m.alert}: {m.title} ({m.url or m.article_id})" for m in self.matches]
        return [first, *rest]


def run_round(
    directory: str | Path | None = None,
    everything: bool = False,
    embedder: Embedder | None = None,
    now: datetime | None = None,
) -> Round:
    """Fetch the feeds that are due (``everything``: all of them) and index what is new, as one commit.

    Links in entries reach private addresses only inside :func:`indexer.reading.fetch_policy.allowing_private` (or with
    ``$NEWSARCHIVE_ALLOW_PRIVATE``).

    Raises:
        NewsarchiveError: No feed is followed there.
    """
    started = time.perf_counter()
    directory = config.index_dir(directory)
    now = now or datetime.now(timezone.utc)
    try:
        with Snapshot(directory) as snapshot:
            feeds = from_table(snapshot.table("feeds"))
            seen = _entries(snapshot.table("feed_entries"))
    except IndexNotFound:
        feeds = []
    if not feeds:
        raise NewsarchiveError(f"no feed is followed in {directory}/: follow one with `newsarchive feeds add URL`")
    due = [feed for feed in feeds if everything or feed.is_due(now)]
    if not due:
        return Round(now, [], IndexReport(), time.perf_counter() - started, embedder)
    deadline = time.monotonic() + ROUND_BUDGET
    with fetching.new_client() as client, ThreadPoolExecutor(FETCHING_AT_ONCE) as pool:
        # At once: a feed that hangs until the timeout holds up no other (httpx's client is thread-safe). Each in
        # a copy of this context: --allow-private rides in a context variable.
        futures = [
            pool.submit(contextvars.copy_context().run, _guarded, feed, seen.get(feed.url, {}), now, client, deadline)
            for feed in due
        ]
        fetched = [future.result() for future in futures]
    report = IndexReport(problems=[problem for item in fetched for problem in item.problems])
    with Writer(directory) as writer:
        ingestion = Ingestion(writer, settings_of(writer, directory, embedder), report, embedder)
        for _ in ingestion.add(_once(item.articles for item in fetched)):
            pass
        _record(writer, fetched)
        embedder = ingestion.embedder
    matches = run_alerts(directory, embedder) if report.added or report.updated else []
    return Round(now, fetched, report, time.perf_counter() - started, embedder, matches)


def follow(
    directory: str | Path | None = None,
    once: bool = False,
    embedder: Embedder | None = None,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    allow_private: bool = False,
) -> Round:
    """Run rounds until stopped, each when a feed is due (``once``: one round over every feed, then return);
    ``allow_private`` lets links in entries reach private addresses (:mod:`indexer.reading.fetch_policy`)."""
    with fetch_policy.allowing_private(allow_private):
        return _follow(directory, once, embedder, echo, sleep)


def _follow(
    directory: str | Path | None,
    once: bool,
    embedder: Embedder | None,
    echo: Callable[[str], None],
    sleep: Callable[[float], None],
) -> Round:
    while True:
        try:
            result = run_round(directory, everything=once, embedder=embedder)
        except IndexBusy as busy:
            if once:
                raise
            echo(f"round put off: {busy}")
            sleep(IDLE_CHECK)
            continue
        if result.fetched:
            for line in result.lines():
                echo(line)
        if once:
            return result
        embedder = result.embedder
        sleep(_until_due(directory))


def _until_due(directory: str | Path | None) -> float:
    with Snapshot(config.index_dir(directory)) as snapshot:
        due = [feed.next_due for feed in from_table(snapshot.table("feeds")) if feed.next_due]
    wait = (min(due) - datetime.now(timezone.utc)).total_seconds() if due else IDLE_CHECK
    return min(max(wait, 1.0), IDLE_CHECK)


def _guarded(feed: Feed, seen: dict[str, tuple[str, str]], now: datetime, client: Any, deadline: float) -> Fetched:
    """:func:`_fetch`, with a last resort: a feed whose reading fails in a way nobody foresaw is recorded as failed
    (and so tried again later, less and less often), and the round goes on."""
    if time.monotonic() >= deadline:
        why = f"not fetched: the round's {ROUND_BUDGET:g} s for fetching ran out before its turn; it is due next round"
        return Fetched(feed, problems=[InputProblem(shown(feed.url), why)])
    try:
        return _fetch(feed, seen, now, client, deadline)
    except Exception as error:  # noqa: BLE001 -- one feed's fault must not stop the round
        log.debug("reading the feed %s failed", shown(feed.url), exc_info=True)
        return Fetched(feed.failed(now, unforeseen(error), None))


def _fetch(feed: Feed, seen: dict[str, tuple[str, str]], now: datetime, client: Any, deadline: float) -> Fetched:
    try:
        response = fetching.get(feed.location or feed.url, feed.etag, feed.last_modified, client, deadline=deadline)
    except fetching.FetchFailed as problem:
        return Fetched(feed.failed(now, problem.reason, problem.status))
    health: dict[str, Any] = {"location": response.moved_to} if response.moved_to else {}
    health |= {"last_status": response.status}
    if response.status == 304:
        health |= {"etag": response.etag or feed.etag, "last_modified": response.last_modified or feed.last_modified}
        return Fetched(feed.fetched(now, entries_new=0, **health))
    parsed = web.parse_feed(feed.url, response.body)
    if isinstance(parsed, InputProblem):
        return Fetched(feed.failed(now, parsed.reason, response.status))
    result = Fetched(feed, entries=[])
    malformed = _malformed(parsed)
    if malformed:
        result.problems.append(InputProblem(shown(feed.url), f"{malformed}; the entries before it were read"))
    keys, changed = {}, []
    for number, entry in enumerate(parsed.entries, start=1):
        digest = _entry_hash(entry)
        key = web.entry_key(entry) or digest
        if seen.get(key, ("",))[0] == digest:
            result.entries.append((key, digest, seen[key][1]))
        else:
            keys[number] = (key, digest)
            changed.append(number)
    pages_by = min(time.monotonic() + web.PAGES_BUDGET, deadline)
    read, notes = web.read_entries(feed.url, parsed, changed, feed.source, pages_by)
    for entry in read:
        if isinstance(entry.item, InputProblem):
            result.problems.append(entry.item)
            continue
        result.articles.append(entry.item)
        if not entry.page_late:  # else read again next round, when its page may come
            result.entries.append((*keys[entry.number], entry.item.article_id))
    result.problems += notes
    late = any(entry.page_late for entry in read)  # no validators then: the next fetch reads the feed again
    validators = (None, None) if late else (response.etag, response.last_modified)
    health |= {"etag": validators[0], "last_modified": validators[1], "last_error": malformed}
    health |= {"entries_seen": len(parsed.entries), "entries_new": len(result.articles)}
    result.feed = feed.fetched(now, **health)
    return result


def _malformed(parsed: Any) -> str | None:
    """What is wrong with a feed's XML that feedparser read past, if anything (a wrong declared encoding is not)."""
    import xml.sax

    error = getattr(parsed, "bozo_exception", None)
    return f"malformed XML ({error})" if isinstance(error, xml.sax.SAXException) else None


def _record(writer: Writer, fetched: list[Fetched]) -> None:
    """Each fetched feed's health, and the entries of those read, into the writer's next commit; a feed removed or
    changed (`feeds add` again) since the round began keeps what was done to it."""
    current = {feed.url: feed for feed in followed(writer)}
    for item in fetched:
        if item.feed.url in current:
            now = current[item.feed.url]
            current[now.url] = dataclasses.replace(item.feed, every_seconds=now.every_seconds, source=now.source)
    writer.set_table("feeds", to_table(list(current.values())))
    read = [item for item in fetched if item.entries is not None and item.feed.url in current]
    if not read:
        return
    entries = writer.table("feed_entries")
    urls = pa.array([item.feed.url for item in read], pa.string())
    kept = entries.filter(pc.invert(pc.is_in(entries.column("url"), value_set=urls)))
    rows = [
        dict(zip(SCHEMAS["feed_entries"].names, (item.feed.url, *entry))) for item in read for entry in item.entries
    ]
    new = pa.Table.from_pylist(rows, schema=SCHEMAS["feed_entries"])
    writer.set_table("feed_entries", pa.concat_tables([kept, new]))


def _entries(table: pa.Table) -> dict[str, dict[str, tuple[str, str]]]:
    """feed url -> entry -> (entry_hash, article_id)."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for row in table.to_pylist():
        found.setdefault(row["url"], {})[row["entry"]] = (row["entry_hash"], row["article_id"])
    return found


def _entry_hash(entry: Any) -> str:
    """A hash of what a feed says of an entry: if it changes, the entry is read again."""
    # dict.get: feedparser's own get maps a missing "updated" to "published", with a warning
    fields = [dict.get(entry, key) for key in ("id", "link", "title", "summary", "published", "updated")]
    fields.append([content.get("value") for content in dict.get(entry, "content", [])])
    return hashlib.sha256(json.dumps(fields, default=str).encode()).hexdigest()[:32]


def _once(batches: Any) -> Any:
    """The articles of every feed, each id once: a story in two feeds is one article (the first feed's)."""
    ids: set[str] = set()
    for articles in batches:
        for article in articles:
            if article.article_id not in ids:
                ids.add(article.article_id)
                yield article
