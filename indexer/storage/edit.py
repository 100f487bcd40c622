"""``sql --write``: a statement that changes the public tables, checked, then committed as the rows it changed.

The statement runs in the sandbox of people's SQL (:mod:`.sandbox`: only INSERT, UPDATE, DELETE and reading
statements; no file but the commit's read) on a copy of the current commit's tables in memory (DuckDB spills what
does not fit), so it costs time in proportion to the archive. The copy is then checked -- ids, offsets, vectors,
pairs (:data:`_PROBLEMS`) -- and compared with the commit: each article whose row or passages differ, on either side
(a renamed article is one gone and one new), is written again, whole, into a new segment (its passage ids and
vectors kept, nothing embedded), its old version tombstoned; articles gone are tombstoned; pairs added to or deleted
from ``duplicates`` are recorded. The draft commit is then verified as ``newsarchive check`` would, before it is
published. A statement that changes nothing makes no commit. ``story_id`` is derived from the pairs and dates, so
changes to it are not kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from indexer.errors import EditRefused
from indexer.reading.article import valid_article_id
from indexer.storage import catalog, sandbox, segment
from indexer.storage.check import NORM_TOLERANCE
from indexer.storage.manifest import Manifest
from indexer.storage.writer import WRITE_CACHE, Writer

TABLES = ("articles", "passages", "duplicates")


@dataclass(frozen=True)
class Edit:
    """What ``sql --write`` did.

    Attributes:
        columns: The statement's columns (none for most changes).
        rows: Its rows.
        commit: The commit it made, or ``None`` when it changed nothing.
    """

    columns: list[str]
    rows: list[tuple]
    commit: int | None


# Articles whose row or passages differ between the copy (edit) and the commit (memory), in either direction.
_CHANGED = """
    CREATE TEMP TABLE changed AS
    SELECT article_id FROM (
        (SELECT * EXCLUDE (story_id) FROM edit.articles EXCEPT SELECT * EXCLUDE (story_id) FROM memory.articles)
        UNION ALL
        (SELECT * EXCLUDE (story_id) FROM memory.articles EXCEPT SELECT * EXCLUDE (story_id) FROM edit.articles))
    UNION SELECT article_id FROM (
        (SELECT * FROM edit.passages EXCEPT SELECT * FROM memory.passages)
        UNION ALL
        (SELECT * FROM memory.passages EXCEPT SELECT * FROM edit.passages))
"""
_IDS = "(SELECT article_id FROM edit.articles WHERE article_id IS NOT NULL)"
_TOUCHED = "article_id IN (SELECT article_id FROM changed)"
_FLOATS = "list_transform(embedding::FLOAT[], lambda x: x::DOUBLE)"
# What the copy must satisfy, each a count of the rows that do not. A passage id used by an article left untouched
# is in the copy too, so "given twice" also covers a changed passage taking an untouched one's id.
_PROBLEMS = {
    "articles have no id": "SELECT count(*) FROM edit.articles WHERE article_id IS NULL",
    "article ids are given twice": "SELECT count(article_id) - count(DISTINCT article_id) FROM edit.articles",
    "changed articles have no title or no body": "SELECT count(*) FROM edit.articles "
    f"WHERE {_TOUCHED} AND (title IS NULL OR body IS NULL)",
    "passages have no id": "SELECT count(*) FROM edit.passages WHERE passage_id IS NULL",
    "passage ids are given twice": "SELECT count(passage_id) - count(DISTINCT passage_id) FROM edit.passages",
    "passage ids are not positive": "SELECT count(*) FROM edit.passages WHERE passage_id <= 0",
    "passages belong to no article": "SELECT count(*) FROM edit.passages "
    f"WHERE article_id IS NULL OR article_id NOT IN {_IDS}",
    "passages' offsets are not 0 <= char_start < char_end <= the length of their article's body": """
        SELECT count(*) FROM edit.passages p JOIN edit.articles a USING (article_id) WHERE p.article_id IN
        (SELECT article_id FROM changed) AND NOT coalesce(0 <= p.char_start AND p.char_start < p.char_end
                                                          AND p.char_end <= length(a.body), false)""",
    "passages' text is not their article's body between their offsets": """
        SELECT count(*) FROM edit.passages p JOIN edit.articles a USING (article_id) WHERE p.article_id IN
        (SELECT article_id FROM changed) AND 0 <= p.char_start AND p.char_start < p.char_end
        AND p.char_end <= length(a.body)
        AND NOT coalesce(substring(a.body, p.char_start + 1, p.char_end - p.char_start) = p.text, false)""",
    "passages have no vector, or one with NULL, NaN or infinite values": "SELECT count(*) FROM edit.passages "
    f"WHERE {_TOUCHED} AND (embedding IS NULL "
    f"OR len(list_filter({_FLOATS}, lambda x: x IS NULL OR NOT isfinite(x))) > 0)",
    "passages' vectors are not of unit length (searches compare them by dot product)": "SELECT count(*) "
    f"FROM edit.passages WHERE {_TOUCHED} AND list_bool_and(list_transform({_FLOATS}, lambda x: isfinite(x))) "
    f"AND NOT abs(sqrt(list_sum(list_transform({_FLOATS}, lambda x: x * x))) - 1) <= {NORM_TOLERANCE}",
    "duplicate pairs lack an id, a kind or a similarity": "SELECT count(*) FROM edit.duplicates "
    "WHERE article_id IS NULL OR duplicate_id IS NULL OR kind IS NULL OR NOT coalesce(isfinite(similarity), false)",
    "duplicate pairs name an article that is not indexed": f"SELECT count(*) FROM edit.duplicates WHERE "
    f"article_id NOT IN {_IDS} OR duplicate_id NOT IN {_IDS}",
    "duplicate pairs pair an article with itself": "SELECT count(*) FROM edit.duplicates "
    "WHERE article_id = duplicate_id",
}


def write_sql(directory: Path, query: str, timeout: float | None = sandbox.TIMEOUT) -> Edit:
    """Run a statement that may change the tables, and commit what it changed.

    Args:
        directory: The index directory.
        query: SQL: INSERT, UPDATE, DELETE and reading statements (:data:`.sandbox.EDITING`), one or several.
        timeout: Seconds the statement may run (``None`` or 0: no limit).

    Returns:
        The statement's rows, and the commit made (none when nothing changed).

    Raises:
        QueryRefused: A statement of another kind, or the time limit reached; nothing ran, or nothing was written.
        EditRefused: The change would leave the index unsound; the index is unchanged.
        NewsarchiveError: The statement failed, or there is no index; the index is unchanged.
    """
    sandbox.check_statements(query, sandbox.EDITING)
    Manifest.load(directory)  # says there is no index, before a writer creates a folder for one
    with Writer(directory) as writer:
        manifest = writer.base
        db = catalog.connect(directory, manifest)
        try:
            sandbox.confine(db, catalog.files(directory, manifest), WRITE_CACHE)
            db.execute("ATTACH ':memory:' AS edit")
            for table in TABLES:
                db.execute(f"CREATE TABLE edit.{table} AS SELECT * FROM memory.{table}")
            db.execute("USE edit")
            with sandbox.running(db, timeout):
                relation = db.sql(query)
                columns, rows = (relation.columns, relation.fetchall()) if relation is not None else ([], [])
            db.execute("USE memory")
            db.execute(_CHANGED)
            _refuse_problems(db)
            changed = _commit_changes(writer, db)
        finally:
            db.close()
        committed = writer.commit(verify=True) if changed else None
    return Edit(columns, rows, committed.commit if committed else None)


def _refuse_problems(db: duckdb.DuckDBPyConnection) -> None:
    problems = [f"{n} {what}" for what, sql in _PROBLEMS.items() if (n := db.execute(sql).fetchall()[0][0])]
    touched = db.execute(f"SELECT article_id FROM edit.articles WHERE {_TOUCHED}").fetchall()
    bad = [article_id for (article_id,) in touched if not valid_article_id(article_id)]
    if bad:
        problems.append(f"{len(bad)} article ids are empty or hold slashes or control characters (as {bad[0]!r})")
    if problems:
        raise EditRefused(f"not written, it would break the index: {'; '.join(problems)}")


def _commit_changes(writer: Writer, db: duckdb.DuckDBPyConnection) -> bool:
    """Hand the writer what differs between the copy and the commit; whether anything does."""
    changed = [row[0] for row in db.execute("SELECT article_id FROM changed ORDER BY 1").fetchall()]
    kept = {row[0] for row in db.execute(f"SELECT article_id FROM edit.articles WHERE {_TOUCHED}").fetchall()}
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
    separated = [(a, b, catalog.SEPARATED, 0.0) for a, b in removed if (a, b) not in added_pairs]
    writer.pair([(a, b, kind, float(sim)) for a, b, kind, sim in added] + separated)
    return bool(changed or added or separated)
