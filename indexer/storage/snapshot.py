"""A snapshot: one commit of an index, pinned for reading -- its manifest, DuckDB views, vectors and lexical index.

A snapshot never changes under its reader, whatever writers and merges commit meanwhile: the files of a commit stay
on disk while any reader may still hold it (:data:`layout.RETAIN_SECONDS`). Open a new snapshot to see a newer
commit; segments already loaded in this process are not loaded again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from indexer.errors import IndexNotFound
from indexer.indexes.lexical import LexicalIndex
from indexer.indexes.vectors import Part, SegmentedVectors
from indexer.storage import catalog, layout, segment, tables
from indexer.storage.manifest import Manifest
from indexer.storage.store import HIT_COLUMNS, Store

if TYPE_CHECKING:
    from indexer.models.centering import LanguageMeans

# DuckDB's cache in a search process: enough for the passages a search fetches and for SQL over a large archive
# (DuckDB spills what does not fit), not the 80% of the machine it takes by default.
SEARCH_CACHE = "512MB"


class Snapshot:
    """One commit of the index in ``directory``, read-only.

    Args:
        directory: The index directory.
        manifest: The commit to open; ``None`` means the current one.
        staged: Where segments of a commit being written are (name -> staging directory); writers only.
        memory_limit: DuckDB's memory limit for this snapshot's connection.
        mapped_vectors: Memory-map the approximate vector indexes rather than read them: for a few lookups.

    Raises:
        IndexNotFound: There is no index, or the commit's files are gone (a reader held it past the retention).
        IndexMismatch: The index is of another format.
    """

    def __init__(
        self,
        directory: Path,
        manifest: Manifest | None = None,
        staged: dict[str, Path] | None = None,
        memory_limit: str = SEARCH_CACHE,
        mapped_vectors: bool = False,
    ) -> None:
        self.directory = directory
        self._mapped = mapped_vectors
        self.manifest = manifest or Manifest.load(directory)
        staged = staged or {}
        self.paths = {
            e.name: staged.get(e.name) or directory / layout.SEGMENTS / e.name for e in self.manifest.segments
        }
        try:
            loaded = segment.load(list(self.paths.values()), self.manifest.dimension)
            dead = {
                e.name: segment.tombstones(self.paths[e.name] / e.tombstones if e.tombstones else None)
                for e in self.manifest.segments
            }
            self.deleted = {name: passages for name, (_, passages) in dead.items()}
            self.deleted_articles = {name: articles for name, (articles, _) in dead.items()}
        except FileNotFoundError as error:
            raise IndexNotFound(
                f"{directory}/: commit {self.manifest.commit} is incomplete ({error.filename} is missing); "
                "open the index again, or rebuild it with `newsarchive index --rebuild ...`"
            ) from None
        self.loaded = dict(zip(self.paths, loaded))
        self._memory_limit, self._staged = memory_limit, staged

    @functools.cached_property
    def store(self) -> Store:
        """The commit's tables in DuckDB (connected on first use: a small write looks articles up without it)."""
        return Store(catalog.connect(self.directory, self.manifest, self._memory_limit, self._staged))

    @functools.cached_property
    def vectors(self) -> SegmentedVectors:
        """Every live segment's vectors, searched as one index (loaded on first use)."""
        parts = [
            Part(item.mapped_vectors if self._mapped else item.vectors, item.ids, item.stored, self.deleted[name])
            for name, item in self.loaded.items()
        ]
        return SegmentedVectors(parts, self.manifest.dimension)

    @functools.cached_property
    def lexical(self) -> LexicalIndex:
        """Every live segment's BM25 indexes, searched as one (loaded on first use)."""
        deleted = [self.deleted[name] for name in self.loaded]
        return LexicalIndex.combined([item.lexical for item in self.loaded.values()], deleted)

    @functools.cached_property
    def language_means(self) -> LanguageMeans:
        """Each language's mean passage vector over the live segments (tombstoned passages still count in them
        until a merge drops them)."""
        from indexer.models.centering import LanguageMeans

        return LanguageMeans([item.language_sums for item in self.loaded.values()], self.manifest.dimension)

    @functools.cached_property
    def story_of(self) -> dict[str, str]:
        """article_id -> story_id of the articles in a story of several (the others are their own)."""
        if not self.manifest.stories:
            return {}
        table = pq.ParquetFile(self.directory / layout.STORIES / self.manifest.stories).read()
        return dict(zip(table.column("article_id").to_pylist(), table.column("story_id").to_pylist()))

    def table(self, name: str) -> pa.Table:
        """State table ``name`` of this commit (:mod:`indexer.storage.tables`)."""
        return tables.read(self.directory, self.manifest.tables, name)

    def owners(self, passage_ids: np.ndarray) -> tuple[list[str], list[str]]:
        """The article of each of these passages and the segment holding it (every id must be in a segment),
        from the lookup files."""
        owners: list[str] = [""] * len(passage_ids)
        places_of: list[str] = [""] * len(passage_ids)
        for name, item in self.loaded.items():
            places = np.minimum(np.searchsorted(item.ids, passage_ids), max(len(item.ids) - 1, 0))
            here = np.flatnonzero(item.ids[places] == passage_ids) if len(item.ids) else np.zeros(0, np.int64)
            if len(here):
                found = item.passage_articles.take(pa.array(places[here])).to_pylist()
                for row, article_id in zip(here.tolist(), found):
                    owners[row], places_of[row] = article_id, name
        return owners, places_of

    def articles(
        self, article_ids: Iterable[str], columns: Sequence[str], segments: Iterable[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The live articles of these ids, each a dict of ``article_id`` and ``columns``, from the segments named
        (all by default). Each segment's ids are looked up in its memory-mapped lookup file and only the row groups
        holding them are read, so a lookup of a few articles costs the same whatever the archive's size."""
        wanted = pa.array(list(dict.fromkeys(article_ids)), pa.string())
        for name in (self.paths if segments is None else segments) if len(wanted) else ():
            item, dead = self.loaded[name], self.deleted_articles[name]
            for table in item.read_articles(item.article_rows(wanted), ["article_id", *columns]):
                yield from (row for row in table.to_pylist() if row["article_id"] not in dead)

    def article_texts(self, by_segment: dict[str, list[str]]) -> Iterator[tuple[str, str, str | None]]:
        """(article_id, body, language) of these live articles, read from the segments named: a few kilobytes of
        compressed bodies around each (:meth:`indexer.storage.segment.Loaded.bodies`)."""
        for name, article_ids in by_segment.items():
            item, dead = self.loaded[name], self.deleted_articles[name]
            rows = item.article_rows(pa.array(article_ids, pa.string()))
            found = item.article_lookup.arrow_column("article_id").take(pa.array(rows)).to_pylist()
            for article_id, (body, language) in zip(found, item.bodies(rows)):
                if article_id not in dead:
                    yield article_id, body, language

    def locate(self, article_ids: Iterable[str]) -> list[tuple[str, str, np.ndarray]]:
        """(article_id, segment, its passages' ids in order) of each of these articles that is live here."""
        wanted = pa.array(list(dict.fromkeys(article_ids)), pa.string())
        found = []
        for name, item in self.loaded.items() if len(wanted) else ():
            rows = item.article_rows(wanted)
            if not len(rows):
                continue
            here = item.article_lookup.arrow_column("article_id").take(pa.array(rows))
            places = pc.indices_nonzero(pc.is_in(item.passage_articles, value_set=here)).to_numpy()
            owners = np.array(item.passage_articles.take(pa.array(places)).to_pylist(), dtype=object)
            for article_id in here.to_pylist():
                if article_id not in self.deleted_articles[name]:
                    found.append((article_id, name, item.ids[places[owners == article_id]]))
        return found

    def hits(self, passage_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The passages with these ids, with their articles' fields (:data:`indexer.storage.store.HIT_COLUMNS`), by id.

        Read from the segments' memory-mapped lookup files: a search's few passages cost a few slices, where a
        query of the Parquet files would scan row groups of every segment.
        """
        wanted = np.asarray(passage_ids, dtype=np.int64)
        found: dict[int, dict[str, Any]] = {}
        for name, item in self.loaded.items():
            places = np.searchsorted(item.ids, wanted)
            inside = places < len(item.ids)
            here = np.zeros(len(wanted), dtype=bool)
            here[inside] = item.ids[places[inside]] == wanted[inside]
            here &= ~np.isin(wanted, self.deleted[name])
            if not here.any():
                continue
            passages = item.passages.take(places[here])
            rows, articles = item.articles
            article_rows = articles.take([rows[p["article_id"]] for p in passages])
            for passage, article in zip(passages, article_rows):
                hit = {
                    **article,
                    **passage,
                    "story_id": self.story_of.get(passage["article_id"], passage["article_id"]),
                }
                found[passage["passage_id"]] = {column: hit[column] for column in HIT_COLUMNS}
        return found

    @property
    def commit(self) -> int:
        return self.manifest.commit

    def is_current(self) -> bool:
        """Whether this is still the index's current commit."""
        try:
            return Manifest.read(self.directory).commit == self.manifest.commit
        except Exception:  # noqa: BLE001 -- a manifest being replaced or gone: not this commit
            return False

    @functools.cached_property
    def stories(self) -> dict[str, tuple[str, ...]]:
        """story_id -> article ids of the stories told by several articles, the story's first article first and the
        others in no set order; from the commit's stories file, read once: searches look them up. (A DuckDB query
        over the duplicates ran out of a search process's memory at 3M passages.)"""
        members: dict[str, list[str]] = {}
        for article_id, story_id in self.story_of.items():
            members.setdefault(story_id, [story_id]).append(article_id)
        return {story_id: tuple(ids) for story_id, ids in members.items()}

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
