"""The FAISS index: one vector per passage, under the passage's DuckDB ``passage_id``."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

INDEX_TYPE = "IDMap2,Flat (inner product)"


class VectorIndex:
    """Exact inner-product search over normalized vectors (cosine similarity), keyed by passage id."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index

    @classmethod
    def create(cls, dimension: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        return cls(faiss.read_index(str(path)))

    def save(self, path: Path) -> None:
        """Write to ``path`` through a temporary file, so a reader never sees half a file."""
        partial = path.with_name(path.name + ".partial")
        faiss.write_index(self.index, str(partial))
        os.replace(partial, path)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """Every stored passage id, in insertion order."""
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of these passage ids, one row each (every id must be in the index)."""
        if not ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``k`` nearest passages to one query vector, as (passage id, cosine similarity), best first.

        ``allowed``, when given, limits the search to those passage ids.
        """
        if not len(self) or (allowed is not None and not len(allowed)):
            return []
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
        vector = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self.index.search(vector, min(k, len(self)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]
