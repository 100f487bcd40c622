"""The public tables of one commit -- ``articles``, ``passages``, ``duplicates`` -- as DuckDB views over its
segments' Parquet files, without their tombstoned rows.

The same views serve newsarchive's own readers (in an in-memory DuckDB), people's queries (the same, sandboxed:
:func:`sandboxed`) and ``archive/archive.duckdb``, the file any DuckDB client opens. DuckDB resolves a relative path
against the working directory, not against the database file, so the views name files by absolute path; a writer
rewrites the file at each commit, and ``check`` says when an archive moved since (any write, or ``newsarchive
optimize``, rewrites it then).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from indexer.storage import layout, sandbox, segment, tables
from indexer.storage.manifest import Manifest

ARTICLE_COLUMNS = (*segment.ARTICLE_SCHEMA.names, "story_id")
SEPARATED = "separated"
_EMPTY = {
    "_articles": "SELECT "
    + ", ".join(
        f"NULL::{t} AS {n}"
        for n, t in (
            ("article_id", "VARCHAR"),
            ("title", "VARCHAR"),
            ("body", "VARCHAR"),
            ("source", "VARCHAR"),
            ("url", "VARCHAR"),
            ("published", "TIMESTAMPTZ"),
            ("language", "VARCHAR"),
            ("author", "VARCHAR"),
            ("path", "VARCHAR"),
            ("content_hash", "VARCHAR"),
            ("indexed_at", "TIMESTAMPTZ"),
        )
    )
    + " WHERE false",
}


def quoted(path: Path) -> str:
    """A path as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _union(selects: list[str], empty: str) -> str:
    return "\nUNION ALL\n".join(selects) if selects else empty


def segment_selects(path: Path, name: str, tombstones: str, dimension: int) -> dict[str, str]:
    """One segment's live articles, passages and duplicate pairs, as SELECT statements."""
    live_articles = live_passages = ""
    if tombstones:
        dead = quoted(path / tombstones)
        live_articles = f" WHERE article_id NOT IN (SELECT article_id FROM read_parquet({dead}))"
        live_passages = f" WHERE passage_id NOT IN (SELECT passage_id FROM read_parquet({dead}))"
    return {
        "articles": f"SELECT * FROM read_parquet({quoted(path / segment.ARTICLES)}){live_articles}",
        "passages": f"SELECT * REPLACE (CAST(embedding AS FLOAT[{dimension}]) AS embedding) "
        f"FROM read_parquet({quoted(path / segment.PASSAGES)}){live_passages}",
        "pairs": f"SELECT *, '{name}' AS segment FROM read_parquet({quoted(path / segment.DUPLICATES)})",
    }


def statements(directory: Path, manifest: Manifest, segments: dict[str, Path] | None = None) -> list[str]:
    """The SQL creating the views of ``manifest``'s commit of the index in ``directory``.

    ``segments`` maps a segment name to where its files are, for a commit being written (staged segments).
    """
    directory = directory.resolve()
    segments = segments or {}
    articles, passages, pairs = [], [], []
    d = manifest.dimension
    for entry in manifest.segments:
        path = (segments.get(entry.name) or directory / layout.SEGMENTS / entry.name).resolve()
        selects = segment_selects(path, entry.name, entry.tombstones, d)
        articles.append(selects["articles"])
        passages.append(selects["passages"])
        pairs.append(selects["pairs"])
    passage_columns = ", ".join(
        f"NULL::{t} AS {n}"
        for n, t in (
            ("passage_id", "BIGINT"),
            ("article_id", "VARCHAR"),
            ("seq", "INTEGER"),
            ("paragraph", "INTEGER"),
            ("heading", "VARCHAR"),
            ("text", "VARCHAR"),
            ("char_start", "INTEGER"),
            ("char_end", "INTEGER"),
            ("tokens", "INTEGER"),
            ("language", "VARCHAR"),
            ("embedding", f"FLOAT[{d}]"),
        )
    )
    pair_columns = "NULL::VARCHAR AS article_id, NULL::VARCHAR AS duplicate_id, NULL::VARCHAR AS kind, "
    pair_columns += "NULL::DOUBLE AS similarity, NULL::VARCHAR AS article_hash, NULL::VARCHAR AS duplicate_hash, "
    pair_columns += "NULL::VARCHAR AS segment"
    if manifest.stories:
        stories = f"read_parquet({quoted(directory / layout.STORIES / manifest.stories)})"
    else:
        stories = "(SELECT NULL::VARCHAR AS article_id, NULL::VARCHAR AS story_id WHERE false)"
    columns = ", ".join(f"a.{name}" for name in segment.ARTICLE_SCHEMA.names)
    return [
        f"CREATE OR REPLACE VIEW _articles AS {_union(articles, _EMPTY['_articles'])}",
        f"""CREATE OR REPLACE VIEW articles AS
            SELECT {columns}, coalesce(s.story_id, a.article_id) AS story_id
            FROM _articles a LEFT JOIN {stories} s ON s.article_id = a.article_id""",
        f"CREATE OR REPLACE VIEW passages AS {_union(passages, f'SELECT {passage_columns} WHERE false')}",
        f"CREATE OR REPLACE VIEW _pairs AS {_union(pairs, f'SELECT {pair_columns} WHERE false')}",
        # A pair names the versions it paired (content hashes): it ends when either article changes or goes. The
        # newest record of a pair wins; kind SEPARATED records a pair deleted by `sql --write`.
        f"""CREATE OR REPLACE VIEW duplicates AS
            SELECT article_id, duplicate_id, kind, similarity FROM (
                SELECT DISTINCT ON (p.article_id, p.duplicate_id) p.*
                FROM _pairs p
                JOIN _articles a ON a.article_id = p.article_id AND a.content_hash = p.article_hash
                JOIN _articles b ON b.article_id = p.duplicate_id AND b.content_hash = p.duplicate_hash
                ORDER BY p.article_id, p.duplicate_id, p.segment DESC)
            WHERE kind <> '{SEPARATED}'""",
        f"CREATE OR REPLACE VIEW _commit AS SELECT {manifest.commit} AS commit, {quoted(directory)} AS directory",
        *(
            f"CREATE OR REPLACE VIEW {name} AS "
            + (
                f"SELECT * FROM read_parquet({quoted(tables.path(directory, manifest.tables[name]))})"
                if name in manifest.tables
                else tables.empty_select(name)
            )
            for name in tables.SCHEMAS
        ),
    ]


def connect(
    directory: Path, manifest: Manifest, memory_limit: str | None = None, staged: dict[str, Path] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding the views of ``manifest``'s commit."""
    db = duckdb.connect()
    if memory_limit:
        db.execute("SET memory_limit = ?", [memory_limit])
    db.execute("SET parquet_metadata_cache = true")  # a search reads a few rows; the footers once
    for statement in statements(directory, manifest, staged):
        db.execute(statement)
    return db


def write(directory: Path, manifest: Manifest) -> None:
    """Write ``archive.duckdb`` for ``manifest``'s commit, replacing the previous one in one rename."""
    partial = directory / (layout.CATALOG + layout.PARTIAL)
    partial.unlink(missing_ok=True)
    with duckdb.connect(str(partial)) as db:
        for statement in statements(directory, manifest):
            db.execute(statement)
    layout.sync(partial)
    partial.replace(directory / layout.CATALOG)
    layout.sync(directory)


def files(directory: Path, manifest: Manifest, segments: dict[str, Path] | None = None) -> list[Path]:
    """Every file the views of ``manifest``'s commit read (:func:`statements`): all that a sandboxed query may read."""
    directory = directory.resolve()
    segments = segments or {}
    found = []
    for entry in manifest.segments:
        path = (segments.get(entry.name) or directory / layout.SEGMENTS / entry.name).resolve()
        found += [path / segment.ARTICLES, path / segment.PASSAGES, path / segment.DUPLICATES]
        if entry.tombstones:
            found.append(path / entry.tombstones)
    if manifest.stories:
        found.append(directory / layout.STORIES / manifest.stories)
    found += [tables.path(directory, file) for name, file in manifest.tables.items() if name in tables.SCHEMAS]
    return found


def sandboxed(directory: Path, manifest: Manifest, memory_limit: str = sandbox.MEMORY) -> duckdb.DuckDBPyConnection:
    """A connection showing ``manifest``'s commit, for people's queries (``newsarchive sql``), sandboxed
    (:func:`.sandbox.confine`): it reads the commit's files and nothing else, and writes no file.
    Run only statements that :func:`.sandbox.check_statements` lets through on it."""
    db = connect(directory, manifest)
    try:
        sandbox.confine(db, files(directory, manifest), memory_limit)
    except BaseException:
        db.close()
        raise
    return db


def described(directory: Path) -> tuple[int, str] | None:
    """(commit, directory) that ``archive.duckdb`` shows, or ``None`` when it is missing or unreadable."""
    try:
        with duckdb.connect(str(directory / layout.CATALOG), read_only=True) as db:
            commit, where = db.execute("SELECT commit, directory FROM _commit").fetchall()[0]
            return int(commit), where
    except duckdb.Error:
        return None
