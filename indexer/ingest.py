"""Building and updating an index directory from article files."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import config, duplicates, layout
from .articles import Article, read_articles
from .embedder import Embedder, load_embedder, model_name, precision_for
from .errors import IndexMismatch, InputProblem, NewsarchiveError
from .language import detect, passage_language
from .manifest import AUTO, DATABASE, LEXICAL, VECTORS, Manifest
from .passages import DEFAULT_MAX_TOKENS, Passage, embedding_text, split_article
from .store import Store, connect
from .upgrade import upgrade
from .web import is_url

if TYPE_CHECKING:
    from .vectors import VectorIndex


@dataclass
class IndexReport:
    """What one ``index`` (or ``remove``) run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    articles: int = 0
    passages: int = 0
    embedded: int = 0
    seconds: float = 0.0
    problems: list[InputProblem] = field(default_factory=list)


Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while articles are embedded."""
ARTICLES_PER_BATCH = 1000  # split, embedded and stored together, so memory stays flat however many there are


@dataclass(frozen=True)
class _Settings:
    model: str
    max_tokens: int
    query_prompt: str | None
    passage_prompt: str | None
    precision: str
    vector_index: str
    backend: str | None = None  # what runs the model this time (None: $NEWSARCHIVE_BACKEND, else auto); not kept


def index_paths(
    paths: Sequence[str | Path],
    directory: str | Path | None = None,
    *,
    model: str | None = None,
    rebuild: bool = False,
    prune: bool = False,
    precision: str | None = None,
    vector_index: str | None = None,
    max_tokens: int | None = None,
    query_prompt: str | None = None,
    passage_prompt: str | None = None,
    backend: str | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> IndexReport:
    """Add the articles found under ``paths`` to the index in ``directory``, creating it if needed.

    New articles are added; articles whose content changed are replaced; unchanged ones (by content hash) are
    not embedded again, and when nothing changed nothing is written. Files that cannot be read are reported in
    ``IndexReport.problems`` and skipped; what was indexed from them stays. The new index is written as a new
    generation beside the current one and replaces it in one atomic step (:mod:`indexer.layout`); only one process
    may write at a time.

    Args:
        paths: Files and folders of articles (:data:`indexer.articles.SUFFIXES`), and http(s) URLs of pages or feeds.
        directory: The index directory; ``None`` means ``$NEWSARCHIVE_INDEX_DIR`` or ``./archive``.
        model: Model name or path; ``None`` keeps the index's model (or the default, for a new index).
        rebuild: Start from an empty index instead of updating the existing one.
        prune: Also remove articles whose file is gone, and articles no longer in a file that was read whole.
        precision: ``int8``, ``fp32`` or ``auto`` (:func:`indexer.embedder.precision_for`); ``None`` keeps the
            index's, or takes ``$NEWSARCHIVE_PRECISION`` or ``auto`` for a new index.
        vector_index: ``auto`` (exact search for small archives, approximate for large ones) or a FAISS index
            factory string; ``None`` keeps the index's. Changing it rebuilds the vectors' index, not the embeddings.
        max_tokens: Passage budget in model tokens; ``None`` keeps the index's (or the default).
        query_prompt: Text put before queries; ``None`` keeps the index's (or the model's own ``query`` prompt).
        passage_prompt: Text put before passages; ``None`` keeps the index's (or the model's own).
        backend: What runs the default model: ``openvino``, ``onnx``, ``torch`` or ``auto`` (the fastest whose
            vectors agree with fp32 here, :mod:`indexer.backends`); ``None`` takes ``$NEWSARCHIVE_BACKEND`` or
            ``auto``. Not an index setting: vectors from every backend agree, so it may change from run to run.
        embedder: A loaded model to use instead of loading ``model`` (tests pass small fakes).
        progress: Receives embedding progress.

    Raises:
        IndexMismatch: The existing index was built with another model, passage budget or prompts; use ``rebuild``.
        IndexBusy: Another process is writing the index.
    """
    started = time.perf_counter()
    directory = config.index_dir(directory)
    report = IndexReport()
    articles: list[Article] = []
    for item in read_articles(paths):
        if isinstance(item, InputProblem):
            report.problems.append(item)
        else:
            articles.append(item)
    if not articles and layout.current(directory) is None:
        report.seconds = time.perf_counter() - started
        return report  # nothing read and nothing indexed: create nothing
    with layout.writing(directory):
        if not rebuild:
            upgrade(directory)
        previous_dir = None if rebuild else layout.current(directory)
        previous = Manifest.load(previous_dir) if previous_dir else None
        settings = _settings(
            previous, directory, embedder, model, precision, vector_index, max_tokens, query_prompt, passage_prompt
        )
        settings = dataclasses.replace(settings, backend=backend)
        known = _known_articles(previous_dir) if previous_dir else {}
        changed = [a for a in articles if a.article_id in known and known[a.article_id][0] != a.content_hash]
        new = [a for a in articles if a.article_id not in known]
        gone = _gone(known, articles, report.problems) if prune else []
        report.added, report.updated, report.removed = len(new), len(changed), len(gone)
        report.unchanged = len(articles) - len(new) - len(changed)
        if not (changed or new or gone or (previous and previous.vector_index != settings.vector_index)):
            # Nothing to change -- or nothing could be read, in which case even a rebuild keeps what there is.
            _count(report, layout.current(directory))
        else:
            _write_generation(
                directory, previous_dir, settings, changed + new, changed, gone, embedder, progress, report
            )
    report.seconds = time.perf_counter() - started
    return report


def remove_articles(article_ids: Sequence[str], directory: str | Path | None = None) -> IndexReport:
    """Remove articles (and their passages and vectors) by id, in a new generation.

    Raises:
        NewsarchiveError: An id is not in the index; nothing is removed then.
    """
    started = time.perf_counter()
    directory = config.index_dir(directory)
    report = IndexReport()
    with layout.writing(directory):
        current = layout.require_current(directory)
        manifest = Manifest.load(current)
        known = _known_articles(current)
        unknown = [article_id for article_id in article_ids if article_id not in known]
        if unknown:
            raise NewsarchiveError(f"not in {directory}/: {', '.join(map(repr, unknown))}; nothing removed")
        settings = _Settings(
            manifest.model,
            manifest.max_tokens,
            manifest.query_prompt,
            manifest.passage_prompt,
            manifest.precision,
            manifest.vector_index,
        )
        report.removed = len(set(article_ids))
        _write_generation(directory, current, settings, [], [], sorted(set(article_ids)), None, None, report)
    report.seconds = time.perf_counter() - started
    return report


def write_sql(directory: str | Path | None, query: str) -> tuple[list[str], list[tuple]]:
    """Run a statement that may change the DuckDB tables, in a new generation that replaces the current one.

    The lexical index and the manifest's counts follow the change. If the result fails :func:`check` (say,
    passages deleted without their vectors), nothing is published.

    Returns:
        The statement's columns and rows (none for most changes).

    Raises:
        NewsarchiveError: The statement failed, or would leave the index inconsistent; the index is unchanged.
    """
    import duckdb

    from .check import check_generation
    from .lexical import LexicalIndex

    directory = config.index_dir(directory)
    with layout.writing(directory):
        current = layout.require_current(directory)
        manifest = Manifest.load(current)
        with layout.staging(directory) as staging:
            shutil.copy2(current / DATABASE, staging / DATABASE)
            shutil.copy2(current / VECTORS, staging / VECTORS)
            with connect(staging / DATABASE, read_only=False) as db:
                try:
                    relation = db.sql(query)
                    columns, rows = (relation.columns, relation.fetchall()) if relation is not None else ([], [])
                except duckdb.Error as error:
                    raise NewsarchiveError(str(error).strip().splitlines()[0]) from None
                store = Store(db)
                duplicates.regroup(store)  # the statement may have removed articles or changed their dates
                articles, passages = store.counts()
                LexicalIndex.build(store.lexical_rows()).save(staging / LEXICAL)
            built_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            dataclasses.replace(manifest, articles=articles, passages=passages, built_at=built_at).save(staging)
            problems = check_generation(staging)
            if problems:
                raise NewsarchiveError(f"not written, it would break the index: {'; '.join(problems)}")
            layout.publish(directory, staging)
    return columns, rows


def _settings(
    previous: Manifest | None,
    directory: Path,
    embedder: Embedder | None,
    model: str | None,
    precision: str | None,
    vector_index: str | None,
    max_tokens: int | None,
    query_prompt: str | None,
    passage_prompt: str | None,
) -> _Settings:
    """The settings this run builds with: the ones asked for, else the index's, else the defaults."""
    if embedder is not None:
        model, query_prompt, passage_prompt = embedder.name, embedder.query_prompt, embedder.passage_prompt
        precision = embedder.precision
    model = model_name(model or (previous.model if previous else None))
    max_tokens = max_tokens or (previous.max_tokens if previous else DEFAULT_MAX_TOKENS)
    if precision is not None or previous is None:
        precision = precision_for(model, precision)
    if previous:
        _refuse_changed_settings(
            previous,
            directory,
            model=model,
            precision=precision,
            max_tokens=max_tokens,
            query_prompt=query_prompt,
            passage_prompt=passage_prompt,
        )
        query_prompt, passage_prompt, precision = previous.query_prompt, previous.passage_prompt, previous.precision
    vector_index = vector_index or (previous.vector_index if previous else AUTO)
    return _Settings(model, max_tokens, query_prompt, passage_prompt, precision, vector_index)


def _known_articles(generation: Path) -> dict[str, tuple[str, str]]:
    """article_id -> (content hash, path) of the articles in a generation."""
    with connect(generation / DATABASE, read_only=True) as db:
        return Store(db).article_sources()


def _gone(known: dict[str, tuple[str, str]], articles: list[Article], problems: list[InputProblem]) -> list[str]:
    """Indexed articles whose file is gone, or whose file was read whole this time without them.

    Articles read from a URL are kept: a page may be gone for a while, and a feed drops its old entries.
    """
    read = {article.article_id for article in articles}
    whole = {article.path for article in articles} - {problem.path for problem in problems}
    return sorted(
        article_id
        for article_id, (_, path) in known.items()
        if article_id not in read and not is_url(path) and (path in whole or not Path(path).exists())
    )


def _count(report: IndexReport, generation: Path | None) -> None:
    if generation is not None:
        manifest = Manifest.load(generation)
        report.articles, report.passages = manifest.articles, manifest.passages


def _write_generation(
    directory: Path,
    previous_dir: Path | None,
    settings: _Settings,
    to_embed: list[Article],
    replaced: list[Article],
    removed: list[str],
    embedder: Embedder | None,
    progress: Progress | None,
    report: IndexReport,
) -> None:
    """Write the next generation: the previous one minus replaced and removed articles, plus ``to_embed``."""
    # Imported here: FAISS and SciPy take most of a second, which a run with nothing to do skips.
    from .lexical import LexicalIndex

    query_prompt, passage_prompt = settings.query_prompt, settings.passage_prompt
    with layout.staging(directory) as staging:
        if previous_dir:
            shutil.copy2(previous_dir / DATABASE, staging / DATABASE)
            store = Store(connect(staging / DATABASE, read_only=False))
        else:
            # A new index needs the model's dimension for its tables, whatever there is to embed.
            embedder = embedder or load_embedder(
                settings.model, query_prompt, passage_prompt, settings.precision, settings.backend
            )
            store = Store.create(staging / DATABASE, embedder.dimension)
        try:
            dropped = store.passage_ids([a.article_id for a in replaced] + removed)
            store.delete_articles([a.article_id for a in replaced] + removed)
            if settings.vector_index != AUTO:
                from .vectors import check_factory

                check_factory(settings.vector_index, store.dimension)
            ids: list[int] = []
            matrices = []
            if to_embed:
                embedder = embedder or load_embedder(
                    settings.model, query_prompt, passage_prompt, settings.precision, settings.backend
                )
            for start in range(0, len(to_embed), ARTICLES_PER_BATCH):
                batch = to_embed[start : start + ARTICLES_PER_BATCH]
                languages = [a.language or detect(f"{a.title}\n{a.text}") for a in batch]
                passages, matrix = _embed(batch, languages, embedder, settings.max_tokens, progress, start, to_embed)
                ids += store.insert(batch, languages, passages, matrix)
                matrices.append(matrix)
                report.embedded += len(passages)
            report.articles, report.passages = store.counts()
            vectors = _vectors(previous_dir, settings.vector_index, store, dropped, ids, matrices)
            duplicates.update(store, vectors, ids)
            if previous_dir:
                lexical = LexicalIndex.load(previous_dir / LEXICAL).updated(dropped, store.lexical_rows(ids))
            else:
                lexical = LexicalIndex.build(store.lexical_rows())
            if embedder is not None:  # None only when an existing index needed no model: it keeps its prompts
                query_prompt, passage_prompt = embedder.query_prompt, embedder.passage_prompt
        finally:
            store.close()
        vectors.save(staging / VECTORS)
        lexical.save(staging / LEXICAL)
        Manifest(
            model=settings.model,
            dimension=vectors.dimension,
            query_prompt=query_prompt or "",
            passage_prompt=passage_prompt or "",
            max_tokens=settings.max_tokens,
            articles=report.articles,
            passages=report.passages,
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            index_type=_factory(settings.vector_index, report.passages),
            precision=settings.precision,
            vector_index=settings.vector_index,
            # No model was needed when nothing was embedded: the passages are the previous write's.
            backend=embedder.backend if embedder is not None else Manifest.read(previous_dir).backend,
        ).save(staging)
        layout.publish(directory, staging)


def _factory(vector_index: str, passages: int) -> str:
    from .vectors import factory_for

    return factory_for(passages) if vector_index == AUTO else vector_index


def _vectors(
    previous_dir: Path | None,
    vector_index: str,
    store: Store,
    dropped: list[int],
    ids: list[int],
    matrices: list[np.ndarray],
) -> VectorIndex:
    """The next generation's vector index: the previous one updated, or a new one when the kind changes."""
    from .vectors import VectorIndex

    factory = _factory(vector_index, store.counts()[1])
    if previous_dir and Manifest.load(previous_dir).index_type == factory:
        vectors = VectorIndex.load(previous_dir / VECTORS)
        try:
            vectors.remove(dropped)
            if matrices:
                vectors.add(np.asarray(ids), np.concatenate(matrices))
            return vectors
        except RuntimeError:
            pass  # a kind that cannot remove vectors (HNSW) is built again
    matrices.clear()  # DuckDB has them too: do not hold a second copy of a large archive's vectors
    all_ids, all_vectors = store.vectors_of()
    return VectorIndex.build(factory, all_vectors.shape[1], all_ids, all_vectors)


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
    articles: list[Article],
    languages: list[str | None],
    embedder: Embedder,
    max_tokens: int,
    progress: Progress | None,
    done: int,
    total: list[Article],
) -> tuple[list[Passage], np.ndarray]:
    """Split articles into passages, tell each one's language, and embed them with title and heading.

    ``progress`` hears of articles: ``done`` of ``total`` before these, and a share of these as passages finish.
    """
    by_id = dict(zip((a.article_id for a in articles), languages))
    passages = [
        dataclasses.replace(p, language=passage_language(p.text, by_id[article.article_id]))
        for article in articles
        for p in split_article(article, embedder.count_tokens, max_tokens)
    ]
    titles = {a.article_id: a.title for a in articles}
    texts = [embedding_text(titles[p.article_id], p.heading, p.text) for p in passages]
    embedded = 0

    def advance(count: int) -> None:
        nonlocal embedded
        embedded += count
        if progress:
            progress("embedding", done + len(articles) * embedded // len(texts), len(total))

    return passages, embedder.embed_passages(texts, progress=advance)
