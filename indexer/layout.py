"""The index directory: complete generations, switched by one atomic rename, and one writer at a time.

::

    archive/
      current -> generations/000007     the generation readers see; replaced by an atomic rename
      generations/000006/ 000007/        complete indexes: manifest.json, archive.duckdb, vectors.faiss, lexical/
      generations/.staging-*/            a generation being written (or left by a run that died)
      manifest.json, archive.duckdb, vectors.faiss, lexical -> current/...   stable paths for people and tools
      .lock                              held by the one process writing

A writer builds a new generation beside the current one and only then points ``current`` at it, so a reader (or a
``kill -9``) never meets a half-written index. The previous generation is kept for readers that resolved
``current`` just before the switch; older ones, and staging directories left by dead runs, are deleted by the next
writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import IndexBusy, IndexNotFound
from .manifest import DATABASE, LEXICAL, MANIFEST, VECTORS

CURRENT = "current"
GENERATIONS = "generations"
LOCK = ".lock"
STAGING_PREFIX = ".staging-"
KEEP = 2  # the current generation and the one before it
PUBLISHED = (MANIFEST, DATABASE, VECTORS, LEXICAL)


def current(directory: Path) -> Path | None:
    """The directory holding the index readers should open now, resolved once so that every file comes from it.

    That is the current generation; an index of the older flat layout is the directory itself (its manifest then
    names its old format); ``None`` means there is no index.
    """
    link = directory / CURRENT
    if link.exists():
        return Path(os.path.realpath(link))
    if (directory / MANIFEST).is_file() and not (directory / MANIFEST).is_symlink():
        return directory
    return None


def require_current(directory: Path) -> Path:
    """:func:`current`, or a clear error when there is no index."""
    found = current(directory)
    if found is None:
        raise IndexNotFound(f"no index in {directory}/: build one with `newsarchive index seeds/`")
    return found


@contextlib.contextmanager
def writing(directory: Path) -> Iterator[None]:
    """Hold the index's writer lock (released by the OS if the process dies), and clean what dead writers left."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusy(
                f"{directory}/ is being written by another `newsarchive` process; try again when it ends"
            ) from None
        _remove_leftovers(directory)
        yield


@contextlib.contextmanager
def staging(directory: Path) -> Iterator[Path]:
    """A fresh directory to write the next generation into, removed if the writing fails; use inside :func:`writing`."""
    generations = directory / GENERATIONS
    generations.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=generations))
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def publish(directory: Path, staged: Path) -> Path:
    """Make ``staged`` the current generation in one atomic step; returns its final path."""
    generations = directory / GENERATIONS
    number = max((int(p.name) for p in generations.iterdir() if p.name.isdigit()), default=0) + 1
    final = generations / f"{number:06d}"
    _sync(staged)
    os.rename(staged, final)
    link = directory / (CURRENT + ".new")
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(Path(GENERATIONS) / final.name)
    os.replace(link, directory / CURRENT)
    for name in PUBLISHED:
        _stable_link(directory, name)
    _fsync_directory(directory)
    _remove_old_generations(generations)
    return final


def _stable_link(directory: Path, name: str) -> None:
    path = directory / name
    target = Path(CURRENT) / name
    if path.is_symlink() and Path(os.readlink(path)) == target:
        return
    # An index directory of the older, flat layout holds real files here; the generation replaces them.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


def _remove_old_generations(generations: Path) -> None:
    numbered = sorted((p for p in generations.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    for old in numbered[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(directory: Path) -> None:
    generations = directory / GENERATIONS
    if generations.is_dir():
        for path in generations.iterdir():
            if path.name.startswith(STAGING_PREFIX):
                shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (directory / (CURRENT + ".new")).unlink()


def _sync(directory: Path) -> None:
    """Flush a generation's files to disk before it becomes current, so a power cut cannot publish holes."""
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_directory(Path(root))


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
