"""Merging segments: which to merge (a tiered policy) and how (from their stored rows, counts and vectors).

Small commits -- a feed's few articles every few minutes -- make small segments, and each one costs every search a
little. After a commit, a run of :data:`MERGE_FACTOR` adjacent segments of one size tier (a power of ten of live
passages) is merged into one, when that merge holds at most :data:`AUTOMATIC_UP_TO` passages (a second or two) or
twice :data:`MERGE_FACTOR` times what the commit wrote, whichever is more. A feed's commits so merge only small
segments, and a build's commits of 100k passages merge ten into a million, each merge costing about what the ten
commits before it did: a new passage's near-copy lookups then meet a few segments, however large the archive.
Segments grow tier by tier, as in Lucene's merge policies, and a search meets a few dozen at most.
``newsarchive optimize`` merges everything into one segment. Merging drops tombstoned rows, and never embeds
anything: it reads the segments' Parquet rows (vectors included) and BM25 term counts. Only adjacent segments are
merged, so segments' passage ids stay in order. They may overlap: ``sql --write`` writes an article again with its
passage ids, live in a new segment and tombstoned in the old one; a merge of the two then sorts the rows by id.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer.storage import catalog, segment
from indexer.storage.manifest import SegmentEntry

if TYPE_CHECKING:
    from indexer.storage.snapshot import Snapshot

MERGE_FACTOR = 10
AUTOMATIC_UP_TO = 50_000  # passages in one automatic merge
REWRITE_DELETED = 0.5  # a small segment with this share of its passages tombstoned is rewritten without them


def tier(entry: SegmentEntry) -> int:
    return int(math.log10(max(entry.live, 1)))


def automatic(segments: tuple[SegmentEntry, ...] | list[SegmentEntry], written: int = 0) -> list[list[SegmentEntry]]:
    """The merge worth doing now, after a commit that wrote ``written`` passages: ``[run]`` of adjacent segments,
    or ``[]``."""
    up_to = max(AUTOMATIC_UP_TO, 2 * MERGE_FACTOR * written)  # twice: commits vary in size
    segments = list(segments)
    for level in sorted({tier(entry) for entry in segments}):
        run: list[SegmentEntry] = []
        for entry in [*segments, None]:
            if entry is not None and tier(entry) == level:
                run.append(entry)
                continue
            if len(run) >= MERGE_FACTOR and sum(e.live for e in run[:MERGE_FACTOR]) <= up_to:
                return [run[:MERGE_FACTOR]]
            run = []
    for entry in segments:
        if entry.passages and entry.deleted >= REWRITE_DELETED * entry.passages and entry.passages <= AUTOMATIC_UP_TO:
            return [[entry]]
    return []


def everything(segments: tuple[SegmentEntry, ...], force: bool = False) -> list[list[SegmentEntry]]:
    """The merge ``optimize`` does: every segment into one, unless there is one already without tombstones."""
    if len(segments) > 1 or (segments and (segments[0].deleted_articles or force)):
        return [list(segments)]
    return []


def merge(snapshot: Snapshot, run: list[SegmentEntry], name: str, path: Path, vector_index: str) -> SegmentEntry:
    """Write the live rows of ``run`` (adjacent segments of ``snapshot``) as one new segment in ``path``."""
    db = snapshot.store.db
    d = snapshot.manifest.dimension
    live = [snapshot.loaded[e.name].ids[~np.isin(snapshot.loaded[e.name].ids, snapshot.deleted[e.name])] for e in run]
    unsorted_ids = np.concatenate(live)
    in_order = bool((unsorted_ids[1:] > unsorted_ids[:-1]).all())
    selects = [catalog.segment_selects(snapshot.paths[e.name], e.name, e.tombstones, d) for e in run]
    # The rows must be in passage id order (a search reads a passage's vector at its row). Segments are, and DuckDB
    # keeps a file's scan order, so they are read one after the other; a segment with tombstones (a join) and
    # overlapping segments are sorted.
    scans = [
        f"{s['passages']} ORDER BY passage_id" if entry.tombstones else s["passages"] for s, entry in zip(selects, run)
    ]
    if not in_order:
        scans = [f"{' UNION ALL '.join(s['passages'] for s in selects)} ORDER BY passage_id"]
    batches = (batch for scan in scans for batch in db.sql(scan).to_arrow_reader(segment.PASSAGE_ROWS))
    segment.write_passages(batches, path, d)
    articles = " UNION ALL ".join(s["articles"] for s in selects)
    db.execute(
        f"COPY ({articles} ORDER BY article_id) TO {catalog.quoted(path / segment.ARTICLES)} "
        f"(FORMAT parquet, ROW_GROUP_SIZE {segment.ARTICLE_ROWS}, COMPRESSION {segment.COMPRESSION}, "
        f"COMPRESSION_LEVEL {segment.COMPRESSION_LEVEL})"
    )
    pairs = " UNION ALL ".join(s["pairs"] for s in selects)
    # The newest record of each pair whose two versions are both still live anywhere in the archive.
    db.execute(
        f"""COPY (SELECT * EXCLUDE (segment) FROM (
                SELECT DISTINCT ON (p.article_id, p.duplicate_id) p.* FROM ({pairs}) p
                JOIN _articles a ON a.article_id = p.article_id AND a.content_hash = p.article_hash
                JOIN _articles b ON b.article_id = p.duplicate_id AND b.content_hash = p.duplicate_hash
                ORDER BY p.article_id, p.duplicate_id, p.segment DESC))
            TO {catalog.quoted(path / segment.DUPLICATES)} (FORMAT parquet)"""
    )
    merged_ids = unsorted_ids if in_order else np.sort(unsorted_ids, kind="stable")
    np.save(path / segment.IDS, merged_ids)
    lexicals = [snapshot.loaded[entry.name].lexical for entry in run]
    lexical_keeps = [~np.isin(lexical.ids, snapshot.deleted[e.name]) for lexical, e in zip(lexicals, run)]
    from indexer.indexes.lexical import LexicalIndex

    LexicalIndex.write_merged(lexicals, lexical_keeps, path / segment.LEXICAL)
    segment.write_lookup(path)
    segment.write_language_sums(path, d)
    kind = segment.build_vector_index(path, vector_index, merged_ids, d, snapshot.manifest.passages)
    articles_count = sum(e.articles - e.deleted_articles for e in run)
    return SegmentEntry(name, articles_count, len(merged_ids), index_type=kind)
