"""Small tables of an archive's state beside its articles -- the feeds it follows, its saved searches and what they
matched -- kept whole in each commit.

They change a little at every round of a feed follower, so they are not segments: a commit that changes one
writes it again (``tables/<name>-<commit>.parquet``, named in the manifest's ``tables``), and a reader sees the
version of the commit it holds, as it does the articles.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from indexer.storage import layout

_TIME = pa.timestamp("us", tz="UTC")
SCHEMAS = {
    # One row per followed feed: what `feeds add` said, and its health as of the last round that fetched it.
    "feeds": pa.schema(
        [
            ("url", pa.string()),  # as added: the feed's name in `feeds remove`
            ("source", pa.string()),  # the source its articles get (NULL: the feed's own title)
            ("every_seconds", pa.int64()),
            ("added_at", _TIME),
            ("location", pa.string()),  # where it is fetched: the url, or where it moved for good (301, 308)
            ("etag", pa.string()),
            ("last_modified", pa.string()),
            ("last_fetch", _TIME),
            ("last_status", pa.int32()),  # the HTTP status of the last fetch; NULL when there was no answer
            ("last_error", pa.string()),  # what went wrong with the last fetch; NULL when it went well
            ("entries_seen", pa.int32()),  # entries in the feed at its last fetch that was read
            ("entries_new", pa.int32()),  # of those, new or changed since the fetch before
            ("failures", pa.int32()),  # fetches that failed in a row
            ("next_due", _TIME),
        ]
    ),
    # The entries each feed held when it was last read, so that a round skips those seen before.
    "feed_entries": pa.schema(
        [
            ("url", pa.string()),  # the feed's
            ("entry", pa.string()),  # the entry's id, else its link
            ("entry_hash", pa.string()),  # of what the feed says of it: a changed entry is read again
            ("article_id", pa.string()),
        ]
    ),
    # Saved searches (`alerts add`): each is run on the articles indexed since it last ran.
    "alerts": pa.schema(
        [
            ("name", pa.string()),
            ("query", pa.string()),
            ("mode", pa.string()),  # hybrid, dense or lexical, as in search
            ("sources", pa.list_(pa.string())),  # only articles of these sources (empty: any)
            ("languages", pa.list_(pa.string())),
            ("threshold", pa.float64()),  # the margin a match needs (indexer.live.alerts)
            ("created_at", _TIME),
            ("checked_until", _TIME),  # articles indexed after this are the next run's
            ("webhook", pa.string()),  # where new matches are POSTed as JSON, or NULL
        ]
    ),
    # Each article an alert matched, once, with the passage that matched it as it read then.
    "alert_matches": pa.schema(
        [
            ("alert", pa.string()),
            ("article_id", pa.string()),
            ("passage_id", pa.int64()),
            ("title", pa.string()),
            ("source", pa.string()),
            ("url", pa.string()),
            ("published", _TIME),
            ("passage", pa.string()),
            ("score", pa.float64()),
            ("margin", pa.float64()),
            ("matched_at", _TIME),
        ]
    ),
}
_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.list_(pa.string()): "VARCHAR[]",
    _TIME: "TIMESTAMPTZ",
}


def file_name(name: str, commit: int) -> str:
    return f"{name}-{commit:06d}.parquet"


def path(directory: Path, file: str) -> Path:
    return directory / layout.TABLES / file


def read(directory: Path, files: dict[str, str], name: str) -> pa.Table:
    """Table ``name`` as of a commit whose manifest names ``files``; empty when it has none."""
    if name not in files:
        return SCHEMAS[name].empty_table()
    return pq.ParquetFile(path(directory, files[name])).read().cast(SCHEMAS[name])


def write(directory: Path, file: str, name: str, table: pa.Table) -> None:
    (directory / layout.TABLES).mkdir(exist_ok=True)
    pq.write_table(table.select(SCHEMAS[name].names).cast(SCHEMAS[name]), path(directory, file))


def empty_select(name: str) -> str:
    """A SELECT of no rows with the table's columns, for a commit without the table."""
    columns = ", ".join(f"NULL::{_DUCKDB_TYPES[field.type]} AS {field.name}" for field in SCHEMAS[name])
    return f"SELECT {columns} WHERE false"
