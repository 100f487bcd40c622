"""Verifying an index: its manifest, DuckDB tables, FAISS vectors and lexical index describe the same passages."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import layout
from .errors import NewsarchiveError
from .lexical import LexicalIndex
from .manifest import DATABASE, LEXICAL, VECTORS, Manifest
from .store import STRAY_PAIRS, Store, connect
from .vectors import VectorIndex

SAMPLED_VECTORS = 1000  # stored vectors compared between DuckDB and FAISS, spread over the index


def check(directory: Path) -> list[str]:
    """Everything wrong with the index in ``directory``, in words; an empty list means it is sound."""
    try:
        return check_generation(layout.require_current(directory))
    except NewsarchiveError as error:
        return [str(error)]


def check_generation(generation: Path) -> list[str]:
    """:func:`check` for one generation's directory."""
    manifest = Manifest.load(generation)
    missing = [name for name in (DATABASE, VECTORS, LEXICAL) if not (generation / name).exists()]
    if missing:
        return [f"{generation / name} is missing" for name in missing]
    problems = []
    with connect(generation / DATABASE, read_only=True) as db:
        store = Store(db)
        articles, passages = store.counts()
        passage_ids = np.array(sorted(db.execute("SELECT passage_id FROM passages").fetchall()), dtype=np.int64)
        passage_ids = passage_ids.reshape(-1)
        orphans = db.execute(
            "SELECT count(*) FROM passages WHERE article_id NOT IN (SELECT article_id FROM articles)"
        ).fetchall()[0][0]
        strays = db.execute(
            f"""SELECT (SELECT count(*) FROM duplicates WHERE {STRAY_PAIRS}),
                       (SELECT count(*) FROM articles WHERE story_id NOT IN (SELECT article_id FROM articles))"""
        ).fetchall()[0]
        sample = passage_ids[:: max(1, len(passage_ids) // SAMPLED_VECTORS)]
        _, stored = store.vectors_of(sample.tolist())
    vectors = VectorIndex.load(generation / VECTORS)
    lexical = LexicalIndex.load(generation / LEXICAL)
    faiss_ids = np.sort(vectors.ids())
    if (manifest.articles, manifest.passages) != (articles, passages):
        problems.append(
            f"the manifest counts {manifest.articles} articles and {manifest.passages} passages, "
            f"DuckDB holds {articles} and {passages}"
        )
    if vectors.dimension != manifest.dimension:
        problems.append(f"FAISS vectors have {vectors.dimension} dimensions, the manifest says {manifest.dimension}")
    if len(np.unique(faiss_ids)) != len(faiss_ids):
        problems.append("FAISS holds some passage ids twice")
    if not np.array_equal(faiss_ids, passage_ids):
        extra, lost = np.setdiff1d(faiss_ids, passage_ids), np.setdiff1d(passage_ids, faiss_ids)
        problems.append(
            f"FAISS ids differ from DuckDB passage ids: {len(extra)} only in FAISS, {len(lost)} only in DuckDB"
        )
    elif len(sample) and not _same_vectors(vectors, vectors.vectors(sample), stored):
        problems.append("FAISS vectors differ from passages.embedding")
    if not np.array_equal(np.sort(lexical.ids), passage_ids):
        problems.append("the lexical index's passage ids differ from DuckDB's")
    if orphans:
        problems.append(f"{orphans} passages belong to no article")
    if strays[0]:
        problems.append(f"{strays[0]} duplicate pairs name an article that is not indexed")
    if strays[1]:
        problems.append(f"{strays[1]} articles have a story_id that is no article's id")
    return problems


def _same_vectors(vectors: VectorIndex, held: np.ndarray, stored: np.ndarray) -> bool:
    """Whether FAISS holds each passage's stored embedding: exactly, or compressed but nearest to its own."""
    if vectors.exact:
        return np.allclose(held, stored, atol=1e-5)
    similarities = held @ stored.T
    own = similarities.diagonal()
    # Within a hair of the best, not the best: two passages may have the same text, hence the same vector.
    return bool((own >= similarities.max(axis=1) - 1e-3).all() and own.min() > 0.9)
