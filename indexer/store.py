"""The DuckDB file: articles and passages in tables whose names and columns are a public contract.

The README's "Query with SQL" section documents :func:`schema`; change it only with a new schema version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from .articles import Article
from .passages import Passage, embedding_text

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    article_id   VARCHAR PRIMARY KEY,   -- stable id: the file name without suffix, or the JSONL "id"
    title        VARCHAR NOT NULL,
    body         VARCHAR NOT NULL,      -- the text below the title; passages' offsets point into it
    source       VARCHAR,
    url          VARCHAR,
    published    TIMESTAMPTZ,
    language     VARCHAR,
    author       VARCHAR,
    path         VARCHAR NOT NULL,      -- the file or URL it was read from
    content_hash VARCHAR NOT NULL,      -- sha256 of title, body and metadata: unchanged articles are not re-embedded
    indexed_at   TIMESTAMPTZ NOT NULL,
    story_id     VARCHAR NOT NULL       -- article_id of its story's earliest article (its own, if it has no duplicates)
);
-- Pairs of articles that are one story (indexer/duplicates.py); each pair once, the smaller id first.
CREATE TABLE IF NOT EXISTS duplicates (
    article_id   VARCHAR NOT NULL,      -- articles.article_id
    duplicate_id VARCHAR NOT NULL,      -- articles.article_id, greater than article_id
    kind         VARCHAR NOT NULL,      -- 'exact', 'near' (same language, edited) or 'translation'
    similarity   DOUBLE NOT NULL,       -- exact: 1; near: word-shingle Jaccard; translation: passage alignment
    PRIMARY KEY (article_id, duplicate_id)
);
-- Passage ids are never reused, even after their article is replaced or removed: a cited id stays meaningful.
CREATE SEQUENCE IF NOT EXISTS passage_ids;
CREATE TABLE IF NOT EXISTS passages (
    passage_id   BIGINT PRIMARY KEY,    -- also the vector's id in the FAISS index
    article_id   VARCHAR NOT NULL,      -- articles.article_id
    seq          INTEGER NOT NULL,      -- 0-based order within the article
    paragraph    INTEGER NOT NULL,      -- 1-based paragraph number within the article (headings not counted)
    heading      VARCHAR,               -- the section heading above the passage
    text         VARCHAR NOT NULL,
    char_start   INTEGER NOT NULL,      -- text = articles.body[char_start:char_end] (0-based, end exclusive)
    char_end     INTEGER NOT NULL,
    tokens       INTEGER NOT NULL,      -- length in model tokens
    language     VARCHAR,               -- ISO 639-1 code, detected from the passage (or its article, if short)
    embedding    FLOAT[{dimension}] NOT NULL  -- the normalized vector, also in the FAISS index
);
"""


def schema(dimension: int) -> str:
    """The tables' DDL for vectors of ``dimension`` floats."""
    return _SCHEMA.format(dimension=dimension)


_STORIES = pa.schema([("article_id", pa.string()), ("story_id", pa.string())])
_ARTICLE_COLUMNS = (
    "article_id",
    "title",
    "body",
    "source",
    "url",
    "published",
    "language",
    "author",
    "path",
    "content_hash",
    "indexed_at",
    "story_id",
)
_PASSAGE_COLUMNS: tuple[str, ...] = (
    "passage_id",
    "article_id",
    "seq",
    "paragraph",
    "heading",
    "text",
    "char_start",
    "char_end",
    "tokens",
    "language",
)
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
# Rows of the duplicates table that name an article no longer there.
STRAY_PAIRS = (
    "article_id NOT IN (SELECT article_id FROM articles) OR duplicate_id NOT IN (SELECT article_id FROM articles)"
)


def connect(path: Path, read_only: bool = True, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the archive's DuckDB file; readers open it read-only.

    ``memory_limit`` caps DuckDB's cache of the file's blocks (by default 80% of the machine's memory, which a
    long-running search process would fill with the blocks of every passage it ever fetched).
    """
    connection = duckdb.connect(str(path), read_only=read_only)
    if memory_limit:  # set, not passed as config: connections to one file in a process must share their config
        connection.execute("SET memory_limit = ?", [memory_limit])
    return connection


class Store:
    """Reads and writes articles and passages in one DuckDB connection."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.db = connection

    @classmethod
    def create(cls, path: Path, dimension: int) -> Store:
        store = cls(connect(path, read_only=False))
        store.db.execute(schema(dimension)).fetchall()
        return store

    def close(self) -> None:
        self.db.close()

    @property
    def dimension(self) -> int:
        """The embeddings' size, from their column's type (``FLOAT[384]``)."""
        column_type = self.db.execute(
            "SELECT data_type FROM duckdb_columns() WHERE table_name = 'passages' AND column_name = 'embedding'"
        ).fetchall()[0][0]
        return int(re.search(r"\[(\d+)\]", column_type).group(1))

    def article_sources(self) -> dict[str, tuple[str, str]]:
        """article_id -> (content_hash, path) of every article."""
        rows = self.db.execute("SELECT article_id, content_hash, path FROM articles").fetchall()
        return {article_id: (content_hash, path) for article_id, content_hash, path in rows}

    def passage_ids(self, article_ids: Sequence[str]) -> list[int]:
        rows = self.db.execute(
            "SELECT passage_id FROM passages WHERE article_id IN (SELECT unnest(?))", [list(article_ids)]
        ).fetchall()
        return [row[0] for row in rows]

    def delete_articles(self, article_ids: Sequence[str]) -> None:
        if article_ids:
            ids = [list(article_ids)]
            # fetchall() finishes each statement: DuckDB refuses new work while a result is pending.
            self.db.execute("DELETE FROM passages WHERE article_id IN (SELECT unnest(?))", ids).fetchall()
            self.db.execute(  # a replaced article is matched afresh
                "DELETE FROM duplicates WHERE article_id IN (SELECT unnest(?)) OR duplicate_id IN (SELECT unnest(?))",
                ids * 2,
            ).fetchall()
            self.db.execute("DELETE FROM articles WHERE article_id IN (SELECT unnest(?))", ids).fetchall()

    def insert(
        self,
        articles: Sequence[Article],
        languages: Sequence[str | None],
        passages: Sequence[Passage],
        vectors: np.ndarray,
    ) -> list[int]:
        """Add articles (with each one's language, stated or detected) and their passages with their vectors.

        Returns the new passages' ids, in order.
        """
        now = datetime.now(timezone.utc)
        article_rows = {
            "article_id": [a.article_id for a in articles],
            "title": [a.title for a in articles],
            "body": [a.text for a in articles],
            "source": [a.source for a in articles],
            "url": [a.url for a in articles],
            "published": pa.array([a.published for a in articles], pa.timestamp("us", tz="UTC")),
            "language": list(languages),
            "author": [a.author for a in articles],
            "path": [a.path for a in articles],
            "content_hash": [a.content_hash for a in articles],
            "indexed_at": pa.array([now] * len(articles), pa.timestamp("us", tz="UTC")),
            "story_id": [a.article_id for a in articles],  # until duplicates.update finds its story
        }
        ids = [
            row[0] for row in self.db.execute("SELECT nextval('passage_ids') FROM range(?)", [len(passages)]).fetchall()
        ]
        passage_rows: dict[str, Any] = {"passage_id": pa.array(ids, pa.int64())}
        for column in _PASSAGE_COLUMNS[1:]:
            passage_rows[column] = [getattr(p, column) for p in passages]
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        passage_rows["embedding"] = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
        self._append("articles", _ARTICLE_COLUMNS, article_rows)
        self._append("passages", (*_PASSAGE_COLUMNS, "embedding"), passage_rows)
        return ids

    def _append(self, table: str, columns: Sequence[str], rows: dict[str, Any]) -> None:
        if not len(rows[columns[0]]):
            return
        batch = pa.table({column: rows[column] for column in columns})
        self.db.register("_batch", batch)
        try:
            self.db.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM _batch").fetchall()
        finally:
            self.db.unregister("_batch")

    def lexical_rows(self, passage_ids: Sequence[int] | None = None) -> list[tuple[int, str, str | None]]:
        """(passage_id, text as the model read it, language) of these passages (or all), for the lexical index."""
        where = "WHERE p.passage_id IN (SELECT unnest(?))" if passage_ids is not None else ""
        rows = self.db.execute(
            f"""SELECT p.passage_id, a.title, p.heading, p.text, p.language
                FROM passages p JOIN articles a USING (article_id) {where} ORDER BY p.passage_id""",
            [list(passage_ids)] if passage_ids is not None else [],
        ).fetchall()
        return [(i, embedding_text(title, heading, text), language) for i, title, heading, text, language in rows]

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
    ) -> np.ndarray:
        """Ids of the passages whose article matches every given condition (dates inclusive, in UTC)."""
        conditions, params = [], []
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

    def article_ids_of(self, passage_ids: Iterable[int]) -> dict[int, str]:
        """passage_id -> article_id of these passages."""
        with self.db.cursor() as cursor:
            rows = cursor.execute(
                "SELECT passage_id, article_id FROM passages WHERE passage_id IN (SELECT unnest(?))",
                [list(passage_ids)],
            ).fetchall()
        return dict(rows)

    def article_texts(self, article_ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """article_id -> (body, language) of these articles."""
        rows = self.db.execute(
            "SELECT article_id, body, language FROM articles WHERE article_id IN (SELECT unnest(?))",
            [list(article_ids)],
        ).fetchall()
        return {article_id: (body, language) for article_id, body, language in rows}

    def article_vectors(self, article_id: str) -> np.ndarray:
        """The stored embeddings of an article's passages, one row each, in passage order."""
        with self.db.cursor() as cursor:
            ids = [
                row[0]
                for row in cursor.execute(
                    "SELECT passage_id FROM passages WHERE article_id = ? ORDER BY seq", [article_id]
                ).fetchall()
            ]
        return self.vectors_of(ids)[1]

    def add_duplicates(self, pairs: Sequence[tuple[str, str, str, float]]) -> None:
        """Store (article_id, duplicate_id, kind, similarity) pairs, the smaller id first; a known pair is kept."""
        if pairs:
            self.db.executemany("INSERT OR IGNORE INTO duplicates VALUES (?, ?, ?, ?)", [list(pair) for pair in pairs])

    def duplicate_pairs(self) -> list[tuple[str, str]]:
        """Every stored pair whose two articles are both still there (the others are deleted)."""
        self.db.execute(f"DELETE FROM duplicates WHERE {STRAY_PAIRS}").fetchall()
        return self.db.execute("SELECT article_id, duplicate_id FROM duplicates").fetchall()

    def set_stories(self, stories: dict[str, str]) -> None:
        """Set ``story_id`` of the articles in ``stories`` (article_id -> story_id), and of the others to their id."""
        batch = pa.table({"article_id": list(stories), "story_id": list(stories.values())}, schema=_STORIES)
        self.db.register("_stories", batch)
        try:
            self.db.execute(
                """UPDATE articles SET story_id = article_id
                   WHERE story_id <> article_id AND article_id NOT IN (SELECT article_id FROM _stories)"""
            ).fetchall()
            self.db.execute(
                """UPDATE articles SET story_id = s.story_id FROM _stories s
                   WHERE articles.article_id = s.article_id AND articles.story_id <> s.story_id"""
            ).fetchall()
        finally:
            self.db.unregister("_stories")

    def stories(self) -> dict[str, tuple[str, ...]]:
        """story_id -> its articles' ids, earliest first, of every story with more than one article."""
        with self.db.cursor() as cursor:
            rows = cursor.execute(
                """SELECT story_id, article_id FROM articles
                   WHERE article_id IN (SELECT article_id FROM duplicates UNION SELECT duplicate_id FROM duplicates)
                   ORDER BY published NULLS LAST, article_id"""
            ).fetchall()
        stories: dict[str, list[str]] = {}
        for story_id, article_id in rows:
            stories.setdefault(story_id, []).append(article_id)
        return {story_id: tuple(members) for story_id, members in stories.items() if len(members) > 1}

    def articles(self, article_ids: Iterable[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        """article_id -> these ``columns`` of these articles."""
        with self.db.cursor() as cursor:
            rows = cursor.execute(
                f"SELECT article_id, {', '.join(columns)} FROM articles WHERE article_id IN (SELECT unnest(?))",
                [list(article_ids)],
            ).fetchall()
        return {row[0]: dict(zip(columns, row[1:])) for row in rows}

    def hits(self, passage_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The passages with these ids, with their articles' fields, keyed by passage id."""
        # Two lookups, not a join: DuckDB would hash-join every article, which grows with the archive.
        own = [c for c in HIT_COLUMNS if c in _PASSAGE_COLUMNS]
        borrowed = [c for c in HIT_COLUMNS if c not in _PASSAGE_COLUMNS]
        with self.db.cursor() as cursor:  # a cursor per call: the app shares one store between threads
            passages = cursor.execute(
                f"SELECT {', '.join(own)} FROM passages WHERE passage_id IN (SELECT unnest(?))", [list(passage_ids)]
            ).fetchall()
            article_ids = list({row[own.index("article_id")] for row in passages})
            articles = cursor.execute(
                f"SELECT article_id, {', '.join(borrowed)} FROM articles WHERE article_id IN (SELECT unnest(?))",
                [article_ids],
            ).fetchall()
        by_article = {row[0]: dict(zip(borrowed, row[1:])) for row in articles}
        hits = {}
        for row in passages:
            hit = dict(zip(own, row))
            hit.update(by_article[hit["article_id"]])
            hits[hit["passage_id"]] = {column: hit[column] for column in HIT_COLUMNS}
        return hits
