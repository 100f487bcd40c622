"""The manifest: what an index directory holds and how it was built, in ``manifest.json``."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import IndexMismatch, IndexNotFound

SCHEMA_VERSION = 4  # 2: passages.embedding; 3: passages.language, lexical/, generations; 4: author, stories
UPGRADABLE_FROM = (3,)  # versions that `index` upgrades in place (indexer/upgrade.py)
MANIFEST = "manifest.json"
DATABASE = "archive.duckdb"
VECTORS = "vectors.faiss"
LEXICAL = "lexical"
AUTO = "auto"  # vector_index: let the archive's size choose (indexer.vectors.factory_for)


@dataclass(frozen=True)
class Manifest:
    """How an index was built, and what it holds.

    Attributes:
        model: The sentence-transformers model name or path the passages were embedded with.
        dimension: Vector size.
        query_prompt: Text the model puts before queries.
        passage_prompt: Text the model put before passages.
        max_tokens: The passage budget in model tokens used when splitting.
        articles: Number of articles.
        passages: Number of passages (and vectors).
        built_at: When the index was last written, ISO 8601 in UTC.
        index_type: The FAISS index kind built, as an index factory string (``Flat`` is exact search).
        schema_version: The DuckDB schema and directory layout version.
        precision: How the model ran: ``int8`` (ONNX) or ``fp32``; queries are embedded the same way.
        vector_index: The FAISS index kind asked for: ``auto`` (chosen by size, see :mod:`indexer.vectors`) or a
            factory string.
        backend: What ran the model for the passages last embedded: ``openvino``, ``onnx`` (onnxruntime) or
            ``torch``. A record, not a setting: every backend's vectors agree with fp32, so queries may run on another.
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

    def save(self, directory: Path) -> None:
        """Write ``manifest.json`` through a temporary file and an atomic rename."""
        partial = directory / (MANIFEST + ".partial")
        partial.write_text(json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(partial, directory / MANIFEST)

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        """Read the manifest of the index in ``directory``, or say plainly that there is none, or that it is of
        another format than this version's."""
        manifest = cls.read(directory)
        if manifest.schema_version != SCHEMA_VERSION:
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
        path = directory / MANIFEST
        if not path.exists():
            raise IndexNotFound(f"no index in {directory}/: build one with `newsarchive index seeds/`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{key: value for key, value in data.items() if key in known})
        except (ValueError, TypeError) as error:
            raise IndexMismatch(
                f"{path}: unreadable manifest ({error}); rebuild with `newsarchive index --rebuild ...`"
            ) from None


def index_size(directory: Path) -> int:
    """Bytes taken by the index files in ``directory`` (one generation), lexical index included."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
