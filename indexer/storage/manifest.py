"""The manifest: one commit of an index -- how it was built, what it holds, and its live segments -- in JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from indexer.errors import IndexMismatch, IndexNotFound
from indexer.storage import layout

# 2: passages.embedding; 3: language, lexical/; 4: author, stories; 5: segments; 6: float16; 7: vectors stored once;
# 8: the text looked up once (passages sliced from the bodies' blocks)
SCHEMA_VERSION = 8
# Segments of formats 5 and 6 keep a copy of their vectors (float32, float16), those of 7 a copy of the passages'
# text: read as they are; new ones have neither.
READABLE = (5, 6, 7, SCHEMA_VERSION)
UPGRADABLE_FROM = (3, 4)  # formats that `index` converts (indexer/storage/upgrade.py)
AUTO = "auto"  # vector_index: let each segment's size choose (indexer.indexes.vectors.factory_for)


@dataclass(frozen=True)
class SegmentEntry:
    """One live segment, as a commit sees it.

    Attributes:
        name: Its directory under ``segments/``.
        articles: Articles in it, tombstoned ones included.
        passages: Passages in it, tombstoned ones included.
        deleted: Its tombstoned passages.
        deleted_articles: Its tombstoned articles.
        tombstones: The file of its tombstones in this commit (``deleted-<commit>.parquet``), or ``""``.
        index_type: The kind of its vector index, as a FAISS factory string.
    """

    name: str
    articles: int
    passages: int
    deleted: int = 0
    deleted_articles: int = 0
    tombstones: str = ""
    index_type: str = "Flat"

    @property
    def live(self) -> int:
        """Passages not tombstoned."""
        return self.passages - self.deleted


@dataclass(frozen=True)
class Manifest:
    """One commit of an index: how it was built, and what it holds.

    Attributes:
        model: The sentence-transformers model name or path the passages were embedded with.
        dimension: Vector size.
        query_prompt: Text the model puts before queries.
        passage_prompt: Text the model put before passages.
        max_tokens: The passage budget in model tokens used when splitting.
        articles: Number of articles (live ones: tombstoned rows are not counted).
        passages: Number of passages (and vectors) that searches see.
        built_at: When the commit was written, ISO 8601 in UTC.
        index_type: The vector index kind of the largest segment, as a FAISS factory string (``Flat`` is exact).
        schema_version: The Parquet schema and directory layout version.
        precision: How the model ran: ``int8`` (ONNX) or ``fp32``; queries are embedded the same way.
        vector_index: The FAISS index kind asked for: ``auto`` (chosen by each segment's size, see
            :mod:`indexer.indexes.vectors`) or a factory string.
        backend: What ran the model for the passages last embedded: ``openvino``, ``onnx`` (onnxruntime) or
            ``torch``. A record, not a setting: every backend's vectors agree with fp32, so queries may run on another.
        commit: This commit's number; each commit's is one more than the one before.
        segments: The live segments, oldest first.
        stories: The file under ``stories/`` naming each article's story, or ``""`` when no story has two articles.
        tables: The file under ``tables/`` of each state table the commit has (:mod:`indexer.storage.tables`).
        next_passage_id: The id the next passage gets: ids are never reused, so a cited passage id stays meaningful.
        next_segment: The number the next segment gets.
    """

    model: str
    dimension: int
    query_prompt: str
    passage_prompt: str
    max_tokens: int
    articles: int
    passages: int
    built_at: str
    index_type: str
    schema_version: int = SCHEMA_VERSION
    precision: str = "fp32"
    vector_index: str = AUTO
    backend: str = ""
    commit: int = 0
    segments: tuple[SegmentEntry, ...] = field(default_factory=tuple)
    stories: str = ""
    tables: dict[str, str] = field(default_factory=dict)
    next_passage_id: int = 1
    next_segment: int = 1

    def to_json(self) -> bytes:
        return (json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        """Read the current commit of the index in ``directory``, or say plainly that there is none, or that it is
        of another format than this version's."""
        manifest = cls.read(directory)
        if manifest.schema_version not in READABLE:
            how = (
                "run `newsarchive index` on your articles once to upgrade it (without embedding it all again)"
                if manifest.schema_version in UPGRADABLE_FROM
                else "rebuild it with `newsarchive index --rebuild ...`"
            )
            raise IndexMismatch(
                f"{directory}/ uses index format {manifest.schema_version}, this newsarchive reads {SCHEMA_VERSION}: "
                + how
            )
        return manifest

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """:meth:`load` without the format check, for upgrading an index of an earlier format."""
        path = directory / layout.MANIFEST
        if not path.exists():
            raise IndexNotFound(f"no index in {directory}/: build one with `newsarchive index seeds/`")
        try:
            return cls.parse(path.read_bytes())
        except (ValueError, TypeError) as error:
            raise IndexMismatch(
                f"{path}: unreadable manifest ({error}); rebuild with `newsarchive index --rebuild ...`"
            ) from None

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        fields = json.loads(data)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in fields.items() if key in known}
        fields["segments"] = tuple(SegmentEntry(**entry) for entry in fields.get("segments", ()))
        return cls(**fields)


def exists(directory: Path) -> bool:
    """Whether ``directory`` holds an index (of any format)."""
    return (directory / layout.MANIFEST).exists()
