"""Compressed vectors on real embeddings: what the approximate indexes find, against exact search.

SQuAD-it's 2,010 paragraphs (bench/data/squad-it) embedded by the real default model, searched by 300 of its
questions, as a segment of an approximate index searches them: multilingual-e5's vectors lie close together, which
makes compressed ones misorder their nearest neighbours more than on other models' vectors.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from indexer.indexes.vectors import EXACT, PROBED, Part, SegmentedVectors, VectorIndex

from .conftest import ROOT

pytestmark = pytest.mark.model
SQUAD = ROOT / "bench" / "data" / "squad-it"


@pytest.fixture(scope="module")
def embedded(real_model) -> tuple[np.ndarray, np.ndarray]:
    passages = [
        json.loads(line)["text"] for line in (SQUAD / "passages.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    questions = [
        json.loads(line)["text"] for line in (SQUAD / "queries_it.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    asked = random.Random(0).sample(questions, 300)
    return real_model.embed_passages(passages), real_model.embed_queries(asked)


def _recall(embedded: tuple[np.ndarray, np.ndarray], factory: str, every_cell: bool) -> float:
    """Recall@10 against exact search of a segment of ``factory`` as a search asks it (:class:`SegmentedVectors`)."""
    vectors, queries = embedded
    ids = np.arange(len(vectors))
    exact = VectorIndex.build(EXACT, vectors.shape[1], ids, vectors)
    index = VectorIndex.build(factory, vectors.shape[1], ids, vectors)
    assert index.describe().endswith(f"{round(32 * PROBED)} scanned per search")
    if every_cell:
        index._ivf.nprobe = 32  # noqa: SLF001 -- what compression alone loses
    segments = SegmentedVectors([Part(index, ids, vectors, np.zeros(0, np.int64))], vectors.shape[1])
    found = [{i for i, _ in segments.search(q, 10)} for q in queries]
    return float(np.mean([len({i for i, _ in exact.search(q, 10)} & f) / 10 for q, f in zip(queries, found)]))


def test_one_bit_codes_rescored_lose_almost_nothing_on_real_embeddings(embedded) -> None:
    """Scanning every cell, one-bit codes with five times the candidates scored again exactly find 99% of exact
    search's ten nearest paragraphs of each question; 8-bit vectors, whose order a search keeps, 98%."""
    assert _recall(embedded, "IVF32,RaBitQ", every_cell=True) >= 0.99
    assert _recall(embedded, "IVF32,SQ8", every_cell=True) >= 0.98


def test_one_bit_codes_find_what_8_bit_vectors_do_in_the_cells_a_search_scans(embedded) -> None:
    """Scanning the usual share of cells (the same cells: both train on the same sample), one-bit codes rescored
    find what 8-bit vectors find, within a point; the cells, not the codes, set what both miss."""
    ours, theirs = _recall(embedded, "IVF32,RaBitQ", every_cell=False), _recall(embedded, "IVF32,SQ8", every_cell=False)
    assert ours >= theirs - 0.01 and ours >= 0.85, (ours, theirs)
