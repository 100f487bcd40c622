"""The pure-Python text work of a large build -- language detection, tokenizing -- spread over this machine's cores.

One Python process does such work one item at a time, however many cores there are; the model and FAISS already
use them all. Small jobs stay in this process: starting the workers costs about a second.

Workers are spawned, and a spawned process imports the program's main module again: only a program whose main
module allows it (``if __name__ == "__main__":``, as :mod:`multiprocessing` asks) turns them on, inside
:func:`enabled` -- the CLI does, a Streamlit app or a test runner that replaced its main module must not. Workers
that break anyway leave the work to this process: slower, never wrong.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

PARALLEL_FROM = 2_000  # passages: fewer are done here
Result = TypeVar("Result")


_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("workers", default=False)


@contextlib.contextmanager
def enabled(on: bool = True) -> Iterator[None]:
    """Let :func:`starmap` use worker processes inside this block (see the module docstring)."""
    token = _enabled.set(on)
    try:
        yield
    finally:
        _enabled.reset(token)


def starmap(function: Callable[..., Result], arguments: Sequence[tuple], passages: int) -> list[Result]:
    """``[function(*a) for a in arguments]``, in worker processes when they are :func:`enabled`, the job holds
    ``PARALLEL_FROM`` passages or more and there is more than one core. ``function`` must be importable (a module's
    top-level function)."""
    if not _parallel(passages) or len(arguments) < 2:
        return [function(*a) for a in arguments]
    cores = _cores()
    chunk = max(1, len(arguments) // (cores * 4))
    try:
        return list(_pool(cores).map(_apply, itertools.repeat(function), arguments, chunksize=chunk))
    except (BrokenProcessPool, OSError):  # workers that died or could not start: the work is done here
        _pool.cache_clear()
        return [function(*a) for a in arguments]


def submit(function: Callable[..., Result], arguments: tuple, passages: int) -> Callable[[], Result]:
    """``function(*arguments)`` started now in a worker process, as :func:`starmap` would, while this process goes
    on; the call returned gives its result. Otherwise (or if the workers break) it is computed here when asked."""
    here = functools.partial(function, *arguments)
    if not _parallel(passages):
        return here
    try:
        future = _pool(_cores()).submit(_apply, function, arguments)
    except (BrokenProcessPool, OSError, RuntimeError):  # RuntimeError: a pool shut down by a broken worker
        _pool.cache_clear()
        return here

    def result() -> Result:
        try:
            return future.result()
        except (BrokenProcessPool, OSError):
            _pool.cache_clear()
            return here()

    return result


def _parallel(passages: int) -> bool:
    """Whether a job of this many passages goes to worker processes: they are enabled, there is more than one core,
    and the job is worth their start."""
    return _enabled.get() and _cores() >= 2 and passages >= PARALLEL_FROM


def _apply(function: Callable[..., Result], arguments: tuple) -> Result:
    return function(*arguments)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _pool(workers: int) -> ProcessPoolExecutor:
    # Spawned, not forked: a fork copies onnxruntime's and FAISS's thread pools in whatever state they are.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
