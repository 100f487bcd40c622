"""Reading the archive's tables -- ``articles``, ``passages``, ``duplicates`` -- through one DuckDB connection.

The tables are one commit's views (:mod:`indexer.storage.catalog`); their columns are a public contract, documented
in docs/the-archive.md ("Query with SQL"). Writing goes through :mod:`indexer.storage` alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import duckdb
import numpy as np

HIT_COLUMNS = (
    "passage_id",
    "article_id",
    "title",
    "heading",
    "text",
    "char_start",
    "char_end",
    "paragraph",
    "source",
    "published",
    "url",
    "language",
    "story_id",
)


class Store:
    """Reads articles, passages and duplicate pairs in one DuckDB connection (a snapshot's)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.db = connection

    def close(self) -> None:
        self.db.close()

    def article_sources(self) -> dict[str, tuple[str, str]]:
        """article_id -> (content_hash, path) of every article."""
        with self.db.cursor() as cursor:
            rows = cursor.execute("SELECT article_id, content_hash, path FROM _articles").fetchall()
        return {article_id: (content_hash, path) for article_id, content_hash, path in rows}

    def counts(self) -> tuple[int, int]:
        """(articles, passages)."""
        row = self.db.execute("SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)").fetchall()[0]
        return int(row[0]), int(row[1])

    def passage_ids_where(
        self,
        sources: Sequence[str] = (),
        languages: Sequence[str] = (),
        since: date | None = None,
        until: date | None = None,
        indexed_after: datetime | None = None,
    ) -> np.ndarray:
        """Ids of the passages whose article matches every given condition (dates inclusive, in UTC;
        ``indexed_after``: articles indexed after that moment)."""
        conditions, params = [], []
        if indexed_after:
            conditions.append("a.indexed_at > ?")
            params.append(indexed_after)
        if sources:
            conditions.append("a.source IN (SELECT unnest(?))")
            params.append(list(sources))
        if languages:
            conditions.append("a.language IN (SELECT unnest(?))")
            params.append(list(languages))
        if since:
            conditions.append("CAST(timezone('UTC', a.published) AS DATE) >= ?")
            params.append(since)
        if until:
            conditions.append("CAST(timezone('UTC', a.published) AS DATE) <= ?")
            params.append(until)
        where = " AND ".join(conditions) or "TRUE"
        with self.db.cursor() as cursor:
            rows = cursor.execute(
                f"SELECT p.passage_id FROM passages p JOIN articles a USING (article_id) WHERE {where}", params
            ).fetchall()
        return np.array([row[0] for row in rows], dtype=np.int64)

    def facets(self) -> dict[str, Any]:
        """What the archive's metadata offers to filter on: sources, languages and the first and last date."""
        day = "CAST(timezone('UTC', published) AS DATE)"
        with self.db.cursor() as cursor:
            sources, languages, first, last = cursor.execute(
                f"""SELECT list(DISTINCT source ORDER BY source) FILTER (source IS NOT NULL),
                           list(DISTINCT language ORDER BY language) FILTER (language IS NOT NULL),
                           min({day}), max({day})
                    FROM articles"""
            ).fetchall()[0]
        return {"sources": sources or [], "languages": languages or [], "dates": (first, last) if first else None}

    def article(self, article_id: str) -> dict[str, Any] | None:
        """One article's columns, or ``None``."""
        with self.db.cursor() as cursor:
            result = cursor.execute("SELECT * FROM articles WHERE article_id = ?", [article_id])
            columns = [d[0] for d in result.description]
            rows = result.fetchall()
        return dict(zip(columns, rows[0])) if rows else None

    def passage_spans(self, article_id: str) -> list[tuple[str | None, int, int]]:
        """(heading, char_start, char_end) of an article's passages, in order."""
        with self.db.cursor() as cursor:
            return cursor.execute(
                "SELECT heading, char_start, char_end FROM passages WHERE article_id = ? ORDER BY seq", [article_id]
            ).fetchall()

    def vectors_of(self, passage_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The stored embeddings of these passages (or all), in passage id order: (ids, one row each)."""
        where = "WHERE passage_id IN (SELECT unnest(?))" if passage_ids is not None else ""
        with self.db.cursor() as cursor:
            table = cursor.sql(
                f"SELECT passage_id, embedding FROM passages {where} ORDER BY passage_id",
                params=[list(passage_ids)] if passage_ids is not None else None,
            ).to_arrow_table()
        flat = table.column("embedding").combine_chunks().flatten().to_numpy()
        ids = table.column("passage_id").to_numpy().astype(np.int64)
        dimension = table.schema.field("embedding").type.list_size
        return ids, flat.reshape(table.num_rows, dimension).astype(np.float32, copy=False)

    def duplicate_pairs(self) -> list[tuple[str, str]]:
        """Every pair of articles found to be one story."""
        with self.db.cursor() as cursor:
            return cursor.execute("SELECT article_id, duplicate_id FROM duplicates").fetchall()

    def articles(self, article_ids: Iterable[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        """article_id -> these ``columns`` of these articles."""
        with self.db.cursor() as cursor:
            rows = cursor.execute(
                f"SELECT article_id, {', '.join(columns)} FROM articles WHERE article_id IN (SELECT unnest(?))",
                [list(article_ids)],
            ).fetchall()
        return {row[0]: dict(zip(columns, row[1:])) for row in rows}
