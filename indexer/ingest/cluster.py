"""Indexing on a Ray cluster: reading, splitting, language detection and embedding as a Ray Data pipeline.

The inputs are cut into units of work of a few dozen articles (a JSONL file's lines, another file or URL whole;
with ``ship_inputs``, articles read here, their text sent). A pool of actors, each loading the model once and
computing with exactly the CPUs Ray gave it, reads a unit, splits its new and changed articles, tells their
languages and embeds their passages. Units come back in input order, so passage ids are those a local run gives,
and only this process writes the archive (:class:`indexer.storage.Writer`).

Ray delivers at least once: a batch retried after a worker died may come back twice, and only its first copy is
kept (by article id). Ray is imported only here, and only when a run asks for it.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer import config
from indexer.errors import InputProblem, NewsarchiveError
from indexer.reading.article import Article
from indexer.reading.inputs import Lines, find_files, jsonl_parts, read_articles, read_item, read_lines
from indexer.storage import Settings
from indexer.text.passages import Passage

INSTALL = "indexing on Ray needs Ray Data: pip install 'newsarchive[cluster]'"
ARTICLES_PER_BATCH = 32  # per actor call: a few seconds of embedding, so a lost worker loses little
Unit = Path | str | Lines | InputProblem | list  # a unit of work: a file, a URL, lines of a file, shipped articles


@dataclass(frozen=True)
class ClusterOptions:
    """How an index run uses Ray.

    Attributes:
        address: The cluster (``ray://host:10001``, ``host:6379``); ``None`` or ``auto`` takes ``$RAY_ADDRESS``,
            else starts a local Ray on this machine.
        actors: Embedding actors; ``None`` fills the cluster's CPUs (GPUs, with ``gpus_per_actor``).
        cpus_per_actor: CPUs each actor gets, and the threads its model runs on.
        gpus_per_actor: GPUs each actor gets; with one, the model runs in sentence-transformers on CUDA.
        ship_inputs: Read the inputs here and send their text to the workers, for inputs only this machine sees.
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    ship_inputs: bool = False


@dataclass
class Batch:
    """A batch of inputs, read and embedded: what the writer adds, and what it does not."""

    articles: list[Article] = field(default_factory=list)  # new or changed, embedded
    languages: list[str | None] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    unchanged: list[Article] = field(default_factory=list)  # already indexed as they are
    problems: list[InputProblem] = field(default_factory=list)


@dataclass
class _Embedded:
    """What an actor sends back for a batch: its inputs in order, and the passages and vectors of those it
    embedded (the first article of each id in the batch that is new or changed)."""

    items: list[Article | InputProblem]
    embedded: dict[int, str | None]  # position in items -> the article's language
    passages: list[Passage]
    vectors: np.ndarray


@dataclass(frozen=True)
class Unreachable:
    """An input path a worker on another node cannot see."""

    path: str
    node: str

    def error(self) -> NewsarchiveError:
        return NewsarchiveError(
            f"{self.path}: a Ray worker on node {self.node} cannot read it. Put the inputs on storage every node "
            "mounts at the same path, or add --ray-ship-inputs to send their text from this machine"
        )


@dataclass(frozen=True)
class Failed:
    """What an actor could not do for good, in words."""

    reason: str

    def error(self) -> NewsarchiveError:
        return NewsarchiveError(self.reason)


def embedded_batches(
    paths: Sequence[str | Path],
    settings: Settings,
    known: dict[str, str],
    options: ClusterOptions,
    backend: str | None = None,
) -> Iterator[Batch]:
    """The inputs under ``paths``, read and (where new or changed against ``known``: article id -> content hash)
    embedded on Ray, a batch at a time, in input order, each article once.

    Raises:
        NewsarchiveError: Ray is not installed, the cluster cannot be reached, or a worker cannot read an input.
    """
    ray = _ray()
    connect(options.address)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the order passage ids are given in
    context.print_on_execution_start = False
    # Its progress lines (the CLI draws its own bar) and its stack traces (a failure is told in one line; Ray's
    # own log files keep the trace).
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    node = ray.get_runtime_context().get_node_id()
    units = [{"unit": pickle.dumps(unit)} for unit in _units(paths, options.ship_inputs)]
    backend = "torch" if options.gpus_per_actor else backend
    # A block of its own for each unit: a block goes to one actor, and the units are what spreads the work.
    dataset = ray.data.from_items(units, override_num_blocks=max(1, len(units))).map_batches(
        _Embedding,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(_actors(ray, options), max(1, len(units)))),
        num_cpus=options.cpus_per_actor,
        num_gpus=options.gpus_per_actor or None,
        fn_constructor_kwargs={"settings": settings, "known": ray.put(known), "backend": backend, "driver": node},
    )
    seen: dict[str, tuple[str, int | None]] = {}
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for packed in batch["item"]:
                found = pickle.loads(packed)
                if isinstance(found, (Unreachable, Failed)):
                    raise found.error()
                yield _first_copies(found, seen)
    except NewsarchiveError:
        raise
    except Exception as error:  # noqa: BLE001 -- Ray's wrapping of what failed in a worker, told in one line
        raise explained(error) from None


def explained(error: BaseException) -> NewsarchiveError:
    """What failed in a worker, from the exceptions Ray wraps it in: our own error as it is, else its last line."""
    seen, chain = set(), [error]
    while chain[-1] is not None and id(chain[-1]) not in seen:
        seen.add(id(chain[-1]))
        last = chain[-1]
        chain.append(getattr(last, "cause", None) or last.__cause__ or last.__context__)
    causes = chain[:-1]
    ours = next((cause for cause in causes if isinstance(cause, NewsarchiveError)), None)
    if ours is not None:
        return ours
    root = causes[-1]
    lines = [line for line in str(root).strip().splitlines() if line.strip()]
    return NewsarchiveError(f"indexing on Ray failed in a worker: {type(root).__name__}: {lines[-1] if lines else ''}")


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` (``None``/``auto``: ``$RAY_ADDRESS``, else a new local one), once."""
    ray = _ray()
    if ray.is_initialized():
        return
    address = None if address in (None, "", "auto") else address
    from indexer.reading import fetch_policy

    # Workers fetch the URLs they read: --allow-private reaches them as the environment variable they read.
    allowed = {fetch_policy.ALLOW_PRIVATE_ENV: "1"} if fetch_policy.private_allowed() else {}
    try:
        ray.init(
            address=address,
            runtime_env={"env_vars": allowed} if allowed else None,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = address or os.environ.get("RAY_ADDRESS") or "a local Ray"
        raise NewsarchiveError(f"cannot start or reach the Ray cluster {where!r}: {error}") from None


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 -- ray without the data extra lacks it
    except ImportError:
        raise NewsarchiveError(INSTALL) from None
    return ray


def _actors(ray: Any, options: ClusterOptions) -> int:
    if options.actors:
        return options.actors
    resources = ray.cluster_resources()
    if options.gpus_per_actor:
        return max(1, int(resources.get("GPU", 0) // options.gpus_per_actor))
    return max(1, int(resources.get("CPU", 1) // options.cpus_per_actor))


def _first_copies(found: _Embedded, seen: dict[str, tuple[str, int | None]]) -> Batch:
    """``found`` without the articles already delivered (a batch Ray ran again), and with a second article of an
    id already read (from another file or line) a problem, as in a local run."""
    batch, kept = Batch(), set()
    for position, item in enumerate(found.items):
        if isinstance(item, InputProblem):
            batch.problems.append(item)
            continue
        where = (item.path, item.line)
        if item.article_id in seen:
            if seen[item.article_id] != where:
                path, line = seen[item.article_id]
                first = f"{path}:{line}" if line else path
                reason = f"duplicate article id {item.article_id!r} (first in {first})"
                batch.problems.append(InputProblem(item.path, reason, item.line))
            continue  # else the same article again: a batch Ray ran twice
        seen[item.article_id] = where
        if position in found.embedded:
            batch.articles.append(item)
            batch.languages.append(found.embedded[position])
            kept.add(item.article_id)
        else:
            batch.unchanged.append(item)
    rows = [row for row, passage in enumerate(found.passages) if passage.article_id in kept]
    batch.passages = [found.passages[row] for row in rows]
    batch.vectors = found.vectors[rows]
    return batch


def _units(paths: Sequence[str | Path], ship_inputs: bool) -> Iterator[Unit]:
    """The inputs cut into units of work of about :data:`ARTICLES_PER_BATCH` articles: a JSONL file's lines,
    another file or URL whole; shipped, the articles themselves, read here."""
    if ship_inputs:
        read = iter(read_articles(paths))
        while chunk := list(itertools.islice(read, ARTICLES_PER_BATCH)):
            yield chunk
        return
    for item in find_files(paths):
        if isinstance(item, Path) and item.suffix.lower() == ".jsonl":
            yield from jsonl_parts(item, ARTICLES_PER_BATCH)
        else:
            yield item


def read_unit(unit: Unit, driver_node: str, node: str) -> list[Article | InputProblem] | Unreachable:
    """What a unit of work holds, read on ``node``; a path missing on a node that is not the driver's is
    :class:`Unreachable` (a file gone from the driver's own disk is an input problem, as locally)."""
    if isinstance(unit, list):
        return unit
    if isinstance(unit, InputProblem):
        return [unit]
    path = unit.path if isinstance(unit, Lines) else unit
    if isinstance(path, Path) and node != driver_node and not path.exists():
        return Unreachable(str(path), node)
    return list(read_lines(unit) if isinstance(unit, Lines) else read_item(unit))


class _Embedding:
    """A Ray actor: reads a unit of work, and embeds what is new or changed with the model it loaded once, on
    the CPUs Ray gave it."""

    def __init__(self, settings: Settings, known: Any, backend: str | None, driver: str) -> None:
        import ray

        from indexer.models.embedder import load_embedder

        self.known: dict[str, str] = ray.get(known) if isinstance(known, ray.ObjectRef) else known
        self.driver, self.node = driver, ray.get_runtime_context().get_node_id()
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        os.environ[config.THREADS_ENV] = str(max(1, round(cpus)))
        self.settings = settings
        # What fails here for good (no model, another model) is sent back as the answer to every call: raised
        # here, it would be an actor that Ray starts again and again.
        self.failed: str | None = None
        try:
            self.embedder = load_embedder(
                settings.model, settings.query_prompt, settings.passage_prompt, settings.precision, backend
            )
        except NewsarchiveError as error:
            self.failed = f"on Ray node {self.node}: {error}"
            return
        if settings.dimension and self.embedder.dimension != settings.dimension:
            self.failed = (
                f"model {settings.model!r} on Ray node {self.node} gives vectors of {self.embedder.dimension} "
                f"dimensions, the index's have {settings.dimension}: install the same model and newsarchive on "
                "every node"
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from indexer.ingest.embedding import embed_articles

        if self.failed:
            return {"item": np.array([pickle.dumps(Failed(self.failed))], dtype=object)}
        (packed,) = batch["unit"]
        items = read_unit(pickle.loads(packed), self.driver, self.node)
        if isinstance(items, Unreachable):
            return {"item": np.array([pickle.dumps(items)], dtype=object)}
        wanted: dict[str, int] = {}  # article id -> position: the first of each id, when new or changed
        for position, item in enumerate(items):
            if isinstance(item, Article) and self.known.get(item.article_id) != item.content_hash:
                wanted.setdefault(item.article_id, position)
        articles = [items[position] for position in wanted.values()]
        languages, passages, vectors = embed_articles(articles, self.embedder, self.settings.max_tokens)
        found = _Embedded(items, dict(zip(wanted.values(), languages)), passages, vectors)
        return {"item": np.array([pickle.dumps(found)], dtype=object)}
