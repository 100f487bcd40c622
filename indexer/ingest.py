"""Building and updating an index directory from article files."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import config
from .articles import Article, read_articles
from .embedder import Embedder, load_embedder, model_name
from .errors import IndexMismatch, InputProblem
from .manifest import DATABASE, VECTORS, Manifest
from .passages import DEFAULT_MAX_TOKENS, Passage, embedding_text, split_article
from .store import Store
from .vectors import INDEX_TYPE, VectorIndex


@dataclass
class IndexReport:
    """What one ``index`` run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    articles: int = 0
    passages: int = 0
    embedded: int = 0
    seconds: float = 0.0
    problems: list[InputProblem] = field(default_factory=list)


Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while passages are embedded."""


def index_paths(
    paths: Sequence[str | Path],
    directory: str | Path | None = None,
    *,
    model: str | None = None,
    rebuild: bool = False,
    max_tokens: int | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> IndexReport:
    """Add the articles found under ``paths`` to the index in ``directory``, creating it if needed.

    New articles are added; articles whose content changed are replaced; unchanged ones (by content hash) are
    not embedded again. Files that cannot be read are reported in ``IndexReport.problems`` and skipped.
    The new index is written beside the old one and moved into place, file by file, at the end.

    Args:
        paths: Files and folders of ``.txt``, ``.md`` and ``.jsonl`` articles.
        directory: The index directory; ``None`` means ``$NEWSARCHIVE_INDEX_DIR`` or ``./archive``.
        model: Model name or path; ``None`` keeps the index's model (or the default, for a new index).
        rebuild: Start from an empty index instead of updating the existing one.
        max_tokens: Passage budget in model tokens; ``None`` keeps the index's (or the default).
        embedder: A loaded model to use instead of loading ``model`` (tests pass small fakes).
        progress: Receives embedding progress.

    Raises:
        IndexMismatch: The existing index was built with another model or passage budget; use ``rebuild``.
    """
    started = time.perf_counter()
    directory = config.index_dir(directory)
    previous = None if rebuild or not (directory / "manifest.json").exists() else Manifest.load(directory)
    wanted_model = embedder.name if embedder else model_name(model or (previous.model if previous else None))
    budget = max_tokens or (previous.max_tokens if previous else DEFAULT_MAX_TOKENS)
    if previous and wanted_model != previous.model:
        raise IndexMismatch(
            f"{directory}/ was built with model {previous.model!r}, not {wanted_model!r}: "
            "add --rebuild to re-embed everything with the new model"
        )
    if previous and budget != previous.max_tokens:
        raise IndexMismatch(
            f"{directory}/ was split into passages of at most {previous.max_tokens} tokens, not {budget}: "
            "add --rebuild to split everything again"
        )

    report = IndexReport()
    articles: list[Article] = []
    for item in read_articles(Path(p) for p in paths):
        if isinstance(item, InputProblem):
            report.problems.append(item)
        else:
            articles.append(item)

    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
    try:
        if previous:
            shutil.copy2(directory / DATABASE, staging / DATABASE)
            shutil.copy2(directory / VECTORS, staging / VECTORS)
        store = Store.create(staging / DATABASE)
        try:
            known = store.article_hashes()
            changed = [a for a in articles if a.article_id in known and known[a.article_id] != a.content_hash]
            new = [a for a in articles if a.article_id not in known]
            report.added, report.updated = len(new), len(changed)
            report.unchanged = len(articles) - len(new) - len(changed)
            to_embed = changed + new
            if to_embed and embedder is None:
                embedder = load_embedder(wanted_model)
            vectors = VectorIndex.load(staging / VECTORS) if previous else None
            if to_embed:
                assert embedder is not None
                vectors = vectors or VectorIndex.create(embedder.dimension)
                vectors.remove(store.passage_ids([a.article_id for a in changed]))
                store.delete_articles([a.article_id for a in changed])
                passages, matrix = _embed(to_embed, embedder, budget, progress)
                ids = store.insert(to_embed, passages, store.next_passage_id())
                vectors.add(np.asarray(ids), matrix)
                report.embedded = len(passages)
            report.articles, report.passages = store.counts()
            if vectors is None:
                # Nothing was ever embedded; an empty index still needs the model's dimension.
                embedder = embedder or load_embedder(wanted_model)
                vectors = VectorIndex.create(embedder.dimension)
            prompts_from = embedder or previous  # the model's prompts, or the index's when no model was needed
            assert prompts_from is not None
        finally:
            store.close()
        vectors.save(staging / VECTORS)
        manifest = Manifest(
            model=wanted_model,
            dimension=vectors.dimension,
            query_prompt=prompts_from.query_prompt,
            passage_prompt=prompts_from.passage_prompt,
            max_tokens=budget,
            articles=report.articles,
            passages=report.passages,
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            index_type=INDEX_TYPE,
        )
        # The manifest moves last: until it does, readers keep trusting the files they already opened.
        os.replace(staging / VECTORS, directory / VECTORS)
        os.replace(staging / DATABASE, directory / DATABASE)
        manifest.save(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _embed(
    articles: list[Article], embedder: Embedder, max_tokens: int, progress: Progress | None
) -> tuple[list[Passage], np.ndarray]:
    """Split every article into passages and embed them with their title and heading as context."""
    passages = [p for article in articles for p in split_article(article, embedder.count_tokens, max_tokens)]
    titles = {a.article_id: a.title for a in articles}
    texts = [embedding_text(titles[p.article_id], p.heading, p.text) for p in passages]
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress("embedding", done, len(texts))

    return passages, embedder.embed_passages(texts, progress=advance)
