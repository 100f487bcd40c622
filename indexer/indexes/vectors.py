"""The FAISS indexes: one vector per passage, under the passage's ``passage_id``, an index per segment.

A segment of up to :data:`EXACT_UP_TO` passages is searched by comparing the query with every vector (``Flat``):
exact, and fast enough. A larger one (a merge makes them) gets an inverted file of one-bit RaBitQ codes
(``IVF<lists>,RaBitQ``): k-means cells, of which a search scans the few nearest the query, holding each vector in
56 bytes instead of 1,536. Any FAISS index factory string can be asked for instead (``newsarchive index
--vector-index``; segments made before keep ``IVF<lists>,SQ8``, 8-bit vectors). Each segment keeps its exact vectors
too (``passages.embedding``, read in place), so candidates are scored exactly -- a search takes :data:`REFINE` times
as many from one-bit codes -- and a merge builds its index from them without embedding again.
"""

from __future__ import annotations

import functools
import hashlib
import math
import mmap
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from indexer.errors import NewsarchiveError

EXACT = "Flat"
EXACT_UP_TO = 100_000  # passages; an exact search over 100k takes ~10 ms on 2 cores (bench/search.py)
# Share of an IVF index's cells that a near-copy lookup scans (8 of a million passages' 4,096): a vector's near-copies
# share its nearest cells. A share, so that ten segments cost what one index of their size would, but at most
# NEAR_PROBED_AT_MOST cells, so that a passage's lookups cost the same in an archive of ten million (on
# bench/search.py's 1M passages in one segment, 8 cells found 0.79 of the passages at cosine 0.88 among a passage's
# 20 nearest, 16 cells 0.86 in 1.5 times the time; copies and translations lie closer than these).
NEAR_PROBED, NEAR_PROBED_AT_LEAST, NEAR_PROBED_AT_MOST = 1 / 512, 4, 8
# Share of an IVF index's cells a search scans, up to PROBED_FULLY_UP_TO cells: with re-ranking, recall@10 0.98 on 1M
# passages as built, ten segments of 1,024 cells (an eighth gave 0.978 on an AMD EPYC, family 25; bench/search.py).
# Beyond, the cells scanned grow as the square root of their number (320 of 4,096, 640 of 16,384): a large segment's
# cells hold more passages each. On bench/search.py's archive of three 1M segments (4,096 cells each), recall@10
# 0.971 in 13.6 ms where 5/32 of the cells gave 0.977 in 24.9 ms (the vector search alone).
PROBED, PROBED_FULLY_UP_TO = 5 / 32, 1024
# RaBitQ's one-bit codes (56 bytes a vector, against SQ8's 384) misorder near neighbours more than 8-bit ones, but
# take 2.6 times less time to scan: a search takes this many times the candidates from them (and at least
# SHORTLIST times it) and scores those with the exact vectors. On bench/search.py's 1M archive (10 segments), dense
# recall@10 against exact search was 0.9685 with 3, 0.9745 with 5 and 0.9795 with 10, 8-bit vectors' 0.9795; the
# vector search took 7.9, 8.8 and 12.4 ms, 8-bit vectors' 15.0 (a query's 4 bits, FAISS's default, as good as 8).
REFINE = 5
SHORTLIST = 100  # candidates asked for at least (times REFINE), however few a caller wants
# RaBitQ's similarity estimates were within 0.016 of the exact ones (std 0.0023, 60k passages of bench/search.py): a
# near-copy lookup scores exactly the neighbours estimated within this of its threshold, on either side (0.3% of
# bench/search.py's, whose passages on a topic are all close: scoring every close one was a quarter of a build).
ESTIMATE_ERROR = 0.05
NEIGHBOUR_PAIRS = 40_000  # near-copy pairs scored exactly at once (60 MB of vectors)
APPROXIMATE_FROM = 50_000  # passages: a segment this large trains 1,024 cells on 41k of them
ADD_ROWS = 65_536  # vectors added to an index at a time
TRAINING_PER_LIST = 40  # k-means points per cell that IVF training samples (FAISS warns below 39)


def factory_for(passages: int, archive_passages: int | None = None) -> str:
    """The index kind ``auto`` picks for a segment of this many passages, in an archive of ``archive_passages``.

    Exact while the whole archive is small enough to search exactly; beyond that a segment large enough to train
    an inverted file gets one, and smaller ones stay exact until merges make them large.
    """
    if max(passages, archive_passages or 0) <= EXACT_UP_TO or passages < APPROXIMATE_FROM:
        return EXACT
    return f"IVF{2 ** round(math.log2(4 * math.sqrt(passages)))},RaBitQ"  # about 4 √n cells, as FAISS advises


def check_factory(factory: str, dimension: int) -> None:
    """Refuse, before any work, a factory string FAISS cannot build for vectors of this size.

    Raises:
        NewsarchiveError: What FAISS objects to.
    """
    try:
        faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise NewsarchiveError(f"FAISS cannot build vector index {factory!r}: {_reason(error)}") from None


def probed(cells: int) -> int:
    """How many of an IVF index's ``cells`` a search scans (:data:`PROBED`)."""
    return max(1, round(PROBED * cells * min(1.0, math.sqrt(PROBED_FULLY_UP_TO / cells))))


class VectorIndex:
    """Inner-product search over normalized vectors (cosine similarity), keyed by passage id.

    Args:
        index: Either an ``IndexIDMap2`` around an index without ids of its own, or an IVF index, whose lists
            hold the ids. An IVF index keeps no table from id to vector: a segment's vectors never change (its
            deleted passages are left out of searches), and the table took 40 to 54 MB of memory a million vectors,
            16 bytes a vector on disk, and 0.04 to 0.1 s to read back. :meth:`vectors` makes it when asked.
    """

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        self._ivf = faiss.try_extract_index_ivf(index)
        if self._ivf is not None:  # set here, not stored: a better setting applies to indexes already built
            self._ivf.nprobe = probed(self._ivf.nlist)
            self._ivf.set_direct_map_type(faiss.DirectMap.NoMap)  # one read from a segment written with it
        # How many times the candidates a search takes, to score again exactly (coarse codes only).
        coarse = self._ivf is not None and isinstance(faiss.downcast_index(self._ivf), faiss.IndexIVFRaBitQ)
        self.refine = REFINE if coarse else 1

    @classmethod
    def build(
        cls, factory: str, dimension: int, ids: np.ndarray, vectors: np.ndarray, trained: VectorIndex | None = None
    ) -> VectorIndex:
        """A new index of kind ``factory`` (a FAISS index factory string) holding these vectors.

        ``trained``, an empty index of that kind already trained (:meth:`empty`), is copied instead of training
        again: the segments one commit writes then share their cells, and a search or a near-copy lookup finds a
        query's nearest cells once for all of them (:class:`SegmentedVectors`).

        Raises:
            NewsarchiveError: FAISS does not know ``factory``, or it needs more vectors to train than there are.
        """
        built = cls(faiss.clone_index(trained.index)) if trained is not None else cls.empty(factory, dimension, vectors)
        built.add(ids, vectors)
        return built

    @classmethod
    def empty(cls, factory: str, dimension: int, vectors: np.ndarray) -> VectorIndex:
        """An index of kind ``factory`` holding nothing yet, trained on a sample of ``vectors`` if its kind needs it.

        Raises:
            NewsarchiveError: As :meth:`build`.
        """
        try:
            index = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.try_extract_index_ivf(index)
            if ivf is None:
                index = faiss.index_factory(dimension, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
            if not index.is_trained:
                cells = ivf.nlist if ivf is not None else 1
                if len(vectors) < cells:
                    raise NewsarchiveError(
                        f"vector index {factory!r} needs at least {cells:,} passages to train, this archive has "
                        f"{len(vectors):,}: use --vector-index auto"
                    )
                sample = np.random.default_rng(0).permutation(len(vectors))[: cells * TRAINING_PER_LIST]
                index.train(_float32(vectors[np.sort(sample)], unit=True))
        except RuntimeError as error:
            raise NewsarchiveError(f"FAISS cannot build vector index {factory!r}: {_reason(error)}") from None
        return cls(index)

    @classmethod
    def flat(cls, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        """An exact index of these vectors, built in a moment: a segment's exact vectors are stored anyway."""
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        built = cls(index)
        built.add(ids, vectors)
        return built

    @classmethod
    def load(cls, path: Path, mapped: bool = False) -> VectorIndex:
        """Read a saved index into memory, or memory-map it (``mapped``): then opening costs nothing and a search
        reads only the cells it scans, but scans them 2.6 times slower -- for a few lookups, not for searches."""
        return cls(faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mapped else 0))

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
        ids = np.asarray(ids, dtype=np.int64)
        for start in range(0, len(ids), ADD_ROWS):  # float16 vectors become float32 a block at a time
            block = _float32(vectors[start : start + ADD_ROWS], unit=self._ivf is not None)
            self.index.add_with_ids(block, ids[start : start + ADD_ROWS])

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
        if self._ivf is not None and self._ivf.direct_map.type == faiss.DirectMap.NoMap:
            self._ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # once: a pass over the lists
        return self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
        cells: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest passages to one query vector, as (passage id, cosine similarity), best first.

        ``allowed``, when given, limits the search to those passage ids, and ``excluded`` leaves those out. An
        approximate index scores a small allowed set exactly, vector by vector, since its cells near the query may
        hold none of them. ``cells`` are the cells to scan if the caller has found them already
        (:meth:`nearest_cells` with ``near`` false, of an index with the same :attr:`cells_key`).
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
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        elif excluded is not None and len(excluded):
            # FAISS keeps a pointer to the inner selector: it must live as long as the outer one.
            inner = faiss.IDSelectorBatch(np.asarray(excluded, dtype=np.int64))
            selector = faiss.IDSelectorNot(inner)
            selector.inner = inner
        if self._ivf is not None and (selector is not None or cells is not None):
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self._ivf.nprobe)
        elif selector is not None:
            params = faiss.SearchParameters(sel=selector)
        threads = faiss.omp_get_max_threads()
        # One thread for one query: onnxruntime's threads, still spinning after embedding the query, hold the other
        # core, and sharing it made an exact search of 10k vectors take 6 ms instead of 0.5 (set per thread).
        faiss.omp_set_num_threads(1)
        try:
            if cells is not None and self.cells_key is not None:
                scores, ids = self._search_in(vector, min(k, len(self)), cells, params)
            else:
                scores, ids = self.index.search(vector, min(k, len(self)), params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        return [(i, s) for i, s in zip(ids[0].tolist(), scores[0].tolist()) if i != -1]

    def neighbours(
        self,
        queries: np.ndarray,
        k: int,
        excluded: np.ndarray | None = None,
        cells: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest passages of each query, for finding near-copies: (ids, similarities), a row per query.

        Ids are -1 where there are fewer than ``k``; ``excluded`` ids are left out. An approximate index scans only
        the few cells nearest each query, where vectors with a cosine near 1 lie; farther neighbours may be missed.
        ``cells`` are those cells if the caller has found them already (:meth:`nearest_cells`, of an index with the
        same :attr:`cells_key`).
        """
        if not len(self) or not len(queries):
            return np.full((len(queries), 0), -1, dtype=np.int64), np.zeros((len(queries), 0), dtype=np.float32)
        selector = inner = None
        if excluded is not None and len(excluded):
            inner = faiss.IDSelectorBatch(np.asarray(excluded, dtype=np.int64))
            selector = faiss.IDSelectorNot(inner)
        if self._ivf is not None:
            params = faiss.SearchParametersIVF(nprobe=self._near_probed, sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, len(self))
        if cells is not None and self.cells_key is not None:
            scores, ids = self._search_in(queries, k, cells, params)
        else:
            scores, ids = self.index.search(queries, k, params=params)
        del inner  # only now: the selector pointed at it during the search
        return ids, scores

    @functools.cached_property
    def cells_key(self) -> bytes | None:
        """What identifies this index's cells: indexes built from one trained index (:meth:`build`) share the key;
        ``None`` for an index whose cells a caller cannot look up for it (exact, or cells behind a transform)."""
        if not isinstance(self.index, faiss.IndexIVF):
            return None
        centroids = self._ivf.quantizer.reconstruct_n(0, self._ivf.nlist)
        return hashlib.blake2b(centroids.tobytes(), digest_size=16).digest()

    def nearest_cells(self, queries: np.ndarray, near: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The cells a near-copy lookup (:meth:`neighbours`), or with ``near`` false a search (:meth:`search`),
        scans for each query (a row each): (cells, their similarities)."""
        queries = np.ascontiguousarray(queries.reshape(-1, self.dimension), dtype=np.float32)
        similarities, cells = self._ivf.quantizer.search(queries, self._near_probed if near else self._ivf.nprobe)
        return cells, similarities

    def _search_in(
        self, queries: np.ndarray, k: int, cells: tuple[np.ndarray, np.ndarray], params: faiss.SearchParametersIVF
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's search of the IVF index in cells found already: (scores, ids), a row per query."""
        scores = np.empty((len(queries), k), dtype=np.float32)
        ids = np.empty((len(queries), k), dtype=np.int64)
        nearest, similarities = (np.ascontiguousarray(part) for part in cells)
        pointers = [faiss.swig_ptr(array) for array in (queries, nearest, similarities, scores, ids)]
        # Parallel over the queries, as FAISS's own search is (alone, search_preassigned keeps to one thread).
        mode, self._ivf.parallel_mode = self._ivf.parallel_mode, 3
        try:
            self._ivf.search_preassigned_c(len(queries), pointers[0], k, *pointers[1:], False, params)
        finally:
            self._ivf.parallel_mode = mode
        return scores, ids

    @property
    def _near_probed(self) -> int:
        cells = min(NEAR_PROBED_AT_MOST, max(NEAR_PROBED_AT_LEAST, round(self._ivf.nlist * NEAR_PROBED)))
        return min(self._ivf.nlist, cells)


@dataclass(frozen=True)
class Part:
    """One segment's vectors.

    Attributes:
        index: Its FAISS index.
        ids: Its passage ids, sorted, tombstoned ones included.
        stored: Its exact vectors, a row per id (memory-mapped: an array, or read in place from Parquet).
        deleted: Its tombstoned passage ids, sorted.
    """

    index: VectorIndex
    ids: np.ndarray
    stored: np.ndarray
    deleted: np.ndarray

    def similarities(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The exact cosine similarity of each query with the passage of its id (one each; all ids held here)."""
        held = self.stored[np.searchsorted(self.ids, ids)].astype(np.float32, copy=False)
        return np.einsum("pd,pd->p", held, queries)

    def neighbours(
        self, queries: np.ndarray, k: int, nearest: tuple[np.ndarray, np.ndarray] | None, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`VectorIndex.neighbours` of this segment, tombstones left out; coarse codes' similarities close
        enough to ``threshold`` to fall on either side of it computed again with the exact vectors."""
        found, scores = self.index.neighbours(queries, k, self.deleted, nearest)
        if self.index.refine > 1:
            scores = np.where(found == -1, -np.inf, scores)
            query, column = np.nonzero(np.abs(scores - threshold) < ESTIMATE_ERROR)
            for start in range(0, len(query), NEIGHBOUR_PAIRS):
                chosen = slice(start, start + NEIGHBOUR_PAIRS)
                scores[query[chosen], column[chosen]] = self.similarities(
                    queries[query[chosen]], found[query[chosen], column[chosen]]
                )
            order = np.argsort(-scores, axis=1, kind="stable")
            found, scores = np.take_along_axis(found, order, axis=1), np.take_along_axis(scores, order, axis=1)
        return found, scores


class SegmentedVectors:
    """Search over every live segment's vectors at once, skipping tombstoned passages.

    It answers as one :class:`VectorIndex` does: each segment is searched and the best of all are kept.
    """

    def __init__(self, parts: Sequence[Part], dimension: int) -> None:
        self.parts = list(parts)
        self.dimension = dimension

    @property
    def exact(self) -> bool:
        return all(part.index.exact for part in self.parts)

    def describe(self) -> str:
        kinds = sorted({part.index.describe() for part in self.parts})
        if len(self.parts) == 1:
            return kinds[0]
        return f"{len(self.parts)} segments: {'; '.join(kinds)}"

    def __len__(self) -> int:
        return sum(len(part.ids) - len(part.deleted) for part in self.parts)

    def ids(self) -> np.ndarray:
        """Every live passage id."""
        live = [np.setdiff1d(part.ids, part.deleted, assume_unique=True) for part in self.parts]
        return np.concatenate(live) if live else np.zeros(0, dtype=np.int64)

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The exact stored vectors of these passage ids, a row each.

        Raises:
            KeyError: An id is in no segment.
        """
        ids = np.asarray(ids, dtype=np.int64)
        found = np.zeros(len(ids), dtype=bool)
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        for part in self.parts:
            places = np.minimum(np.searchsorted(part.ids, ids), max(len(part.ids) - 1, 0))
            here = (part.ids[places] == ids) if len(part.ids) else np.zeros(len(ids), dtype=bool)
            out[here] = part.stored[places[here]]
            found |= here
        if not found.all():
            raise KeyError(f"passage ids in no segment: {ids[~found][:5].tolist()}")
        return out

    def release(self) -> None:
        """Give back the memory that reading stored vectors took: a pass over every vector (finding duplicates in
        a large build) would otherwise keep the whole archive's vectors resident. They are read again from the page
        cache when needed."""
        for part in self.parts:
            release_pages(part.stored)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """:meth:`VectorIndex.search` over every segment; a small ``allowed`` set is scored exactly. Segments that
        share their cells (written by one commit) have the query's nearest cells found once."""
        if allowed is not None:
            allowed = self._live(np.asarray(allowed, dtype=np.int64))
            if len(allowed) <= EXACT_UP_TO:
                scores = self.vectors(allowed) @ np.asarray(query, dtype=np.float32).reshape(-1)
                best = np.argsort(-scores, kind="stable")[:k]
                return [(int(allowed[i]), float(scores[i])) for i in best]
        refine = max((part.index.refine for part in self.parts), default=1)
        wanted = k if refine == 1 else max(k, SHORTLIST) * refine
        found: list[tuple[int, float]] = []
        cells: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # found once for all the segments sharing them
        for part in self.parts:
            if allowed is None:
                key = part.index.cells_key
                if key is not None and key not in cells:
                    cells[key] = part.index.nearest_cells(query, near=False)
                found += part.index.search(query, wanted, excluded=part.deleted, cells=cells.get(key))
            else:
                found += part.index.search(query, wanted, allowed=np.intersect1d(allowed, part.ids, assume_unique=True))
        found.sort(key=lambda hit: -hit[1])
        if refine > 1:  # the best by the codes' estimates, in every segment, scored again exactly
            ids = np.asarray([passage_id for passage_id, _ in found[:wanted]], dtype=np.int64)
            scores = self.vectors(ids) @ np.asarray(query, dtype=np.float32).reshape(-1)
            order = np.argsort(-scores, kind="stable")
            found = list(zip(ids[order].tolist(), scores[order].tolist()))
        return found[:k]

    def neighbours(
        self, queries: np.ndarray, k: int, own: np.ndarray | None = None, threshold: float = -1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`VectorIndex.neighbours` over every segment, tombstoned passages left out. Whether a similarity
        reaches ``threshold`` is exact; the similarities themselves may be a segment's estimates, but near the
        threshold (:data:`ESTIMATE_ERROR`), where they are computed again.

        With ``own``, the queries' own passage ids, each query looks only in its own segment and older ones: a
        pair across segments is found from its newer side, as when they were committed one after the other, and
        a build's pass over many new segments costs half as much. Segments that share their cells (written by one
        commit) have each query's nearest cells found once.
        """
        if not self.parts or not len(queries):
            return np.full((len(queries), 0), -1, dtype=np.int64), np.zeros((len(queries), 0), dtype=np.float32)
        all_ids, all_scores = [], []
        cells: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # found once for all the segments sharing them
        for part in self.parts:
            rows = np.arange(len(queries)) if own is None or not len(part.ids) else np.flatnonzero(own >= part.ids[0])
            if not len(rows):
                continue
            key = part.index.cells_key
            if key is not None and key not in cells:
                cells[key] = part.index.nearest_cells(queries)
            nearest = (cells[key][0][rows], cells[key][1][rows]) if key is not None else None
            found, scores = part.neighbours(queries[rows], k, nearest, threshold)
            ids = np.full((len(queries), found.shape[1]), -1, dtype=np.int64)
            best = np.full(ids.shape, -np.inf, dtype=np.float32)
            ids[rows], best[rows] = found, np.where(found == -1, -np.inf, scores)
            all_ids.append(ids)
            all_scores.append(best)
        ids, scores = np.concatenate(all_ids, axis=1), np.concatenate(all_scores, axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(ids, best, axis=1), np.take_along_axis(scores, best, axis=1)

    def _live(self, ids: np.ndarray) -> np.ndarray:
        """These ids, sorted, without the tombstoned and the unknown."""
        ids = np.unique(ids)
        keep = np.zeros(len(ids), dtype=bool)
        for part in self.parts:
            keep |= np.isin(ids, part.ids, assume_unique=True) & ~np.isin(ids, part.deleted, assume_unique=True)
        return ids[keep]


def _float32(vectors: np.ndarray, unit: bool) -> np.ndarray:
    """Vectors as FAISS takes them. Half-precision ones are unit length to within 3e-5 only: for cells (``unit``)
    they are made unit length again, or a cell's centroid (FAISS normalizes them) sits a hair off a vector alone in
    it, and RaBitQ encodes such a tiny remainder badly. An exact index holds them as they are stored."""
    if vectors.dtype != np.float16 or not unit:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    block = vectors.astype(np.float32)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return np.ascontiguousarray(block / np.where(norms > 0, norms, 1))


def _reason(error: RuntimeError) -> str:
    """FAISS's own message, without the C++ file and line around it."""
    found = re.search(r"\.(?:cpp|h):\d+: (.+)", str(error))
    return found.group(1).strip() if found else str(error).strip()


def release_pages(array: np.ndarray) -> None:
    """Drop a memory-mapped array's pages from this process's resident memory (the file stays in the page cache);
    nothing for an array in memory. Vectors read in place from Parquet release their own."""
    if hasattr(array, "release"):
        array.release()
        return
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, mmap.mmap):
        base.madvise(mmap.MADV_DONTNEED)
