"""The one writer of an index: new segments, tombstones, commits and merges, behind the directory's lock.

::

    with Writer(directory) as writer:
        writer.start(settings)                            # for a new index; an existing one keeps its own
        writer.delete(["wire-1"])                         # tombstones
        writer.add(articles, languages, passages, vectors)  # a new segment (an article already there is replaced)
    # committed on leaving the block, then small segments merged if that is cheap; nothing on an exception

Indexing, ``remove``, ``sql --write``, the upgrade from older formats and ``optimize`` all write through it.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from indexer.errors import EditRefused, NewsarchiveError, NotAnIndex
from indexer.reading.article import Article
from indexer.storage import catalog, duplicates, layout, merges, segment, stories, tables, upgrade
from indexer.storage.check import check_snapshot
from indexer.storage.manifest import AUTO, READABLE, UPGRADABLE_FROM, Manifest, SegmentEntry
from indexer.storage.snapshot import Snapshot
from indexer.text.passages import Passage

SEGMENT_PASSAGES = 100_000  # a segment being written is closed at this size, so a large build's memory stays flat
MAPPED_BELOW = 10_000  # new passages: fewer look up their near-copies in memory-mapped vector indexes, unread
WRITE_CACHE = "1GB"  # DuckDB's memory in a writer: merges sort articles, and spill what does not fit
STORIES_SCHEMA = pa.schema([("article_id", pa.string()), ("story_id", pa.string())])


@dataclass(frozen=True)
class Settings:
    """What an index is built with; an update must keep them (see :mod:`indexer.ingest.index`)."""

    model: str
    dimension: int
    query_prompt: str
    passage_prompt: str
    max_tokens: int
    precision: str
    vector_index: str = AUTO
    backend: str = ""

    @classmethod
    def of(cls, manifest: Manifest) -> Settings:
        return cls(**{f.name: getattr(manifest, f.name) for f in dataclasses.fields(cls)})


class Writer:
    """Holds the lock of the index in ``directory`` and writes its next commits.

    Args:
        directory: The index directory: an index, an empty folder, or none (created).
        rebuild: Start from an empty index: the next commit holds only what is added now.

    Raises:
        IndexBusy: Another process is writing the index.
        NotAnIndex: ``directory`` is a file, or a folder holding other things than an index; nothing is created
            in it (a writer removes what no commit names, so it must not take someone's files for its debris).
    """

    def __init__(self, directory: Path, rebuild: bool = False) -> None:
        self.directory = directory
        self.rebuild = rebuild
        _refuse_foreign(directory)
        self._lock = layout.locked(directory)
        self._lock.__enter__()
        try:
            self._open()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise

    def _open(self) -> None:
        rebuild = self.rebuild
        self._snapshot: Snapshot | None = None
        self._sketches = duplicates.Sketches()  # of the articles met looking for duplicates, for later commits
        self._pending: tuple[str, Path, segment.SegmentWriter] | None = None
        self._staged: list[tuple[SegmentEntry, Path]] = []
        self._reset(None)
        if not (self.directory / layout.MANIFEST).exists():
            return
        found = Manifest.read(self.directory)
        if found.schema_version in UPGRADABLE_FROM and not rebuild:
            self._upgrade(found)
            found = Manifest.read(self.directory)
        if found.schema_version not in READABLE and not rebuild:
            Manifest.load(self.directory)  # the message for a format it cannot upgrade
        self._reset(found if found.schema_version in READABLE else None)
        self.rebuild = rebuild
        self._changed = rebuild
        self._clean()
        if rebuild:
            self.settings = None

    def _upgrade(self, old: Manifest) -> None:
        """Commit ``old``'s generation, of an earlier format, as the first segment (:mod:`.upgrade`)."""
        entry, path, self._next_passage = upgrade.convert(self.directory, old, self._segment_name())
        self.settings = Settings.of(dataclasses.replace(old, vector_index=old.vector_index or "auto"))
        self._staged.append((entry, path))
        self._changed = True
        # Stories are found again from the vectors (format 3 had none); the old pairs are kept, made by hand or not.
        self._new_ids.append(np.load(path / segment.IDS))
        self.commit()

    # reading what is there

    @property
    def snapshot(self) -> Snapshot | None:
        """The commit this writer started from (``None`` for a new index or a rebuild)."""
        if self._snapshot is None and self.base is not None and not self.rebuild:
            self._snapshot = Snapshot(self.directory, self.base, memory_limit=WRITE_CACHE)
        return self._snapshot

    def known(self, article_ids: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
        """article_id -> (content hash, path) of the articles in the commit this writer started from: all of
        them, or those of ``article_ids`` that are there (what a small update asks, whatever the archive's size)."""
        if self.snapshot is None:
            return {}
        if article_ids is not None:
            wanted = list(dict.fromkeys(article_ids))
            if self._known is None:  # asked once: ingest asks before add() does, for the same articles
                new = [a for a in wanted if a not in self._looked_up]
                found = {row["article_id"]: (row["content_hash"], row["path"]) for row in self._sources(new)}
                self._looked_up.update({a: found.get(a) for a in new})
                return {a: self._looked_up[a] for a in wanted if self._looked_up[a] is not None}
            return {a: self._known[a] for a in wanted if a in self._known}
        if self._known is None:
            self._known = self.snapshot.store.article_sources()
        return self._known

    def _sources(self, article_ids: list[str]) -> Iterable[dict]:
        return self.snapshot.articles(article_ids, ["content_hash", "path"]) if article_ids else ()

    def table(self, name: str) -> pa.Table:
        """State table ``name`` (:mod:`indexer.storage.tables`) as this writer will commit it."""
        if name in self._tables:
            return self._tables[name]
        return tables.read(self.directory, self.base.tables if self.base else {}, name)

    # changes

    def set_table(self, name: str, table: pa.Table) -> None:
        """Replace state table ``name`` in the next commit."""
        self._tables[name] = table.select(tables.SCHEMAS[name].names).cast(tables.SCHEMAS[name])
        self._changed = True

    def start(self, settings: Settings) -> None:
        """Set what a new index (or a rebuild) is built with; an existing index keeps its own but ``backend``."""
        if self.settings is None or self.rebuild:
            self.settings = settings
        else:
            self.settings = dataclasses.replace(self.settings, backend=settings.backend or self.settings.backend)
        if self.base is None or self.rebuild or settings.vector_index != self.base.vector_index:
            self.settings = dataclasses.replace(self.settings, vector_index=settings.vector_index)
            self._changed = self._changed or (self.base is not None and settings.vector_index != self.base.vector_index)

    def delete(self, article_ids: Sequence[str]) -> None:
        """Tombstone these articles and their passages.

        Raises:
            NewsarchiveError: An id is in no segment of the commit this writer started from.
        """
        article_ids = [a for a in dict.fromkeys(article_ids) if a not in self._deleted]
        if not article_ids:
            return
        found = self._locate(article_ids)
        missing = sorted(set(article_ids) - {article_id for article_id, _, _ in found})
        if missing:
            raise NewsarchiveError(f"not in {self.directory}/: {', '.join(map(repr, missing))}")
        for article_id, name, passage_ids in found:
            self._tombstones.setdefault(name, []).append((article_id, passage_ids))
        self._deleted |= set(article_ids)
        self._sketches.forget(article_ids)
        self._changed = True

    def add(
        self,
        articles: list[Article],
        languages: list[str | None],
        passages: list[Passage],
        vectors: np.ndarray,
    ) -> list[int]:
        """Add articles (each with its language) and their passages with their vectors; an article already in the
        index is replaced. Returns the new passages' ids, in order."""
        if self.settings is None:
            raise NewsarchiveError("internal: Writer.start() must come before add() on a new index")
        repeated = self._added & {a.article_id for a in articles}
        if repeated:
            raise NewsarchiveError(f"articles given twice in one write: {', '.join(sorted(repeated))}")
        known = self.known(a.article_id for a in articles)
        self.delete([a.article_id for a in articles if a.article_id in known])
        self._added |= {a.article_id for a in articles}
        ids = np.arange(self._next_passage, self._next_passage + len(passages), dtype=np.int64)
        self._next_passage += len(passages)
        if self._pending is None:
            self._new_segment()
        titles = {a.article_id: a.title for a in articles}
        self._pending[2].add(
            segment.article_table(articles, languages), segment.passage_table(ids, passages, vectors), vectors, titles
        )
        self._new_ids.append(ids)
        self._changed = True
        if self._pending[2].passages >= SEGMENT_PASSAGES:
            self._close_pending()
        return ids.tolist()

    def add_rows(self, articles: pa.Table, passages: pa.Table) -> None:
        """Add articles and passages as rows of the public tables (``sql --write``): their passage ids and vectors
        are kept, and the articles' old versions tombstoned. Duplicate stories are not looked for again."""
        article_ids = articles.column("article_id").to_pylist()
        known = self.known(article_ids)
        self.delete([a for a in article_ids if a in known])
        self._added |= set(article_ids)
        self._close_pending()
        self._new_segment()
        writer = self._pending[2]
        passages = passages.sort_by("passage_id")
        vectors = passages.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        titles = dict(zip(articles.column("article_id").to_pylist(), articles.column("title").to_pylist()))
        writer.add(articles, passages, vectors.reshape(passages.num_rows, self.settings.dimension), titles)
        self._close_pending()
        if passages.num_rows:
            self._next_passage = max(self._next_passage, int(passages.column("passage_id").to_numpy().max()) + 1)
        self._changed = True

    def pair(self, pairs: list[tuple[str, str, str, float]]) -> None:
        """Record pairs of articles as one story (or, of kind ``separated``, as not), besides those found."""
        if pairs:
            self._pairs += pairs
            self._changed = True

    # committing

    def commit(self, verify: bool = False) -> Manifest | None:
        """Make what was written the index's current commit; returns it, or ``None`` when nothing changed.

        Args:
            verify: First check the draft commit as ``newsarchive check`` does (:func:`.check.check_snapshot`: the
                segments it writes or tombstones, and the tables as a whole), for changes made by hand (``sql
                --write``), which no indexing code vouches for.

        Raises:
            EditRefused: With ``verify``, the check found problems; nothing is committed.
        """
        if not self._changed:
            return None
        if self._pairs and self._pending is None and not self._staged:
            self._new_segment()  # an empty segment to hold the pairs
        self._close_pending()
        base_segments = self.base.segments if self.base and not self.rebuild else ()
        entries = [self._with_tombstones(entry) for entry in base_segments]
        entries = [entry for entry in entries if not self._all_dead(entry)]
        total = sum(entry.live for entry in entries) + sum(entry.passages for entry, _ in self._staged)
        paths = [path for _, path in self._staged]  # each index's kind fits the archive the commit makes
        kinds = segment.build_vector_indexes(paths, self.settings.vector_index, self.settings.dimension, total)
        self._staged = [
            (dataclasses.replace(entry, index_type=kind), path) for (entry, path), kind in zip(self._staged, kinds)
        ]
        entries += [entry for entry, _ in self._staged]
        staged = {entry.name: path for entry, path in self._staged}
        new_ids = np.concatenate(self._new_ids) if self._new_ids else np.zeros(0, dtype=np.int64)
        draft = self._manifest(entries, self.base.stories if self.base and not self.rebuild else "")
        stories = self._find_duplicates(draft, staged, new_ids)
        draft = dataclasses.replace(draft, stories=stories, tables=self._write_tables(draft))
        if verify:
            self._verify(draft, staged)
        manifest = self._publish(draft, staged)
        self._reset(manifest)
        self.merge(merges.automatic(manifest.segments, len(new_ids)), len(new_ids))
        return manifest

    def merge(self, runs: list[list[SegmentEntry]], written: int = 0) -> None:
        """Merge each run of adjacent segments into one, a commit each, then those :func:`.merges.automatic` asks
        for after a commit that wrote ``written`` passages (:mod:`indexer.storage.merges`)."""
        while runs:
            manifest = self.base
            snapshot = Snapshot(self.directory, manifest, memory_limit=WRITE_CACHE)
            try:
                name = self._segment_name()
                path = layout.staging_directory(self.directory, name)
                merged = merges.merge(snapshot, runs[0], name, path, manifest.vector_index)
            finally:
                snapshot.close()
            names = {entry.name for entry in runs[0]}
            first = next(i for i, entry in enumerate(manifest.segments) if entry.name in names)
            kept = [entry for entry in manifest.segments if entry.name not in names]
            entries = [*kept[:first], merged, *kept[first:]]
            manifest = self._publish(self._manifest(entries, manifest.stories), {name: path})
            self._reset(manifest)
            runs = runs[1:] or merges.automatic(manifest.segments, written)

    def optimize(self, force: bool = False) -> None:
        """Merge every segment into one, dropping tombstoned rows; ``force`` also when there is one already, to
        build its vector index again (of a new kind)."""
        if self._changed:
            self.commit()
        if self.base is not None:
            self.merge(merges.everything(self.base.segments, force))

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None
        if self._pending is not None:
            shutil.rmtree(self._pending[1], ignore_errors=True)
        for _, path in self._staged:
            shutil.rmtree(path, ignore_errors=True)
        self._lock.__exit__(None, None, None)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        try:
            if kind is None:
                self.commit()
        finally:
            self.close()

    # the parts of a commit

    def _segment_name(self) -> str:
        name = f"{self._next_segment:06d}"
        self._next_segment += 1
        return name

    def _new_segment(self) -> None:
        name = self._segment_name()
        path = layout.staging_directory(self.directory, name)
        self._pending = (name, path, segment.SegmentWriter(path, self.settings.dimension))

    def _close_pending(self) -> None:
        if self._pending is None:
            return
        name, path, writer = self._pending
        writer.finish()
        segment.write_duplicates(path, [])  # until the commit finds them
        self._staged.append((SegmentEntry(name, writer.articles, writer.passages, index_type=""), path))
        self._pending = None

    def _locate(self, article_ids: Sequence[str]) -> list[tuple[str, str, np.ndarray]]:
        """(article_id, segment, passage ids) of these articles, where they are live."""
        return self.snapshot.locate(article_ids) if self.snapshot is not None else []

    def _with_tombstones(self, entry: SegmentEntry) -> SegmentEntry:
        """``entry`` with this writer's new tombstones for it, written with its old ones to a new file."""
        if entry.name not in self._tombstones:
            return entry
        path = self.directory / layout.SEGMENTS / entry.name
        old = segment.TOMBSTONE_SCHEMA.empty_table()
        if entry.tombstones:
            old = pq.ParquetFile(path / entry.tombstones).read()
        articles, passages = old.column("article_id").to_pylist(), [old.column("passage_id").to_numpy()]
        for article_id, ids in self._tombstones[entry.name]:
            ids = ids if len(ids) else np.array([-1], dtype=np.int64)  # an article without passages
            articles += [article_id] * len(ids)
            passages.append(ids)
        passage_ids = np.concatenate(passages).astype(np.int64)
        name = f"deleted-{self._commit_number():06d}.parquet"
        segment.write_tombstones(path / name, articles, passage_ids)
        dead = int((np.unique(passage_ids) >= 0).sum())
        return dataclasses.replace(entry, tombstones=name, deleted=dead, deleted_articles=len(set(articles)))

    def _all_dead(self, entry: SegmentEntry) -> bool:
        """Whether every row of a segment is tombstoned and it holds no pairs: it can leave the commit."""
        if not entry.articles or entry.deleted_articles < entry.articles or entry.deleted < entry.passages:
            return False
        pairs = self.directory / layout.SEGMENTS / entry.name / segment.DUPLICATES
        return pq.ParquetFile(pairs).metadata.num_rows == 0

    def _commit_number(self) -> int:
        return (self.base.commit if self.base else 0) + 1

    def _manifest(self, entries: list[SegmentEntry], stories: str) -> Manifest:
        s = self.settings
        largest = max(entries, key=lambda entry: entry.live, default=None)
        return Manifest(
            model=s.model,
            dimension=s.dimension,
            query_prompt=s.query_prompt,
            passage_prompt=s.passage_prompt,
            max_tokens=s.max_tokens,
            articles=sum(entry.articles - entry.deleted_articles for entry in entries),
            passages=sum(entry.live for entry in entries),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            index_type=largest.index_type if largest else "Flat",
            precision=s.precision,
            vector_index=s.vector_index,
            backend=s.backend,
            commit=self._commit_number(),
            segments=tuple(entries),
            stories=stories,
            tables=dict(self.base.tables) if self.base else {},  # a rebuild keeps them: they are not articles
            next_passage_id=self._next_passage,
            next_segment=self._next_segment,
        )

    def _find_duplicates(self, draft: Manifest, staged: dict[str, Path], new_ids: np.ndarray) -> str:
        """Find the new passages' duplicate stories, store them with the newest segment, and return the commit's
        stories file (the previous one when no story changed)."""
        if not len(new_ids) and not self._tombstones and not self._pairs:
            return draft.stories
        few = len(new_ids) < MAPPED_BELOW
        working = Snapshot(self.directory, draft, staged, memory_limit=WRITE_CACHE, mapped_vectors=few)
        try:
            pairs = duplicates.find(working, new_ids.tolist(), self._sketches) if len(new_ids) else []
            pairs += self._pairs
            ends = {a for pair in pairs for a in pair[:2]}
            hashes = {row["article_id"]: row["content_hash"] for row in working.articles(ends, ["content_hash"])}
            story_of = stories.updated(working, working.story_of, pairs, self._added | self._deleted)
        finally:
            working.close()
        if pairs:
            rows = [(a, b, kind, sim, hashes[a], hashes[b]) for a, b, kind, sim in pairs]
            segment.write_duplicates(self._staged[-1][1], rows)
        if story_of == working.story_of:
            return draft.stories
        name = f"{draft.commit:06d}.parquet"
        (self.directory / layout.STORIES).mkdir(exist_ok=True)
        table = pa.table({"article_id": list(story_of), "story_id": list(story_of.values())}, schema=STORIES_SCHEMA)
        pq.write_table(table, self.directory / layout.STORIES / name)
        return name

    def _write_tables(self, draft: Manifest) -> dict[str, str]:
        """The state tables' files of the commit: those changed written again, the others kept."""
        files = dict(self.base.tables) if self.base else {}
        for name, table in self._tables.items():
            files[name] = tables.file_name(name, draft.commit)
            tables.write(self.directory, files[name], name, table)
        return files

    def _verify(self, draft: Manifest, staged: dict[str, Path]) -> None:
        """Refuse a draft commit that ``check`` would find fault with: before it is published, nothing is lost."""
        written = set(staged) | set(self._tombstones)  # the segments this commit wrote, or wrote tombstones for
        with Snapshot(self.directory, draft, staged, memory_limit=WRITE_CACHE) as working:
            problems = check_snapshot(working, written)
        if problems:
            raise EditRefused(f"not written, it would break the index: {'; '.join(problems)}")

    def _publish(self, manifest: Manifest, staged: dict[str, Path]) -> Manifest:
        """Make ``manifest`` current: staged segments renamed into place, then one atomic rename of the manifest."""
        for name, path in staged.items():
            layout.sync_tree(path)
            path.rename(self.directory / layout.SEGMENTS / name)
        for entry in manifest.segments:
            if entry.tombstones:
                layout.sync(self.directory / layout.SEGMENTS / entry.name / entry.tombstones)
        if manifest.stories:
            layout.sync(self.directory / layout.STORIES / manifest.stories)
        for file in manifest.tables.values():
            layout.sync(tables.path(self.directory, file))
        (self.directory / layout.SEGMENTS).mkdir(exist_ok=True)  # a commit of feeds alone has no segment
        layout.sync(self.directory / layout.SEGMENTS)
        commits = self.directory / layout.COMMITS
        commits.mkdir(exist_ok=True)
        layout.write_atomically(commits / f"{manifest.commit:06d}.json", manifest.to_json())
        layout.write_atomically(self.directory / layout.MANIFEST, manifest.to_json())  # the commit point
        catalog.write(self.directory, manifest)
        self._staged = [(entry, path) for entry, path in self._staged if entry.name not in staged]
        self._clean(manifest)
        return manifest

    def _reset(self, manifest: Manifest | None) -> None:
        """Start over from ``manifest``'s commit: nothing written since."""
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None
        self.base, self.rebuild = manifest, False
        self.settings = Settings.of(manifest) if manifest else None
        self._tombstones: dict[str, list[tuple[str, np.ndarray]]] = {}
        self._new_ids: list[np.ndarray] = []
        self._added: set[str] = set()
        self._deleted: set[str] = set()
        self._pairs: list[tuple[str, str, str, float]] = []
        self._tables: dict[str, pa.Table] = {}
        self._known: dict[str, tuple[str, str]] | None = None
        self._looked_up: dict[str, tuple[str, str] | None] = {}
        self._changed = False
        self._next_passage = manifest.next_passage_id if manifest else 1
        self._next_segment = manifest.next_segment if manifest else 1

    def _clean(self, current: Manifest | None = None) -> None:
        """Remove what no retained commit names (and what dead writers left); refresh a stale ``archive.duckdb``."""
        commits = (
            sorted((self.directory / layout.COMMITS).glob("*.json"))
            if (self.directory / layout.COMMITS).is_dir()
            else []
        )
        expired = layout.expired(commits)
        retained = [Manifest.parse(path.read_bytes()) for path in commits if path not in expired]
        current = current or self.base
        if current is None:
            return
        referenced = []
        for manifest in [*retained, current]:
            for entry in manifest.segments:
                folder = self.directory / layout.SEGMENTS / entry.name
                referenced.append(folder)
                if entry.tombstones:
                    referenced.append(folder / entry.tombstones)
            if manifest.stories:
                referenced.append(self.directory / layout.STORIES / manifest.stories)
            referenced += [tables.path(self.directory, file) for file in manifest.tables.values()]
        layout.remove_unreferenced(self.directory, referenced, expired)
        if catalog.described(self.directory) != (current.commit, str(self.directory.resolve())):
            catalog.write(self.directory, current)


def _refuse_foreign(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise NotAnIndex(f"{directory} is a file, not an index folder: give --index-dir a folder")
    strange = layout.foreign(directory)
    if strange:
        shown = ", ".join(strange[:3]) + (f" and {len(strange) - 3} more" if len(strange) > 3 else "")
        raise NotAnIndex(
            f"{directory}/ is not empty and holds no newsarchive index ({shown}): give --index-dir an empty or new "
            "folder; nothing was changed in it"
        )
