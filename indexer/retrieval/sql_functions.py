"""Search inside SQL: ``embed(text)``, and the table macros ``semantic_search`` and ``search_passages``.

- ``embed(text)`` is a question's vector, as the index's model computes it, to compare with ``passages.embedding``.
- ``semantic_search(query, k := 10)`` ranks passages by cosine similarity, in SQL alone.
- ``search_passages(query, k := 10, mode := 'hybrid')`` runs the search API (hybrid, dense or lexical).

Both macros return ``(passage_id, score)`` rows, best first, to join with ``passages`` and ``articles``.

They are registered on the connection that ``newsarchive sql`` (and ``POST /v1/sql``) opens, by :func:`people_sql`.
The model and the search indexes load on the first call that needs them, so queries that use neither stay instant.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Iterator

import duckdb

from indexer.models.embedder import load_embedder
from indexer.storage import Snapshot, catalog, sandbox


@contextlib.contextmanager
def people_sql(snapshot: Snapshot, query: str, timeout: float | None) -> Iterator[duckdb.DuckDBPyRelation | None]:
    """Run a person's read-only ``query`` on ``snapshot``'s commit, sandboxed (:mod:`indexer.storage.sandbox`) and
    with these functions; yields its relation (``None`` for a statement without rows), to be read inside the
    block, which the time limit covers: DuckDB runs a query lazily, so errors and the limit may come as rows are read.

    Raises:
        QueryRefused: A statement other than SELECT and its kin, or the time limit reached.
        NewsarchiveError: DuckDB refused or failed the query.
    """
    sandbox.check_statements(query, sandbox.READING)
    with catalog.sandboxed(snapshot.directory, snapshot.manifest) as db:
        register(db, snapshot)
        with sandbox.running(db, timeout):
            yield db.sql(query)


SEMANTIC_SEARCH = """
CREATE TEMP MACRO semantic_search(query, k := 10) AS TABLE
    SELECT passage_id, array_cosine_similarity(embedding, embed(query)) AS score
    FROM passages
    ORDER BY score DESC
    LIMIT k
"""
SEARCH_PASSAGES = """
CREATE TEMP MACRO search_passages(query, k := 10, mode := 'hybrid') AS TABLE
    SELECT hit.passage_id, hit.score FROM (SELECT unnest({function}(query, k, mode)) AS hit)
"""


def register(db: duckdb.DuckDBPyConnection, snapshot: Snapshot) -> None:
    """Add ``embed``, ``semantic_search`` and ``search_passages`` to ``db``, a connection showing ``snapshot``'s
    commit; searches run on that snapshot."""
    from indexer.retrieval.archive import Archive
    from indexer.retrieval.search import embed_query, rank

    manifest = snapshot.manifest
    # A served archive (the API's) has its model loaded already; `newsarchive sql` loads what a query needs.
    served = snapshot if isinstance(snapshot, Archive) else None
    archive = (lambda: served) if served else functools.cache(lambda: Archive(snapshot.directory))

    def embed(text: str) -> list[float]:  # the model alone: semantic_search needs neither FAISS nor BM25
        model = (
            served.embedder
            if served
            else load_embedder(manifest.model, manifest.query_prompt, manifest.passage_prompt, manifest.precision)
        )
        return model.embed_queries([text])[0].tolist()

    def search_passages(query: str, k: int, mode: str) -> list[dict[str, float]]:
        vector = embed_query(archive(), query) if mode != "lexical" else None
        return [{"passage_id": i, "score": s} for i, s in rank(archive(), query, vector, k, mode=mode)]

    # Connections to one file in one process share the catalog that Python functions are registered in, and a
    # function outlives its connection but not its Python side. So each connection registers its own, under a
    # unique name, behind connection-local macros.
    suffix = uuid.uuid4().hex
    types = duckdb.sqltypes
    vector = duckdb.array_type(types.FLOAT, manifest.dimension)
    hit = duckdb.struct_type({"passage_id": types.BIGINT, "score": types.DOUBLE})
    db.create_function(f"_embed_{suffix}", embed, [types.VARCHAR], vector, side_effects=False)
    db.create_function(
        f"_search_{suffix}",
        search_passages,
        [types.VARCHAR, types.BIGINT, types.VARCHAR],
        duckdb.list_type(hit),
        side_effects=False,
    )
    db.execute(f"CREATE TEMP MACRO embed(text) AS _embed_{suffix}(text)").fetchall()
    db.execute(SEMANTIC_SEARCH).fetchall()
    db.execute(SEARCH_PASSAGES.format(function=f"_search_{suffix}")).fetchall()
