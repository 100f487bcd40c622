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
    query_prompt: str | None = None,
    passage_prompt: str | None = None,
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
        query_prompt: Text put before queries; ``None`` keeps the index's (or the model's own ``query`` prompt).
        passage_prompt: Text put before passages; ``None`` keeps the index's (or the model's own).
        embedder: A loaded model to use instead of loading ``model`` (tests pass small fakes).
        progress: Receives embedding progress.

    Raises:
        IndexMismatch: The existing index was built with another model, passage budget or prompts; use ``rebuild``.
    """
    started = time.perf_counter()
    directory = config.index_dir(directory)
    previous = None if rebuild or not (directory / "manifest.json").exists() else Manifest.load(directory)
    if embedder is not None:
        model, query_prompt, passage_prompt = embedder.name, embedder.query_prompt, embedder.passage_prompt
    model = model_name(model or (previous.model if previous else None))
    max_tokens = max_tokens or (previous.max_tokens if previous else DEFAULT_MAX_TOKENS)
    if previous:
        _refuse_changed_settings(
            previous,
            directory,
            model=model,
            max_tokens=max_tokens,
            query_prompt=query_prompt,
            passage_prompt=passage_prompt,
        )
        query_prompt, passage_prompt = previous.query_prompt, previous.passage_prompt

    report = IndexReport()
    articles: list[Article] = []
    for item in read_articles(Path(p) for p in paths):
        if isinstance(item, InputProblem):
            report.problems.append(item)
        else:
            articles.append(item)

    if report.problems and not articles:
        # Nothing could be read: leave whatever index there is as it is, even when a rebuild was asked for.
        if (directory / "manifest.json").exists():
            current = Manifest.load(directory)
            report.articles, report.passages = current.articles, current.passages
        report.seconds = time.perf_counter() - started
        return report

    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
    try:
        if previous:
            shutil.copy2(directory / DATABASE, staging / DATABASE)
            shutil.copy2(directory / VECTORS, staging / VECTORS)
            vectors = VectorIndex.load(staging / VECTORS)
        else:
            # A new index needs the model's dimension for its tables, whatever there is to embed.
            embedder = embedder or load_embedder(model, query_prompt, passage_prompt)
            vectors = VectorIndex.create(embedder.dimension)
        store = Store.create(staging / DATABASE, vectors.dimension)
        try:
            known = store.article_hashes()
            changed = [a for a in articles if a.article_id in known and known[a.article_id] != a.content_hash]
            new = [a for a in articles if a.article_id not in known]
            report.added, report.updated = len(new), len(changed)
            report.unchanged = len(articles) - len(new) - len(changed)
            to_embed = changed + new
            if to_embed:
                embedder = embedder or load_embedder(model, query_prompt, passage_prompt)
                vectors.remove(store.passage_ids([a.article_id for a in changed]))
                store.delete_articles([a.article_id for a in changed])
                passages, matrix = _embed(to_embed, embedder, max_tokens, progress)
                ids = store.insert(to_embed, passages, matrix)
                vectors.add(np.asarray(ids), matrix)
                report.embedded = len(passages)
            report.articles, report.passages = store.counts()
            if embedder is not None:  # None only when an existing index needed no model: it keeps its prompts
                query_prompt, passage_prompt = embedder.query_prompt, embedder.passage_prompt
        finally:
            store.close()
        vectors.save(staging / VECTORS)
        manifest = Manifest(
            model=model,
            dimension=vectors.dimension,
            query_prompt=query_prompt or "",
            passage_prompt=passage_prompt or "",
            max_tokens=max_tokens,
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


def _refuse_changed_settings(previous: Manifest, directory: Path, **asked: object) -> None:
    """Updating an index with other settings would mix incomparable vectors: only ``--rebuild`` may change them."""
    for setting, value in asked.items():
        built_with = getattr(previous, setting)
        if value is not None and value != built_with:
            raise IndexMismatch(
                f"{directory}/ was built with {setting.replace('_', ' ')} {built_with!r}, not {value!r}: "
                "add --rebuild to index everything again with the new setting"
            )


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
