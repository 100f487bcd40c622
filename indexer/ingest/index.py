"""Building and updating an index directory from article files."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from indexer import config, workers
from indexer.errors import IndexMismatch, InputProblem, NewsarchiveError, Note
from indexer.ingest.cluster import Batch, ClusterOptions
from indexer.ingest.embedding import embed_articles
from indexer.models.embedder import Embedder, load_embedder, model_name, precision_for
from indexer.reading.article import Article
from indexer.reading.inputs import count_articles, read_articles
from indexer.reading.web import is_url
from indexer.storage import AUTO, Manifest, Settings, Writer
from indexer.storage.manifest import exists
from indexer.text.passages import DEFAULT_MAX_TOKENS, Passage


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
    ignored: list[Note] = field(default_factory=list)  # what was passed over without failing: files, unfetched links
    matches: list = field(default_factory=list)  # new matches of alerts (indexer.live.alerts.Match)


Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while articles are embedded: ``done`` of the ``total`` articles in
the inputs have been read (and embedded, unless unchanged)."""
ARTICLES_PER_BATCH = 1000  # split, embedded and stored together, so memory stays flat however many there are
API_INPUT = "api"  # the path of articles posted to the API: one input, of no file; only the API may replace them
# Articles between a build's commits: what a run killed and started again embeds a second time at most. Commits of
# this size (100k passages of bench/search.py's) also let merges keep a large build's segments few (merges.automatic),
# so that each new passage's near-copy lookups cost the same at ten million passages as at one.
COMMIT_EVERY = 20_000


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
    parallel: bool = False,
    cluster: ClusterOptions | None = None,
    commit_every: int = COMMIT_EVERY,
    run_alerts: Callable[[Path, Embedder], list] | None = None,
    articles: Iterable[Article | InputProblem] | None = None,
) -> IndexReport:
    """Add the articles found under ``paths`` to the index in ``directory``, creating it if needed.

    New articles are added; articles whose content changed are replaced; unchanged ones (by content hash) are
    not embedded again, and when nothing changed nothing is written. Files that cannot be read are reported in
    ``IndexReport.problems`` and skipped; what was indexed from them stays. An article belongs to the input that
    first indexed it (:func:`same_input`): another input with its id is a problem too, and replaces nothing.
    What was passed over without failing (files of a folder that are not articles, links whose page was not
    fetched) is noted in ``IndexReport.ignored``. What is new goes into a new segment,
    made current by one commit (:mod:`indexer.storage`); nothing already committed is rewritten, and only one
    process may write at a time.

    Args:
        paths: Files and folders of articles (:data:`indexer.reading.inputs.SUFFIXES`), and http(s) URLs of pages or
        feeds. directory: The index directory; ``None`` means ``$NEWSARCHIVE_INDEX_DIR`` or ``./archive``.
        model: Model name or path; ``None`` keeps the index's model (or the default, for a new index).
        rebuild: Start from an empty index instead of updating the existing one.
        prune: Also remove articles whose file is gone, and articles no longer in a file that was read whole.
        precision: ``int8``, ``fp32`` or ``auto`` (:func:`indexer.models.embedder.precision_for`); ``None`` keeps the
            index's, or takes ``$NEWSARCHIVE_PRECISION`` or ``auto`` for a new index.
        vector_index: ``auto`` (exact search for small archives, approximate for large ones) or a FAISS index
            factory string; ``None`` keeps the index's. Changing it rebuilds the vectors' index, not the embeddings.
        max_tokens: Passage budget in model tokens; ``None`` keeps the index's (or the default).
        query_prompt: Text put before queries; ``None`` keeps the index's (or the model's own ``query`` prompt).
        passage_prompt: Text put before passages; ``None`` keeps the index's (or the model's own).
        backend: What runs the default model: ``openvino``, ``onnx``, ``torch`` or ``auto`` (the fastest whose
            vectors agree with fp32 here, :mod:`indexer.models.backends`); ``None`` takes ``$NEWSARCHIVE_BACKEND`` or
            ``auto``. Not an index setting: vectors from every backend agree, so it may change from run to run.
        embedder: A loaded model to use instead of loading ``model`` (tests pass small fakes).
        progress: Receives embedding progress.
        parallel: Spread a large input's language detection and tokenizing over the cores, in worker processes
            (:mod:`indexer.workers`); they import the calling program's main module again, so it must allow that
            (``if __name__ == "__main__":``, as :mod:`multiprocessing` asks). The CLI does.
        cluster: Read and embed on Ray (:mod:`indexer.ingest.cluster`); this process alone writes the index.
        commit_every: Commit after this many new or changed articles, so a run killed and started again does not
            embed what it already committed (a rebuild's first such commit replaces the old index).
        run_alerts: Runs the saved alerts after a commit that added or changed articles, given the index
            directory and the model; what they matched goes into ``IndexReport.matches``. The CLI passes
            :func:`indexer.live.alerts.run_alerts`, which lives above this layer.
        articles: Articles already read, instead of ``paths`` (the API's, whose ``path`` is :data:`API_INPUT`).

    Raises:
        IndexMismatch: The existing index was built with another model, passage budget or prompts; use ``rebuild``.
        IndexBusy: Another process is writing the index.
    """
    with workers.enabled(parallel):
        started = time.perf_counter()
        directory = config.index_dir(directory)
        report = IndexReport()
        given, articles = articles, ()
        if cluster is None:  # on Ray, the workers read
            articles = _readable(read_articles(paths) if given is None else given, report)
            first = next(articles, None)
            if first is None and not exists(directory):
                report.seconds = time.perf_counter() - started
                return report  # nothing read and nothing indexed: create nothing
            if first is None:
                rebuild = False  # nothing could be read: even a rebuild keeps what there is
            articles = itertools.chain([first] if first else [], articles)
        total = count_articles(paths) if progress and given is None else 0
        with Writer(directory, rebuild=rebuild) as writer:
            previous = writer.base if not writer.rebuild else None
            settings = _settings(
                previous, directory, embedder, model, precision, vector_index, max_tokens, query_prompt, passage_prompt
            )
            reindex = previous is not None and previous.vector_index != settings.vector_index
            ingestion = Ingestion(writer, settings, report, embedder, backend)
            read: set[str] = set()  # ids and files read, for --prune only
            paths_read: set[str] = set()
            if cluster is None:
                batches = ingestion.add(articles, progress, total, commit_every)
            else:
                batches = ingestion.add_from_cluster(paths, cluster, progress, total, commit_every)
            for batch in batches:
                if prune:
                    read.update(a.article_id for a in batch)
                    paths_read.update(a.path for a in batch)
            gone = _gone(writer.known(), read, paths_read, report.problems) if prune else []
            report.removed = len(gone)
            if gone or reindex or previous is None:
                ingestion.start(embedding=False)
            writer.delete(gone)
            writer.commit()
            if reindex:
                writer.optimize(force=True)  # every segment's vector index, of the new kind
        if run_alerts and (report.added or report.updated):
            report.matches = run_alerts(directory, ingestion.embedder)
        _count(report, directory)
        report.seconds = time.perf_counter() - started
        return report


class Ingestion:
    """Hands articles to ``writer``: those new or changed (by content hash) are split, their languages told and
    their passages embedded, a batch at a time; unchanged ones are counted and left. The model is loaded when
    something is first embedded (or, for a new index, when its settings are first needed)."""

    def __init__(
        self,
        writer: Writer,
        settings: Settings,
        report: IndexReport,
        embedder: Embedder | None = None,
        backend: str | None = None,
    ) -> None:
        self.writer, self.settings, self.report = writer, settings, report
        self.embedder, self.backend = embedder, backend
        self._started = False
        self._read = self._uncommitted = 0

    def add(
        self,
        articles: Iterable[Article],
        progress: Progress | None = None,
        total: int = 0,
        commit_every: int = COMMIT_EVERY,
    ) -> Iterator[list[Article]]:
        """Ingest ``articles``, committing every ``commit_every`` new or changed ones; yields each batch once it is
        handed over (the caller may note what it read), without the articles refused because another input owns
        their id."""
        for batch in _batches(articles, ARTICLES_PER_BATCH):
            known = self.writer.known(a.article_id for a in batch)
            owned = self._owned(batch, known)
            to_embed = [a for a in owned if known.get(a.article_id, ("",))[0] != a.content_hash]
            self.report.unchanged += len(owned) - len(to_embed)
            if to_embed:
                self.start(embedding=True)
                advance = _progress(progress, self._read, len(batch), total)
                embedded = embed_articles(to_embed, self.embedder, self.settings.max_tokens, advance)
                self._write(to_embed, *embedded, known)
            self._read += len(batch)
            self._commit_after(len(to_embed), commit_every)
            yield owned

    def add_from_cluster(
        self,
        paths: Sequence[str | Path],
        cluster: ClusterOptions,
        progress: Progress | None = None,
        total: int = 0,
        commit_every: int = COMMIT_EVERY,
    ) -> Iterator[list[Article]]:
        """Read and embed on Ray what is under ``paths`` (:mod:`indexer.ingest.cluster`) and add it, committing every
        ``commit_every`` new or changed articles; yields each batch's articles once handed over."""
        from indexer.ingest.cluster import embedded_batches

        self.start(embedding=True)  # a new index's dimension, before the actors start
        known = {} if self.writer.rebuild else {a: hash for a, (hash, _) in self.writer.known().items()}
        for batch in embedded_batches(paths, self.settings, known, cluster, self.backend):
            self.report.ignored += [p for p in batch.problems if isinstance(p, Note)]
            self.report.problems += [p for p in batch.problems if not isinstance(p, Note)]
            owners = self.writer.known(a.article_id for a in batch.articles + batch.unchanged)
            batch.unchanged = self._owned(batch.unchanged, owners)
            _keep(batch, self._owned(batch.articles, owners))
            self.report.unchanged += len(batch.unchanged)
            if batch.articles:
                known = self.writer.known(a.article_id for a in batch.articles)
                self._write(batch.articles, batch.languages, batch.passages, batch.vectors, known)
            self._read += len(batch.articles) + len(batch.unchanged)
            if progress:
                progress("embedding", self._read, max(total, self._read))
            self._commit_after(len(batch.articles), commit_every)
            yield batch.articles + batch.unchanged

    def _commit_after(self, written: int, commit_every: int) -> None:
        """Count ``written`` articles, and commit once ``commit_every`` are uncommitted."""
        self._uncommitted += written
        if self._uncommitted >= commit_every:
            self.writer.commit()
            self._uncommitted = 0

    def _owned(self, articles: list[Article], known: dict[str, tuple[str, str]]) -> list[Article]:
        """The articles new to the index or of the input that owns their id; each other one is a problem."""
        owned = []
        for article in articles:
            owner = known[article.article_id][1] if article.article_id in known else None
            if owner is None or same_input(article.path, owner, article.url):
                owned.append(article)
                continue
            reason = (
                f"article id {article.article_id!r} belongs to {owner}, which indexed it first: not replaced "
                f"(to give it to this input, remove it first: newsarchive remove {article.article_id})"
            )
            self.report.problems.append(InputProblem(article.path, reason, article.line))
        return owned

    def _write(
        self,
        articles: list[Article],
        languages: list[str | None],
        passages: list[Passage],
        vectors: np.ndarray,
        known: dict[str, tuple[str, str]],
    ) -> None:
        """Hand embedded articles to the writer, counted as added or (being in ``known``) updated."""
        self.report.updated += sum(a.article_id in known for a in articles)
        self.report.added += sum(a.article_id not in known for a in articles)
        self.writer.add(articles, languages, passages, vectors)
        self.report.embedded += len(passages)

    def start(self, embedding: bool) -> None:
        """Tell the writer the settings, loading the model first (a new index needs its dimension)."""
        if self._started:
            return
        settings = self.settings
        if embedding or self.writer.base is None or self.writer.rebuild:
            self.embedder = self.embedder or load_embedder(
                settings.model, settings.query_prompt, settings.passage_prompt, settings.precision, self.backend
            )
            settings = dataclasses.replace(
                settings,
                dimension=self.embedder.dimension,
                query_prompt=self.embedder.query_prompt or "",
                passage_prompt=self.embedder.passage_prompt or "",
                backend=self.embedder.backend if embedding else settings.backend,
            )
        if settings.vector_index != AUTO:
            from indexer.indexes.vectors import check_factory

            check_factory(settings.vector_index, settings.dimension)
        self.writer.start(settings)
        self.settings, self._started = settings, True


def settings_of(writer: Writer, directory: Path, embedder: Embedder | None = None) -> Settings:
    """The settings an update of the index being written keeps (the defaults, for a new index)."""
    previous = writer.base if not writer.rebuild else None
    return _settings(previous, directory, embedder, None, None, None, None, None, None)


@contextlib.contextmanager
def open_writer(directory: Path) -> Iterator[Writer]:
    """The writer of the index in ``directory``, for changes that embed nothing; a new index is started with the
    default settings (the default model is loaded, for its dimension)."""
    with Writer(directory) as writer:
        if writer.base is None:
            Ingestion(writer, settings_of(writer, directory), IndexReport()).start(embedding=False)
        yield writer


def remove_articles(article_ids: Sequence[str], directory: str | Path | None = None) -> IndexReport:
    """Remove articles (and their passages and vectors) by id: tombstones, in a new commit.

    Raises:
        NewsarchiveError: An id is not in the index; nothing is removed then.
    """
    started = time.perf_counter()
    directory = config.index_dir(directory)
    report = IndexReport()
    with Writer(directory) as writer:
        if writer.base is None:
            Manifest.load(directory)  # says there is no index
        known = writer.known(article_ids)
        unknown = [article_id for article_id in article_ids if article_id not in known]
        if unknown:
            raise NewsarchiveError(f"not in {directory}/: {', '.join(map(repr, unknown))}; nothing removed")
        writer.delete(sorted(set(article_ids)))
        report.removed = len(set(article_ids))
    _count(report, directory)
    report.seconds = time.perf_counter() - started
    return report


def optimize(directory: str | Path | None = None) -> Manifest:
    """Merge every segment of the index into one, without its tombstoned rows (``newsarchive optimize``)."""
    directory = config.index_dir(directory)
    with Writer(directory) as writer:
        if writer.base is None:
            Manifest.load(directory)
        writer.optimize()
    return Manifest.load(directory)


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
) -> Settings:
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
    dimension = previous.dimension if previous else 0
    backend = previous.backend if previous else ""
    return Settings(model, dimension, query_prompt, passage_prompt, max_tokens, precision, vector_index, backend)


def same_input(path: str, owner: str, url: str | None = None) -> bool:
    """Whether an article read from ``path`` (a file, a page's or a feed's URL) may replace the indexed article
    whose input was ``owner`` (its ``path`` column); ``url`` is the article's own URL.

    A URL is the same input as the same URL; and an outlet's feeds and pages may update its own articles, whichever
    of them indexed it first: those on one host (section feeds at feeds.example.com), and an article whose URL is
    on the host of the page or feed that brings it. A file is the same input as the same file, whatever path names
    it (relative or absolute, through a link); when the owner's file is gone as it was named (moved, rotated, or
    indexed from another working directory), another file may take its articles.
    """
    if path == owner or not owner:
        return True
    if API_INPUT in (path, owner):
        return False
    if is_url(path) or is_url(owner):
        # Two section feeds of one outlet list the same story; a feed on another host (a copycat's) cannot take it.
        if not (is_url(path) and is_url(owner)) or _host(path) is None:
            return False
        return _host(path) == _host(owner) or (url is not None and _host(url) == _host(path))
    old, new = Path(owner), Path(path)
    try:
        return old.samefile(new) if old.exists() else True
    except (OSError, ValueError):  # unreadable, or a name the system refuses
        return False


def _host(url: str) -> str | None:
    """The host of ``url`` without ``www.``, or ``None`` when it has none or cannot be read."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


def _keep(batch: Batch, articles: list[Article]) -> None:
    """Narrow an embedded batch of Ray's to ``articles`` (some of its own), with their languages and passages."""
    if len(articles) == len(batch.articles):
        return
    kept = {a.article_id for a in articles}
    batch.languages = [lang for a, lang in zip(batch.articles, batch.languages) if a.article_id in kept]
    rows = [row for row, passage in enumerate(batch.passages) if passage.article_id in kept]
    batch.passages, batch.vectors = [batch.passages[row] for row in rows], batch.vectors[rows]
    batch.articles = articles


def _gone(
    known: dict[str, tuple[str, str]], read: set[str], paths: set[str], problems: list[InputProblem]
) -> list[str]:
    """Indexed articles whose file is gone, or whose file was read whole this time without them.

    Articles read from a URL are kept: a page may be gone for a while, and a feed drops its old entries. So are
    those posted to the API, which no file holds.
    """
    whole = paths - {problem.path for problem in problems}
    return sorted(
        article_id
        for article_id, (_, path) in known.items()
        if article_id not in read
        and not is_url(path)
        and path != API_INPUT
        and (path in whole or not Path(path).exists())
    )


def _readable(items: Iterable[Article | InputProblem], report: IndexReport) -> Iterator[Article]:
    """The articles among ``items``, read as they are needed; the problems and notes go to ``report``."""
    for item in items:
        if isinstance(item, Note):
            report.ignored.append(item)
        elif isinstance(item, InputProblem):
            report.problems.append(item)
        else:
            yield item


def _batches(articles: Iterable[Article], size: int) -> Iterator[list[Article]]:
    iterator = iter(articles)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _progress(progress: Progress | None, before: int, batch: int, total: int) -> Callable[[float], None]:
    """What ``embed_articles`` calls with the share of a batch embedded: ``progress`` hears of articles read."""

    def advance(share: float) -> None:
        if progress:
            done = before + round(batch * share)
            progress("embedding", done, max(total, before + batch))

    return advance


def _count(report: IndexReport, directory: Path) -> None:
    if exists(directory):
        manifest = Manifest.load(directory)
        report.articles, report.passages = manifest.articles, manifest.passages


def _refuse_changed_settings(previous: Manifest, directory: Path, **asked: object) -> None:
    """Updating an index with other settings would mix incomparable vectors: only ``--rebuild`` may change them."""
    for setting, value in asked.items():
        built_with = getattr(previous, setting)
        if value is not None and value != built_with:
            raise IndexMismatch(
                f"{directory}/ was built with {setting.replace('_', ' ')} {built_with!r}, not {value!r}: "
                "add --rebuild to index everything again with the new setting"
            )
