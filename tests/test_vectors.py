"""The FAISS index: exact below a size, approximate above it, any factory string on request, all by passage id."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from indexer.errors import NewsarchiveError
from indexer.indexes.vectors import (
    ESTIMATE_ERROR,
    EXACT,
    EXACT_UP_TO,
    REFINE,
    Part,
    SegmentedVectors,
    VectorIndex,
    factory_for,
    probed,
    release_pages,
)
from indexer.storage import segment
from indexer.storage.parquet_vectors import ParquetVectors
from indexer.storage.segment import stored_vectors
from indexer.text.passages import Passage


def unit_vectors(count: int, dimension: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_auto_is_exact_for_small_archives_and_ivf_for_large_ones() -> None:
    assert factory_for(10) == factory_for(EXACT_UP_TO) == EXACT
    assert factory_for(EXACT_UP_TO + 1) == "IVF1024,RaBitQ"
    assert factory_for(1_000_000) == "IVF4096,RaBitQ"
    assert factory_for(10_000_000) == "IVF16384,RaBitQ"


def test_a_search_scans_a_share_of_a_small_index_s_cells_and_fewer_of_a_large_one_s() -> None:
    """5/32 of up to 1,024 cells; beyond, as the square root of the cells: a search of ten 1M segments costs what
    one of a 10M segment does, not ten times its share."""
    assert [probed(cells) for cells in (32, 1024)] == [5, 160]
    assert [probed(cells) for cells in (4096, 16384)] == [320, 640]
    assert probed(1) == 1
    index = VectorIndex.build("IVF64,RaBitQ", 32, np.arange(3000), unit_vectors(3000))
    assert index.describe() == "approximate, 64 IVF cells, 10 scanned per search"


@pytest.mark.parametrize("factory", [EXACT, "IVF16,SQ8", "HNSW8"])
def test_every_kind_finds_stores_and_returns_vectors_by_passage_id(factory: str, tmp_path: Path) -> None:
    vectors, ids = unit_vectors(2000), np.arange(1000, 3000)
    built = VectorIndex.build(factory, 32, ids, vectors)
    built.save(tmp_path / "vectors.faiss")
    index = VectorIndex.load(tmp_path / "vectors.faiss")
    assert len(index) == 2000 and sorted(index.ids().tolist()) == ids.tolist()
    assert index.exact == (factory == EXACT)
    top, similarity = index.search(vectors[7], k=3)[0]
    assert top == 1007 and similarity == pytest.approx(1.0, abs=0.01)
    assert np.allclose(index.vectors([1007, 2999]), vectors[[7, 1999]], atol=0.01)
    # A filter: a small allowed set is scored exactly, whatever the index kind.
    allowed = np.array([1500, 2500, 2600])
    hits = index.search(vectors[500], k=5, allowed=allowed)
    assert [i for i, _ in hits][0] == 1500 and {i for i, _ in hits} <= set(allowed.tolist())


def test_ivf_recall_against_exact_search() -> None:
    """On clustered vectors (like real embeddings), scanning 1/32 of the cells keeps recall@10 high."""
    rng = np.random.default_rng(1)
    centres = unit_vectors(50, 64, seed=2)
    vectors = centres[rng.integers(0, 50, 20_000)] + 0.08 * rng.standard_normal((20_000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(20_000)
    exact, ivf = VectorIndex.build(EXACT, 64, ids, vectors), VectorIndex.build("IVF128,SQ8", 64, ids, vectors)
    queries = vectors[:100] + 0.05 * rng.standard_normal((100, 64)).astype(np.float32)
    recall = np.mean(
        [len({i for i, _ in exact.search(q, 10)} & {i for i, _ in ivf.search(q, 10)}) / 10 for q in queries]
    )
    assert recall >= 0.9, recall


@pytest.mark.parametrize("factory", [EXACT, "IVF128,SQ8", "IVF128,RaBitQ"])
def test_near_copies_are_each_others_neighbours(factory: str) -> None:
    """The duplicate finder's lookup: a slightly changed copy of each vector is among its neighbours, in one batch."""
    rng = np.random.default_rng(3)
    originals = unit_vectors(10_000, 64, seed=4)
    copies = originals[:50] + 0.02 * rng.standard_normal((50, 64)).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    index = VectorIndex.build(factory, 64, np.arange(10_000), originals)
    ids, similarities = index.neighbours(copies, 5)
    assert ids.shape == similarities.shape == (50, 5)
    estimated = 0.1 if index.refine > 1 else 0  # one-bit codes' estimates (64 dimensions: wider than e5's 384)
    assert (ids[:, 0] == np.arange(50)).all() and (similarities[:, 0] > 0.95 - estimated).all()
    assert index.neighbours(copies[:0], 5)[0].shape == (0, 0)


def test_one_bit_codes_rescored_exactly_find_what_exact_search_finds(tmp_path: Path) -> None:
    """A segment of RaBitQ codes: a search takes REFINE times the candidates and returns them with their exact
    similarities, finding nearly what exact search finds (more than the codes' own order does); a near-copy lookup
    gives exact similarities wherever they may pass its threshold."""
    rng = np.random.default_rng(9)
    centres = unit_vectors(40, 64, seed=10)
    vectors = centres[rng.integers(0, 40, 8_000)] + 0.1 * rng.standard_normal((8_000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(8_000)
    VectorIndex.build("IVF64,RaBitQ", 64, ids, vectors).save(tmp_path / "vectors.faiss")
    index = VectorIndex.load(tmp_path / "vectors.faiss")
    assert index.refine == REFINE > 1 and VectorIndex.build("IVF64,SQ8", 64, ids, vectors).refine == 1
    part = Part(index, ids, vectors, np.array([11]))
    segments = SegmentedVectors([part], 64)
    queries = vectors[:100] + 0.05 * rng.standard_normal((100, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = VectorIndex.build(EXACT, 64, ids, vectors)
    ours = codes = 0.0
    for query in queries:
        truth = {i for i, _ in exact.search(query, 10, excluded=np.array([11]))}
        hits = segments.search(query, 10)
        assert [s for _, s in hits] == pytest.approx((vectors[[i for i, _ in hits]] @ query).tolist(), abs=1e-5)
        assert 11 not in {i for i, _ in hits}
        ours += len(truth & {i for i, _ in hits}) / 10 / len(queries)
        codes += len(truth & {i for i, _ in index.search(query, 10, excluded=np.array([11]))}) / 10 / len(queries)
    assert ours >= 0.95 and ours > codes, (ours, codes)
    found, similarities = segments.neighbours(queries, 5, threshold=0.9)
    held = found >= 0
    expected = np.einsum("qkd,qd->qk", vectors[np.where(held, found, 0)], queries)
    near = held & (np.abs(similarities - 0.9) < ESTIMATE_ERROR)  # scored again; the others are the codes' estimates
    assert near.any() and np.allclose(similarities[near], expected[near], atol=1e-5)
    assert not np.allclose(similarities[held & ~near], expected[held & ~near], atol=1e-5)
    assert ((similarities >= 0.9) == (expected >= 0.9))[held].all()
    assert (found[:, 0] == np.arange(100))[np.arange(100) != 11].all()


def test_near_copies_across_segments_are_found_from_the_newer_side() -> None:
    """Given the queries' own ids, a passage looks in its own segment and older ones, never in newer ones: a pair
    across segments is found once, as when the newer one was committed after the other."""
    vectors = unit_vectors(300, 64, seed=6)
    vectors[200:] = vectors[:100]  # the third segment copies the first
    parts = [
        Part(VectorIndex.build(EXACT, 64, ids, vectors[ids]), ids, vectors[ids], np.zeros(0, np.int64))
        for ids in (np.arange(0, 100), np.arange(100, 200), np.arange(200, 300))
    ]
    segments = SegmentedVectors(parts, 64)
    own = np.array([5, 150, 205])
    ids, similarities = segments.neighbours(vectors[own], 3, own)
    assert ids[0].tolist()[0] == 5 and not (ids[0] >= 100).any()  # the first segment sees only itself
    assert not (ids[1] >= 200).any()
    assert sorted(ids[2][:2].tolist()) == [5, 205] and similarities[2][1] > 0.99
    everywhere = segments.neighbours(vectors[own], 3)[0]
    assert sorted(everywhere[0][:2].tolist()) == [5, 205]  # without own ids, every segment is searched


def test_segments_built_from_one_trained_index_share_cells_and_find_the_same_near_copies(tmp_path: Path) -> None:
    """One commit's segments are trained once: their cells are the same, a near-copy lookup or a search finds each
    query's nearest cells once for them all, and returns what each segment's on its own does (tombstones left out)."""
    originals = unit_vectors(6_000, 64, seed=7)
    copies = originals[::100] + 0.02 * np.random.default_rng(8).standard_normal((60, 64)).astype(np.float32)
    trained = VectorIndex.empty("IVF32,SQ8", 64, originals)
    parts = []
    for number, ids in enumerate((np.arange(0, 3_000), np.arange(3_000, 6_000))):
        VectorIndex.build("IVF32,SQ8", 64, ids, originals[ids], trained).save(tmp_path / f"{number}.faiss")
        parts.append(Part(VectorIndex.load(tmp_path / f"{number}.faiss"), ids, originals[ids], np.array([300, 3_300])))
    assert len(trained) == 0 and parts[0].index.cells_key == parts[1].index.cells_key is not None
    assert VectorIndex.build("IVF32,SQ8", 64, np.arange(3_000), originals[:3_000]).cells_key != parts[0].index.cells_key
    assert VectorIndex.build(EXACT, 64, np.arange(10), originals[:10]).cells_key is None
    ids, similarities = SegmentedVectors(parts, 64).neighbours(copies, 3)
    alone = [part.index.neighbours(copies, 3, part.deleted) for part in parts]
    expected = np.concatenate([found for found, _ in alone], axis=1)
    scores = np.concatenate([score for _, score in alone], axis=1)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    assert np.array_equal(ids, np.take_along_axis(expected, best, axis=1))
    kept = ~np.isin(np.arange(60), [3, 33])  # the copies of the two tombstoned passages
    assert ids[kept, 0].tolist() == [i for i in range(0, 6_000, 100) if i not in (300, 3_300)]
    assert 300 not in ids and 3_300 not in ids
    for copy in copies[:5]:  # a search, too, finds the query's cells once and returns what each segment's does
        alone = sorted(
            (hit for part in parts for hit in part.index.search(copy, 4, excluded=part.deleted)), key=lambda h: -h[1]
        )
        assert SegmentedVectors(parts, 64).search(copy, 4) == alone[:4]


def test_a_memory_mapped_index_finds_what_the_one_read_into_memory_does(tmp_path: Path) -> None:
    """A writer's few near-copy lookups memory-map the segments' indexes instead of reading them whole."""
    originals = unit_vectors(5_000, 64, seed=5)
    VectorIndex.build("IVF64,SQ8", 64, np.arange(5_000), originals).save(tmp_path / "vectors.faiss")
    read, mapped = VectorIndex.load(tmp_path / "vectors.faiss"), VectorIndex.load(tmp_path / "vectors.faiss", True)
    excluded = np.array([3])
    for ours, theirs in zip(
        mapped.neighbours(originals[:20], 5, excluded), read.neighbours(originals[:20], 5, excluded)
    ):
        assert np.array_equal(ours, theirs)
    assert 3 not in mapped.neighbours(originals[:20], 5, excluded)[0]


def test_an_ivf_index_keeps_no_table_from_id_to_vector_and_decodes_its_vectors_all_the_same(tmp_path: Path) -> None:
    """Segments never change: the table FAISS keeps to find a vector by id (16 bytes a vector on disk, more in
    memory, rebuilt at each read) is neither written nor kept after reading a segment written with it."""
    import faiss

    vectors, ids = unit_vectors(2000), np.arange(10, 2010)
    index = VectorIndex.build("IVF16,RaBitQ", 32, ids, vectors)
    index.save(tmp_path / "plain.faiss")
    faiss.extract_index_ivf(index.index).set_direct_map_type(faiss.DirectMap.Hashtable)  # as segments were written
    faiss.write_index(index.index, str(tmp_path / "mapped.faiss"))
    assert (tmp_path / "mapped.faiss").stat().st_size - (tmp_path / "plain.faiss").stat().st_size >= 16 * 2000
    for name in ("plain.faiss", "mapped.faiss"):
        for mapped in (False, True):
            read = VectorIndex.load(tmp_path / name, mapped)
            assert faiss.extract_index_ivf(read.index).direct_map.type == faiss.DirectMap.NoMap
            assert read.search(vectors[7], k=1)[0][0] == 17
            decoded = read.vectors([17, 2009])
            assert (decoded * vectors[[7, 1999]]).sum(axis=1).min() > 0.8  # one-bit codes, decoded


def test_removal_where_the_kind_allows_it() -> None:
    vectors, ids = unit_vectors(500), np.arange(500)
    for factory in (EXACT, "IVF8,SQ8", "IVF8,RaBitQ"):
        index = VectorIndex.build(factory, 32, ids, vectors)
        index.remove([3, 4])
        assert len(index) == 498 and 3 not in index.ids() and index.search(vectors[3], k=1)[0][0] != 3
    with pytest.raises(RuntimeError):  # HNSW cannot: the indexer builds it again instead
        VectorIndex.build("HNSW8", 32, ids, vectors).remove([3])


def test_bad_factory_strings_and_too_few_vectors_say_so() -> None:
    vectors, ids = unit_vectors(50), np.arange(50)
    with pytest.raises(NewsarchiveError, match="could not parse index string"):
        VectorIndex.build("Nonsense99", 32, ids, vectors)
    with pytest.raises(NewsarchiveError, match="needs at least 128 passages to train"):
        VectorIndex.build("IVF128,SQ8", 32, ids, vectors)


def _mapped_memory() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("RssFile:")[1].split()[0]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_released_stored_vectors_leave_resident_memory_and_read_the_same(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).standard_normal((40_000, 384)).astype(np.float32)  # 61 MB
    (tmp_path / "vectors.f32").write_bytes(vectors.tobytes())
    stored = stored_vectors(tmp_path, 384)
    before = _mapped_memory()
    assert float(stored.sum()) == pytest.approx(float(vectors.sum()), rel=1e-4)  # every page read
    read = _mapped_memory()
    release_pages(stored)
    assert read - before > 50e6 and _mapped_memory() < read - 50e6
    assert np.array_equal(stored[123], vectors[123])  # read again, from the file
    release_pages(vectors)  # an array in memory: nothing to do


@pytest.mark.parametrize("batches", [[], [1], [3, 2048, 1], [700, 5000, 2049, 64]])
def test_vectors_read_in_place_from_parquet_are_the_column_duckdb_reads(tmp_path: Path, batches: list[int]) -> None:
    """passages.embedding read through its pages, as a search does, row by row, in slices and in any order: the
    same vectors DuckDB reads, in row groups and pages of any size (values start at odd bytes too)."""
    dimension, total = 24, sum(batches)
    vectors = np.random.default_rng(7).standard_normal((total, dimension)).astype(np.float16)
    passages = [
        Passage(
            article_id=f"a{i}",
            seq=i,
            paragraph=1,
            heading="",
            char_start=0,
            char_end=9,
            text=f"text {i}" * (i % 5),
            tokens=3,
        )
        for i in range(total)
    ]
    with segment.passage_writer(tmp_path, dimension) as writer:
        start = 0
        for size in batches:
            rows = range(start, start + size)
            table = segment.passage_table(np.arange(start, start + size), [passages[i] for i in rows], vectors[rows])
            writer.write_table(table, segment.PASSAGE_ROWS)
            start += size
    read = ParquetVectors(tmp_path / segment.PASSAGES, dimension)
    with duckdb.connect() as db:
        shown = db.sql(f"SELECT embedding FROM '{tmp_path / segment.PASSAGES}'").fetchall()
    assert np.array_equal(np.asarray([row[0] for row in shown], dtype=np.float16).reshape(-1, dimension), vectors)
    assert len(read) == total and read.shape == (total, dimension) and np.array_equal(read[:], vectors)
    order = np.random.default_rng(1).permutation(total)
    assert np.array_equal(read[order], vectors[order]) and np.array_equal(read[order[:0]], vectors[:0])
    for chosen in (slice(1, total - 1), slice(total // 3, total // 2), slice(5, 5)):
        assert np.array_equal(read[chosen], vectors[chosen])
    if total:
        assert np.array_equal(read[-1], vectors[-1]) and np.array_equal(read[total // 2], vectors[total // 2])
        with pytest.raises(IndexError):
            read[np.asarray([total])]
    read.release()
