"""Verifying an index: its commit, and every segment's Parquet rows, vectors and lexical index, agree.

A damaged file (truncated, or overwritten with something else) is a problem named in words, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from indexer.errors import NewsarchiveError
from indexer.storage import catalog, duplicates, layout, parquet_vectors, segment, tables
from indexer.storage.manifest import Manifest, SegmentEntry
from indexer.storage.snapshot import Snapshot

SAMPLED_VECTORS = 1000  # stored vectors compared with the Parquet embeddings, spread over each segment
NORM_TOLERANCE = 1e-3  # a stored vector is of unit length: searches take a dot product for the cosine
REBUILD = "rebuild the index with `newsarchive index --rebuild ...`"


def check(directory: Path) -> list[str]:
    """Everything wrong with the index in ``directory``, in words; an empty list means it is sound."""
    try:
        manifest = Manifest.load(directory)
    except NewsarchiveError as error:
        return [str(error)]
    try:
        with Snapshot(directory, manifest) as snapshot:
            problems = check_snapshot(snapshot)
    except NewsarchiveError as error:
        return [str(error)]
    except Exception as error:  # noqa: BLE001 -- a damaged file the snapshot loads: name it
        problems = _unreadable(directory, manifest) or [f"{directory}/ cannot be read ({_said(error)}); {REBUILD}"]
    # A catalog one commit behind (a writer killed between the two renames) still shows a complete commit.
    shown = catalog.described(directory)
    if shown is None or shown[1] != str(directory.resolve()) or shown[0] > manifest.commit:
        where = "is missing or unreadable" if shown is None else f"shows commit {shown[0]} of {shown[1]}/"
        problems.append(f"{directory / layout.CATALOG} {where}; any write, or `newsarchive optimize`, writes it again")
    return problems


def check_snapshot(snapshot: Snapshot, segments: set[str] | None = None) -> list[str]:
    """:func:`check` for one commit; of its segments, only those named in ``segments`` (all by default) are read
    through, the others' ids are taken as they are (a writer verifying a draft commit checks what it wrote)."""
    problems: list[str] = []
    seen: list[np.ndarray] = []
    damaged = False
    for entry in snapshot.manifest.segments:
        if segments is not None and entry.name not in segments:
            seen.append(np.setdiff1d(snapshot.loaded[entry.name].ids, snapshot.deleted[entry.name]))
            continue
        try:
            problems += _check_segment(snapshot, entry, seen)
        except Exception as error:  # noqa: BLE001 -- a damaged file: a problem to report, not a crash
            problems.append(f"segment {entry.name}: its files cannot be read ({_said(error)}); {REBUILD}")
            damaged = True
    if damaged:
        return problems  # the tables over a damaged segment cannot be read either
    try:
        problems += _check_tables(snapshot, seen)
    except Exception as error:  # noqa: BLE001
        problems.append(f"the tables cannot be read ({_said(error)}); {REBUILD}")
    return problems


def _check_segment(snapshot: Snapshot, entry: SegmentEntry, seen: list[np.ndarray]) -> list[str]:
    """One segment's problems; its live passage ids are added to ``seen``."""
    db, where = snapshot.store.db, f"segment {entry.name}"
    loaded, path = snapshot.loaded[entry.name], snapshot.paths[entry.name]
    problems = []
    files = f"read_parquet({catalog.quoted(path / segment.PASSAGES)})"
    rows = db.execute(f"SELECT count(*), count(DISTINCT article_id) FROM {files}").fetchall()[0]
    ids = np.array(db.execute(f"SELECT passage_id FROM {files} ORDER BY passage_id").fetchall(), np.int64)
    ids = ids.reshape(-1)
    article_file = catalog.quoted(path / segment.ARTICLES)
    articles = db.execute(f"SELECT count(*) FROM read_parquet({article_file})").fetchall()[0][0]
    if (articles, rows[0]) != (entry.articles, entry.passages):
        problems.append(
            f"{where}: the commit counts {entry.articles} articles and {entry.passages} passages, its files hold "
            f"{articles} and {rows[0]}"
        )
    if not np.array_equal(ids, loaded.ids):
        problems.append(f"{where}: ids.npy differs from the passages' ids")
    elif len(loaded.stored) != len(ids):
        problems.append(f"{where}: {len(loaded.stored)} stored vectors for {len(ids)} passages")
    elif not np.array_equal(np.sort(loaded.vectors.ids()), ids):
        problems.append(f"{where}: the FAISS index holds other passage ids than the segment")
    else:
        sample = ids[:: max(1, len(ids) // SAMPLED_VECTORS)]
        stored = _embeddings(db, files, sample, snapshot.manifest.dimension)
        norms = np.linalg.norm(stored, axis=1)
        if segment.vectors_file(path).name == segment.PASSAGES and (failed := _failed_checksum(path)):
            problems.append(f"{where}: passages.embedding fails its checksums ({failed}); {REBUILD}")
        elif not np.isfinite(stored).all():
            problems.append(f"{where}: passages.embedding holds NaN or infinite values")
        elif len(norms) and np.abs(norms - 1).max() > NORM_TOLERANCE:
            problems.append(f"{where}: vectors in passages.embedding are not of unit length")
        elif not np.allclose(loaded.stored[np.searchsorted(ids, sample)], stored, atol=1e-5):
            problems.append(f"{where}: its vectors differ from passages.embedding")
        elif not _same_vectors(loaded.vectors, sample, stored):
            problems.append(f"{where}: FAISS vectors differ from passages.embedding")
    if not np.array_equal(np.sort(loaded.lexical.ids), ids):
        problems.append(f"{where}: the lexical index's passage ids differ from the segment's")
    dead = snapshot.deleted[entry.name]
    if len(np.setdiff1d(dead, ids)):
        problems.append(f"{where}: {len(np.setdiff1d(dead, ids))} tombstones name no passage of the segment")
    if len(dead) != entry.deleted:
        problems.append(f"{where}: the commit counts {entry.deleted} tombstones, the file holds {len(dead)}")
    seen.append(np.setdiff1d(ids, dead))
    return problems


def _check_tables(snapshot: Snapshot, seen: list[np.ndarray]) -> list[str]:
    """The problems of the commit as a whole: its live passages (``seen``), counts, orphans and stories."""
    manifest, db = snapshot.manifest, snapshot.store.db
    problems = []
    live = np.concatenate(seen) if seen else np.zeros(0, np.int64)
    if len(np.unique(live)) != len(live):
        problems.append(f"{len(live) - len(np.unique(live))} passage ids are live in two segments")
    if len(live) and live.max() >= manifest.next_passage_id:
        problems.append("a passage id is not below the commit's next_passage_id")
    counts = db.execute(
        """SELECT (SELECT count(*) FROM articles), (SELECT count(DISTINCT article_id) FROM articles),
                  (SELECT count(*) FROM passages),
                  (SELECT count(*) FROM passages WHERE article_id NOT IN (SELECT article_id FROM articles)),
                  (SELECT count(*) FROM articles WHERE story_id NOT IN (SELECT article_id FROM articles))"""
    ).fetchall()[0]
    if (manifest.articles, manifest.passages) != (counts[0], counts[2]):
        problems.append(
            f"the manifest counts {manifest.articles} articles and {manifest.passages} passages, "
            f"the tables hold {counts[0]} and {counts[2]}"
        )
    if counts[0] != counts[1]:
        problems.append(f"{counts[0] - counts[1]} article ids are live in two segments")
    if counts[3]:
        problems.append(f"{counts[3]} passages belong to no article")
    if counts[4]:
        problems.append(f"{counts[4]} articles have a story_id that is no article's id")
    pairs = snapshot.store.duplicate_pairs()
    members = {article_id for pair in pairs for article_id in pair}
    published = {a: row["published"] for a, row in snapshot.store.articles(members, ["published"]).items()}
    expected = {a: story for a, story in duplicates.stories(pairs, published).items() if a != story}
    if expected != snapshot.story_of:
        stored = snapshot.story_of
        wrong = sorted(a for a in expected.keys() | stored.keys() if expected.get(a) != stored.get(a))
        problems.append(
            f"{len(wrong)} articles' story_id disagrees with the duplicates table (for example {wrong[0]!r}); {REBUILD}"
        )
    return problems


def _unreadable(directory: Path, manifest: Manifest) -> list[str]:
    """Which of the commit's files cannot be read, each in words (when a snapshot of it cannot be opened)."""

    def parquet(path: Path) -> object:
        return pq.ParquetFile(path).read()

    def vectors(path: Path) -> object:
        return segment.stored_vectors(path.parent, manifest.dimension)

    readers: list[tuple[Path, Callable[[Path], object]]] = []
    for entry in manifest.segments:
        path = directory / layout.SEGMENTS / entry.name
        readers += [(path / segment.IDS, np.load), (segment.vectors_file(path), vectors)]
        names = [segment.ARTICLES, segment.PASSAGES, segment.DUPLICATES] + ([entry.tombstones] * bool(entry.tombstones))
        readers += [(path / name, parquet) for name in names]
    if manifest.stories:
        readers.append((directory / layout.STORIES / manifest.stories, parquet))
    readers += [(tables.path(directory, file), parquet) for file in manifest.tables.values()]
    problems = []
    for path, read in readers:
        try:
            read(path)
        except Exception as error:  # noqa: BLE001 -- what is wrong with it, in words
            problems.append(f"{path} cannot be read ({_said(error)}); {REBUILD}")
    return problems


def _failed_checksum(path: Path) -> str:
    """What is wrong with the checksums of the segment's vectors, read through; "" if nothing."""
    passages = pq.ParquetFile(path / segment.PASSAGES, page_checksum_verification=True)
    try:
        for _ in passages.iter_batches(segment.READ_ROWS, columns=[parquet_vectors.COLUMN]):
            pass
    except OSError as error:
        return _said(error)
    return ""


def _said(error: BaseException) -> str:
    """An exception's first line, for a problem line."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _embeddings(db, files: str, ids: np.ndarray, dimension: int) -> np.ndarray:
    table = db.sql(
        f"SELECT embedding FROM {files} WHERE passage_id IN (SELECT unnest(?)) ORDER BY passage_id",
        params=[ids.tolist()],
    ).to_arrow_table()
    flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(ids), dimension).astype(np.float32)


def _same_vectors(vectors, ids: np.ndarray, stored: np.ndarray) -> bool:
    """Whether FAISS holds each passage's stored embedding: exactly, or compressed but nearest to its own."""
    held = vectors.vectors(ids)
    if vectors.exact:
        return np.allclose(held, stored, atol=1e-5)
    similarities = held @ stored.T
    own = similarities.diagonal()
    # Within a hair of the best, not the best: two passages may have the same text, hence the same vector. One-bit
    # codes decode coarsely (cosine 0.92 to 0.99 with the exact vector on SQuAD-it's paragraphs), 8-bit ones finely.
    floor = 0.9 if vectors.refine == 1 else 0.8
    return bool((own >= similarities.max(axis=1) - 1e-3).all() and own.min() > floor)
