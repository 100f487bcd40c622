"""What ``info`` (and ``GET /v1/info``) says of an index: its commit's settings and sizes, and what runs its model."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from indexer import config
from indexer.models import backends
from indexer.storage import Snapshot, segment
from indexer.storage.layout import size


def describe(snapshot: Snapshot) -> dict[str, Any]:
    """The commit's manifest with its counts, sizes and the model's backend here (``backend_here``)."""
    manifest = snapshot.manifest
    details = {"index_dir": str(snapshot.directory), **asdict(manifest)}
    details["segments"] = len(manifest.segments)
    details["tombstones"] = sum(entry.deleted for entry in manifest.segments)
    with snapshot.store.db.cursor() as cursor:
        query = "SELECT (SELECT count(DISTINCT story_id) FROM articles), (SELECT count(*) FROM duplicates)"
        details["stories"], details["duplicates"] = cursor.execute(query).fetchall()[0]
    details["vector_index_kind"] = snapshot.vectors.describe()
    paths = list(snapshot.paths.values())
    details["size_bytes"] = size(snapshot.directory)
    details["vectors_bytes"] = sum(_vectors_held(path, manifest.dimension) for path in paths)
    details["lexical_bytes"] = sum(size(path / "lexical") for path in paths)
    details["backend_here"] = backends.describe(manifest.model, manifest.precision, config.cache_dir())
    return details


def _vectors_held(path: Path, dimension: int) -> int:
    """The bytes of a segment's vectors a search holds in memory: its approximate index, or its vectors as float32
    in an exact one."""
    if (path / segment.FAISS).exists():
        return size(path / segment.FAISS)
    ids = np.load(path / segment.IDS, mmap_mode="r")
    return len(ids) * dimension * 4


def article_of(snapshot: Snapshot, article_id: str) -> dict[str, Any] | None:
    """An article as ``GET /v1/articles/{id}`` returns it: its columns (without ``path``, which may name a file on
    the server), its passages in order (without their vectors), and its story's articles; ``None`` if unknown."""
    article = snapshot.store.article(article_id)
    if article is None:
        return None
    article.pop("path", None)
    with snapshot.store.db.cursor() as cursor:
        result = cursor.execute(
            "SELECT passage_id, seq, paragraph, heading, char_start, char_end, tokens, language, text "
            "FROM passages WHERE article_id = ? ORDER BY seq",
            [article_id],
        )
        columns = [d[0] for d in result.description]
        passages = [dict(zip(columns, row)) for row in result.fetchall()]
    members = snapshot.stories.get(article["story_id"], (article_id,))
    shown = ("title", "source", "url", "published", "language")
    others = snapshot.store.articles(members, shown)
    story = [{"article_id": member, **others[member]} for member in members if member in others]
    return {"article": article, "passages": passages, "story": {"story_id": article["story_id"], "articles": story}}
