"""Which articles tell one story, kept up to date commit by commit.

A commit's stories are the connected groups of its live duplicate pairs (the ``duplicates`` view, see
:mod:`indexer.storage.duplicates`). Recomputing them all would read every pair and every article at each commit; a
commit changes only the stories of the articles it adds, replaces or deletes and of the pairs it records, so only those
are computed again, from the pairs that touch them. ``newsarchive check`` compares the result with a recomputation
from the ``duplicates`` view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from indexer.storage import catalog, duplicates, segment

if TYPE_CHECKING:
    from indexer.storage.snapshot import Snapshot

Pair = tuple[str, str, str, float]  # (article_id, duplicate_id, kind, similarity)
Record = tuple[str, str, str]  # a pair's record in a segment: (kind, article_hash, duplicate_hash)


def updated(snapshot: Snapshot, old: dict[str, str], pairs: list[Pair], changed: Iterable[str]) -> dict[str, str]:
    """article_id -> story_id of the articles in a story of several, in ``snapshot`` (a commit being written) whose
    previous commit had the stories ``old``, given the pairs this commit records (of the articles' current
    versions) and the articles it ``changed`` (added, replaced or deleted)."""
    by_story: dict[str, set[str]] = {}
    for article_id, story_id in old.items():
        by_story.setdefault(story_id, {story_id}).add(article_id)
    new = {(a, b): kind for a, b, kind, _ in pairs}
    records: dict[tuple[str, str], list[Record]] = {}
    hashes: dict[str, str] = {}
    members: set[str] = set()
    alive: list[tuple[str, str]] = []
    frontier = set(changed) | {a for pair in new for a in pair}
    while frontier:  # the stories touched, and those that live pairs touching them reach
        for article_id in list(frontier):
            frontier |= by_story.get(old.get(article_id, article_id), set())
        members |= frontier
        records |= _records(snapshot, frontier)
        unknown = {a for pair in [*records, *new] for a in pair} - hashes.keys()
        hashes |= dict.fromkeys(unknown, "")  # not live, unless found
        hashes |= {row["article_id"]: row["content_hash"] for row in snapshot.articles(unknown, ["content_hash"])}
        alive = [pair for pair in records.keys() | new.keys() if _alive(pair, new, records, hashes)]
        frontier = {a for pair in alive for a in pair} - members
    published = {row["article_id"]: row["published"] for row in snapshot.articles(members, ["published"])}
    found = duplicates.stories(alive, published)
    kept = {article_id: story_id for article_id, story_id in old.items() if article_id not in members}
    return kept | {article_id: story_id for article_id, story_id in found.items() if article_id != story_id}


def _alive(
    pair: tuple[str, str],
    new: dict[tuple[str, str], str],
    records: dict[tuple[str, str], list[Record]],
    hashes: dict[str, str],
) -> bool:
    """Whether the newest record of ``pair`` that names both articles' live versions says they are one story,
    as the ``duplicates`` view decides."""
    current = (hashes[pair[0]], hashes[pair[1]])
    if not all(current):
        return False
    if pair in new:
        return new[pair] != catalog.SEPARATED
    for kind, first, second in reversed(records.get(pair, [])):
        if (first, second) == current:
            return kind != catalog.SEPARATED
    return False


def _records(snapshot: Snapshot, articles: set[str]) -> dict[tuple[str, str], list[Record]]:
    """The records of every pair naming one of these articles, oldest first, from the segments' pair files."""
    wanted = pa.array(list(articles), pa.string())
    found: dict[tuple[str, str], list[Record]] = {}
    for name in sorted(snapshot.paths):
        table = pq.ParquetFile(snapshot.paths[name] / segment.DUPLICATES).read()
        named = pc.or_(
            pc.is_in(table.column("article_id"), value_set=wanted),
            pc.is_in(table.column("duplicate_id"), value_set=wanted),
        )
        for row in table.filter(named).to_pylist():
            record = (row["kind"], row["article_hash"], row["duplicate_hash"])
            found.setdefault((row["article_id"], row["duplicate_id"]), []).append(record)
    return found
