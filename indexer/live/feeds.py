"""Followed feeds: which feeds an archive follows, how often, and how each one fared (the ``feeds`` table).

A feed is added with how often it is fetched (``every``, at most :data:`MAX_EVERY`); after each fetch its row
records the HTTP status, what went wrong if anything, the entries seen and new, and when it is next due. A failing
feed -- one that does not answer, or whose reading failed in any way -- is tried again later each time -- twice the
wait after each failure in a row, up to :data:`BACKOFF_CEILING` (or its own period, when longer) -- and at its own
pace again after one success.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from indexer import config
from indexer.errors import NewsarchiveError
from indexer.reading.fetch_policy import shown, site
from indexer.reading.web import is_url
from indexer.storage import Writer
from indexer.storage.tables import SCHEMAS

DEFAULT_EVERY = 15 * 60
MIN_EVERY = 60  # a feed asked for more often than once a minute is being hammered
MAX_EVERY = 365 * 86400  # a feed fetched less than once a year is not followed
BACKOFF_CEILING = 24 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Feed:
    """One followed feed, a row of the ``feeds`` table (see :data:`indexer.storage.tables.SCHEMAS`)."""

    url: str
    every_seconds: int
    added_at: datetime
    source: str | None = None
    location: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_fetch: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    entries_seen: int | None = None
    entries_new: int | None = None
    failures: int = 0
    next_due: datetime | None = None

    def is_due(self, now: datetime) -> bool:
        return self.next_due is None or self.next_due <= now

    def fetched(self, now: datetime, **health: object) -> Feed:
        """This feed after a fetch that went well (``health``: its status, validators, entry counts, and what was
        wrong with a feed read all the same)."""
        health = {"last_error": None} | health
        period = timedelta(seconds=min(self.every_seconds, MAX_EVERY))  # a period from before it was capped
        return dataclasses.replace(self, last_fetch=now, failures=0, next_due=now + period, **health)

    def failed(self, now: datetime, error: str, status: int | None) -> Feed:
        """This feed after a failed fetch: tried again after twice the wait of the failure before."""
        failures = self.failures + 1
        period = min(self.every_seconds, MAX_EVERY)
        wait = min(period * 2 ** min(failures, 64), max(BACKOFF_CEILING, period))
        return dataclasses.replace(
            self,
            last_fetch=now,
            last_status=status,
            last_error=error,
            failures=failures,
            next_due=now + timedelta(seconds=wait),
        )


def every(text: str) -> int:
    """Seconds in a period written ``90s``, ``15m``, ``2h`` or ``1d`` (a bare number is minutes).

    Raises:
        NewsarchiveError: It is not such a period, or is shorter than a minute or longer than a year.
    """
    match = re.fullmatch(r"\s*([0-9]{1,12})\s*([smhd]?)\s*", text.lower())
    if not match:
        raise NewsarchiveError(f"{text[:40]!r} is not a period: write 90s, 15m, 2h or 1d")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "m"]
    if seconds < MIN_EVERY:
        raise NewsarchiveError(f"every {text}: feeds are fetched at most once a minute")
    if seconds > MAX_EVERY:
        raise NewsarchiveError(f"every {text.strip()}: feeds are fetched at least once a year (365d at most)")
    return seconds


def to_table(feeds: list[Feed]) -> pa.Table:
    rows = [dataclasses.asdict(feed) for feed in feeds]
    return pa.Table.from_pylist(rows, schema=SCHEMAS["feeds"])


def from_table(table: pa.Table) -> list[Feed]:
    return [Feed(**row) for row in table.to_pylist()]


def followed(writer: Writer) -> list[Feed]:
    return from_table(writer.table("feeds"))


def add_feed(
    url: str,
    directory: str | Path | None = None,
    every_seconds: int = DEFAULT_EVERY,
    source: str | None = None,
    now: datetime | None = None,
) -> Feed:
    """Follow the feed at ``url`` (a commit); following one already followed changes its period and source.

    Raises:
        NewsarchiveError: ``url`` is not an http(s) URL, or ``every_seconds`` is out of range.
    """
    if not is_url(url) or site(url) is None:
        raise NewsarchiveError(f"{shown(url)!r}: a feed is followed by its http:// or https:// URL")
    if not MIN_EVERY <= every_seconds <= MAX_EVERY:
        raise NewsarchiveError(f"every {every_seconds} s: a feed is fetched between once a minute and once a year")
    from indexer.ingest.index import open_writer

    now = now or datetime.now(timezone.utc)
    with open_writer(config.index_dir(directory)) as writer:
        feeds = {feed.url: feed for feed in followed(writer)}
        old = feeds.get(url)
        feed = dataclasses.replace(old, every_seconds=every_seconds, source=source) if old else None
        feeds[url] = feed or Feed(url, every_seconds, now, source=source)
        writer.set_table("feeds", to_table(list(feeds.values())))
        return feeds[url]


def remove_feed(url: str, directory: str | Path | None = None) -> None:
    """Stop following the feed at ``url``; its articles stay (a commit).

    Raises:
        NewsarchiveError: It is not followed.
    """
    from indexer.ingest.index import open_writer

    directory = config.index_dir(directory)
    with open_writer(directory) as writer:
        feeds = followed(writer)
        if url not in {feed.url for feed in feeds}:
            raise NewsarchiveError(
                f"{shown(url)} is not followed in {directory}/ (`newsarchive feeds list` shows those that are)"
            )
        writer.set_table("feeds", to_table([feed for feed in feeds if feed.url != url]))
        entries = writer.table("feed_entries")
        writer.set_table("feed_entries", entries.filter(pc.not_equal(entries.column("url"), url)))


def listed(directory: str | Path | None = None) -> list[Feed]:
    """The feeds followed in the current commit (none when there is no archive yet)."""
    from indexer.errors import IndexNotFound
    from indexer.storage import Snapshot

    try:
        with Snapshot(config.index_dir(directory)) as snapshot:
            return from_table(snapshot.table("feeds"))
    except IndexNotFound:
        return []
