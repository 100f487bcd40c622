"""Search by meaning inside SQL: an ``embed(text)`` function and a ``semantic_search(query, k)`` table macro.

``semantic_search`` returns ``(passage_id, score)`` rows, best first, to join with ``passages`` and ``articles``.

They are registered on the connection that ``newsarchive sql`` opens. The model loads on the first call of
``embed``, so queries that do not use it stay instant.
"""

from __future__ import annotations

import uuid

import duckdb

from .embedder import load_embedder
from .manifest import Manifest

SEMANTIC_SEARCH = """
CREATE TEMP MACRO semantic_search(query, k := 10) AS TABLE
    SELECT passage_id, array_cosine_similarity(embedding, embed(query)) AS score
    FROM passages
    ORDER BY score DESC
    LIMIT k
"""


def register(db: duckdb.DuckDBPyConnection, manifest: Manifest) -> None:
    """Add ``embed`` (a query's vector, as the index's model computes it) and ``semantic_search`` to ``db``."""

    def embed(text: str) -> list[float]:
        model = load_embedder(manifest.model, manifest.query_prompt, manifest.passage_prompt)
        return model.embed_queries([text])[0].tolist()

    vector = duckdb.array_type(duckdb.sqltypes.FLOAT, manifest.dimension)
    # Connections to one file in one process share the catalog that Python functions are registered in, and a
    # function outlives its connection but not its Python side. So each connection registers its own, under a
    # unique name, behind a connection-local `embed` macro.
    name = f"_newsarchive_embed_{uuid.uuid4().hex}"
    db.create_function(name, embed, [duckdb.sqltypes.VARCHAR], vector, side_effects=False)
    db.execute(f"CREATE TEMP MACRO embed(text) AS {name}(text)").fetchall()
    db.execute(SEMANTIC_SEARCH).fetchall()
