"""The index directory, written by one :class:`Writer` and read through :class:`Snapshot` objects.

An index is a set of immutable segments (:mod:`.segment`) and a commit (:mod:`.manifest`) naming the live ones
and their tombstones; :mod:`.layout` says where each file is. Every change -- indexing, removing, ``sql --write``,
merges (:mod:`.merges`), the upgrade from older formats (:mod:`.upgrade`) -- is a commit made by the writer, which
alone touches the directory's files. :mod:`.catalog` turns a commit into DuckDB views, and :mod:`.check` verifies
one.
"""

from indexer.storage.manifest import AUTO, SCHEMA_VERSION, Manifest, SegmentEntry
from indexer.storage.snapshot import Snapshot
from indexer.storage.writer import Settings, Writer

__all__ = ["AUTO", "SCHEMA_VERSION", "Manifest", "SegmentEntry", "Settings", "Snapshot", "Writer"]
