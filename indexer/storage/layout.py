"""Where an index's files are, how they reach the disk, and which of them are still needed.

::

    archive/
      manifest.json                      the current commit: settings, counts, live segments and their tombstones
      archive.duckdb                     views over the current commit's Parquet files, for any DuckDB client
      commits/000007.json                recent commits, kept for readers that pinned one (RETAIN_SECONDS)
      stories/000007.parquet             article_id -> story_id of articles in a story of several (per commit)
      tables/feeds-000007.parquet        the archive's state tables, as of commit 7 (indexer/storage/tables.py)
      segments/000012/                   one immutable segment (indexer/storage/segment.py)
      segments/000012/deleted-000007.parquet   the segment's tombstones as of commit 7
      segments/.staging-*/               a segment being written, or left by a run that died
      .lock                              held by the one process writing
      keys.json                          the API keys' hashes (indexer/service/keys.py), outside the DuckDB contract

Nothing a commit names is ever changed: a commit writes new files, then replaces ``manifest.json`` in one atomic
rename. A ``kill -9`` before the rename leaves the previous commit current; whatever the dead run wrote is removed
by the next writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from indexer.errors import IndexBusy

MANIFEST = "manifest.json"
CATALOG = "archive.duckdb"
COMMITS = "commits"
STORIES = "stories"
TABLES = "tables"
SEGMENTS = "segments"
LOCK = ".lock"
KEYS = "keys.json"
KEYS_LOCK = ".keys.lock"
STAGING_PREFIX = ".staging-"
PARTIAL = ".partial"
# Files of older commits stay this long, and those of the two latest always: a reader (a search, a user's DuckDB
# session on archive.duckdb) pinned to a commit keeps working while writers and merges go on.
RETAIN_SECONDS = 3600
RETAIN_COMMITS = 2
# The layout of format 4 and before: whole generations behind a link.
OLD_LAYOUT = ("current", "generations", "vectors.faiss", "lexical")
# What a writer leaves in a folder before the folder's first commit is complete (a first run killed): a folder
# holding only these, and no manifest, is an index being made. Files at the top; folders with what they may hold.
FIRST_RUN_FILES = (LOCK, MANIFEST + PARTIAL, KEYS, KEYS_LOCK)  # keys may be made before the first index
FIRST_RUN_FOLDERS = {
    SEGMENTS: re.compile(rf"(?:{re.escape(STAGING_PREFIX)})?\d+"),
    COMMITS: re.compile(r"\d+\.json(?:\.partial)?"),
    STORIES: re.compile(r"\d+\.parquet"),
    TABLES: re.compile(r"[a-z_]+-\d+\.parquet"),
}


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the index's writer lock; the OS releases it if the process dies.

    Raises:
        IndexBusy: Another process holds it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusy(
                f"{directory}/ is being written by another `newsarchive` process; try again when it ends"
            ) from None
        yield


def foreign(directory: Path) -> list[str]:
    """What in ``directory`` no newsarchive writer made, when it holds no index (of any format): the names a writer
    must not take for its own debris. Empty for an index, an empty or missing folder, or a first run's leftovers."""
    if not directory.is_dir() or (directory / MANIFEST).exists() or (directory / MANIFEST).is_symlink():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        if path.name in FIRST_RUN_FILES and path.is_file() and not path.is_symlink():
            continue
        pattern = FIRST_RUN_FOLDERS.get(path.name)
        if pattern is None or not path.is_dir() or path.is_symlink():
            found.append(path.name + ("/" if path.is_dir() else ""))
            continue
        found += [f"{path.name}/{inner.name}" for inner in sorted(path.iterdir()) if not pattern.fullmatch(inner.name)]
    return found


def staging_directory(directory: Path, name: str) -> Path:
    """A fresh directory to write a segment into before it is renamed to ``name``."""
    path = directory / SEGMENTS / f"{STAGING_PREFIX}{name}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file, flushed, and one rename: a reader sees the old file or the new."""
    partial = path.with_name(path.name + PARTIAL)
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    sync(path.parent)


def sync_tree(directory: Path) -> None:
    """Flush every file below ``directory`` to disk, so that a power cut cannot commit holes."""
    for root, _, files in os.walk(directory):
        for name in files:
            sync(Path(root) / name)
        sync(Path(root))


def sync(path: Path) -> None:
    """Flush one file, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_unreferenced(directory: Path, referenced: Iterable[Path], commits: Iterable[Path]) -> None:
    """Delete what no retained commit names: segments, tombstones and stories of old commits, staging left by dead
    runs, and the files of the layout before segments. Use while holding the lock."""
    keep = {path.resolve() for path in referenced}
    for commit in commits:
        commit.unlink(missing_ok=True)
    segments = directory / SEGMENTS
    for segment in segments.iterdir() if segments.is_dir() else ():
        if segment.resolve() not in keep:
            shutil.rmtree(segment, ignore_errors=True)
            continue
        for path in segment.glob("deleted-*.parquet"):
            if path.resolve() not in keep:
                path.unlink(missing_ok=True)
    for folder in (STORIES, TABLES):
        for path in (directory / folder).glob("*.parquet") if (directory / folder).is_dir() else ():
            if path.resolve() not in keep:
                path.unlink(missing_ok=True)
    for path in directory.glob("*" + PARTIAL):
        path.unlink(missing_ok=True)
    for name in OLD_LAYOUT:
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()


def expired(commit_files: list[Path], now: float | None = None) -> list[Path]:
    """The commit files no reader can still be pinned to: all but the newest ``RETAIN_COMMITS``, once the commit
    after each has been current for ``RETAIN_SECONDS``."""
    now = time.time() if now is None else now
    ordered = sorted(commit_files, key=lambda path: path.name)
    return [
        path
        for path, successor in zip(ordered[:-RETAIN_COMMITS], ordered[1:])
        if now - successor.stat().st_mtime > RETAIN_SECONDS
    ]


def size(path: Path) -> int:
    """Bytes taken by the files below ``path`` (or by the file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
