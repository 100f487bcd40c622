"""The FAISS index: one vector per passage, under the passage's DuckDB ``passage_id``.

Up to :data:`EXACT_UP_TO` passages every search compares the query with every vector (``Flat``): exact, and fast
enough. Beyond that the index is an inverted file of 8-bit vectors (``IVF<lists>,SQ8``): k-means cells, of which a
search scans the few nearest the query, holding each vector in a quarter of the memory. Any FAISS index factory
string can be asked for instead (``newsarchive index --vector-index``). The exact vectors stay in DuckDB
(``passages.embedding``), so a different index can always be rebuilt from them without embedding again.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import faiss
import numpy as np

from .errors import NewsarchiveError

EXACT = "Flat"
EXACT_UP_TO = 100_000  # passages; an exact search over 100k takes ~10 ms on 2 cores (bench/search.py)
NEAR_PROBED = 8  # cells of an IVF index that a near-copy lookup scans: a vector's near-copies share its nearest cells
PROBED = 1 / 8  # share of an IVF index's cells a search scans (with re-ranking, recall@10 0.98: bench/search.py)
TRAINING_PER_LIST = 40  # k-means points per cell that IVF training samples (FAISS warns below 39)


def factory_for(passages: int) -> str:
    """The index kind ``auto`` picks for an archive of this many passages."""
    if passages <= EXACT_UP_TO:
        return EXACT
    return f"IVF{2 ** round(math.log2(4 * math.sqrt(passages)))},SQ8"  # about 4 √n cells, as FAISS advises


def check_factory(factory: str, dimension: int) -> None:
    """Refuse, before any work, a factory string FAISS cannot build for vectors of this size.

    Raises:
        NewsarchiveError: What FAISS objects to.
    """
    try:
        faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise NewsarchiveError(f"FAISS cannot build vector index {factory!r}: {_reason(error)}") from None


class VectorIndex:
    """Inner-product search over normalized vectors (cosine similarity), keyed by passage id.

    Args:
        index: Either an ``IndexIDMap2`` around an index without ids of its own, or an IVF index with a hash
            table from passage id to vector (so it can return and remove vectors by id).
    """

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        self._ivf = faiss.try_extract_index_ivf(index)
        if self._ivf is not None:  # set here, not stored: a better setting applies to indexes already built
            self._ivf.nprobe = max(1, round(self._ivf.nlist * PROBED))

    @classmethod
    def build(cls, factory: str, dimension: int, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        """A new index of kind ``factory`` (a FAISS index factory string) holding these vectors.

        Raises:
            NewsarchiveError: FAISS does not know ``factory``, or it needs more vectors to train than there are.
        """
        try:
            index = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.try_extract_index_ivf(index)
            if ivf is None:
                index = faiss.index_factory(dimension, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
            else:
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            if not index.is_trained:
                cells = ivf.nlist if ivf is not None else 1
                if len(vectors) < cells:
                    raise NewsarchiveError(
                        f"vector index {factory!r} needs at least {cells:,} passages to train, this archive has "
                        f"{len(vectors):,}: use --vector-index auto"
                    )
                sample = np.random.default_rng(0).permutation(len(vectors))[: cells * TRAINING_PER_LIST]
                index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
        except RuntimeError as error:
            raise NewsarchiveError(f"FAISS cannot build vector index {factory!r}: {_reason(error)}") from None
        built = cls(index)
        built.add(ids, vectors)
        return built

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

    @property
    def exact(self) -> bool:
        """Whether searches compare the query with every stored vector, unchanged."""
        return isinstance(self.index, faiss.IndexIDMap2) and isinstance(
            faiss.downcast_index(self.index.index), faiss.IndexFlat
        )

    def describe(self) -> str:
        """The index kind in words, for ``newsarchive info``."""
        if self.exact:
            return "exact (Flat)"
        if self._ivf is not None:
            return f"approximate, {self._ivf.nlist:,} IVF cells, {self._ivf.nprobe:,} scanned per search"
        return "approximate"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """Every stored passage id."""
        if self._ivf is None:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self._ivf.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(cell), lists.list_size(cell)).copy()
            for cell in range(lists.nlist)
            if lists.list_size(cell)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        """Remove these passages' vectors.

        Raises:
            RuntimeError: The index kind cannot remove vectors (HNSW, say): build it again instead.
        """
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def vectors(self, ids: list[int] | np.ndarray) -> np.ndarray:
        """The stored vectors of these passage ids, one row each (every id must be in the index).

        An approximate index returns its compressed vectors, decoded: cosines computed with them are within about
        0.002 of the exact ones.
        """
        if not len(ids):
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``k`` nearest passages to one query vector, as (passage id, cosine similarity), best first.

        ``allowed``, when given, limits the search to those passage ids. An approximate index scores a small
        allowed set exactly, vector by vector, since its cells near the query may hold none of them.
        """
        if not len(self) or (allowed is not None and not len(allowed)):
            return []
        vector = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if allowed is not None and not self.exact and len(allowed) <= EXACT_UP_TO:
            allowed = np.asarray(allowed, dtype=np.int64)
            scores = self.vectors(allowed) @ vector[0]
            best = np.argsort(-scores, kind="stable")[:k]
            return [(int(allowed[i]), float(scores[i])) for i in best]
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if self._ivf is not None:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self._ivf.nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
        threads = faiss.omp_get_max_threads()
        # One thread for one query: onnxruntime's threads, still spinning after embedding the query, hold the other
        # core, and sharing it made an exact search of 10k vectors take 6 ms instead of 0.5 (set per thread).
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(vector, min(k, len(self)), params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def neighbours(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest passages of each query, for finding near-copies: (ids, similarities), a row per query.

        Ids are -1 where there are fewer than ``k``. An approximate index scans only the few cells nearest each
        query, where vectors with a cosine near 1 lie; farther neighbours may be missed.
        """
        if not len(self) or not len(queries):
            return np.full((len(queries), 0), -1, dtype=np.int64), np.zeros((len(queries), 0), dtype=np.float32)
        params = faiss.SearchParametersIVF(nprobe=min(NEAR_PROBED, self._ivf.nlist)) if self._ivf is not None else None
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        scores, ids = self.index.search(queries, min(k, len(self)), params=params)
        return ids, scores


def _reason(error: RuntimeError) -> str:
    """FAISS's own message, without the C++ file and line around it."""
    found = re.search(r"\.(?:cpp|h):\d+: (.+)", str(error))
    return found.group(1).strip() if found else str(error).strip()
