"""``sql --write``: a statement that changes the public tables, committed as the rows it changed.

The statement runs on a copy of the current commit's tables in memory (DuckDB spills what does not fit), so it
costs time in proportion to the archive. The copy is then compared with the commit: each article whose row or
passages changed is written again, whole, into a new segment (its passage ids and vectors kept, nothing embedded),
its old version tombstoned; articles gone are tombstoned; pairs added to or deleted from ``duplicates`` are
recorded. ``story_id`` is derived from the pairs and dates, so changes to it are not kept.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ..errors import NewsarchiveError
from . import catalog, segment
from .manifest import Manifest
from .writer import Writer

_CHANGED_ARTICLES = """
    SELECT article_id FROM (SELECT * EXCLUDE (story_id) FROM edit.articles
                            EXCEPT SELECT * EXCLUDE (story_id) FROM memory.articles)
    UNION SELECT article_id FROM (SELECT * FROM edit.passages EXCEPT SELECT * FROM memory.passages)
    UNION SELECT article_id FROM memory.passages WHERE passage_id NOT IN (SELECT passage_id FROM edit.passages)
"""
_PROBLEMS = {
    "passages belong to no article": "SELECT count(*) FROM edit.passages WHERE article_id NOT IN "
    "(SELECT article_id FROM edit.articles)",
    "passage ids are given twice": "SELECT count(*) - count(DISTINCT passage_id) FROM edit.passages",
    "articles ids are given twice": "SELECT count(*) - count(DISTINCT article_id) FROM edit.articles",
    "duplicate pairs name an article that is not indexed": "SELECT count(*) FROM edit.duplicates WHERE "
    "article_id NOT IN (SELECT article_id FROM edit.articles) OR duplicate_id NOT IN "
    "(SELECT article_id FROM edit.articles)",
}


def write_sql(directory: Path, query: str) -> tuple[list[str], list[tuple]]:
    """Run a statement that may change the tables, and commit what it changed.

    Returns:
        The statement's columns and rows (none for most changes).

    Raises:
        NewsarchiveError: The statement failed, or would leave the index inconsistent; the index is unchanged.
    """
    with Writer(directory) as writer:
        if writer.snapshot is None:
            Manifest.load(directory)  # says there is no index
        db = writer.snapshot.store.db
        db.execute("ATTACH ':memory:' AS edit")
        for table in ("articles", "passages", "duplicates"):
            db.execute(f"CREATE TABLE edit.{table} AS SELECT * FROM memory.{table}")
        db.execute("USE edit")
        try:
            relation = db.sql(query)
            columns, rows = (relation.columns, relation.fetchall()) if relation is not None else ([], [])
        except duckdb.Error as error:
            raise NewsarchiveError(str(error).strip().splitlines()[0]) from None
        finally:
            db.execute("USE memory")
        problems = [f"{n} {what}" for what, sql in _PROBLEMS.items() if (n := db.execute(sql).fetchall()[0][0])]
        if problems:
            raise NewsarchiveError(f"not written, it would break the index: {'; '.join(problems)}")
        _commit_changes(writer, db)
    return columns, rows


def _commit_changes(writer: Writer, db: duckdb.DuckDBPyConnection) -> None:
    changed = [row[0] for row in db.execute(_CHANGED_ARTICLES).fetchall()]
    kept = {row[0] for row in db.execute("SELECT article_id FROM edit.articles").fetchall()}
    writer.delete([article_id for article_id in changed if article_id not in kept])
    rewritten = [article_id for article_id in changed if article_id in kept]
    if rewritten:
        d = writer.settings.dimension
        ids = [rewritten]
        columns = ", ".join(segment.ARTICLE_SCHEMA.names)
        articles = db.sql(
            f"SELECT {columns} FROM edit.articles WHERE article_id IN (SELECT unnest(?))", params=ids
        ).to_arrow_table()
        passages = db.sql(
            f"SELECT {', '.join(segment.PASSAGE_COLUMNS)}, embedding FROM edit.passages "
            "WHERE article_id IN (SELECT unnest(?)) ORDER BY passage_id",
            params=ids,
        ).to_arrow_table()
        writer.add_rows(articles.cast(segment.ARTICLE_SCHEMA), passages.cast(segment.passage_schema(d)))
    pair = "least(article_id, duplicate_id) AS a, greatest(article_id, duplicate_id) AS b"
    pairs = f"SELECT {pair}, kind, similarity FROM"
    added = db.execute(f"{pairs} edit.duplicates EXCEPT {pairs} memory.duplicates").fetchall()
    removed = db.execute(f"SELECT {pair} FROM memory.duplicates EXCEPT SELECT {pair} FROM edit.duplicates").fetchall()
    added_pairs = {(a, b) for a, b, _, _ in added}
    writer.pair([(a, b, kind, float(sim)) for a, b, kind, sim in added])
    writer.pair([(a, b, catalog.SEPARATED, 0.0) for a, b in removed if (a, b) not in added_pairs])
