"""Keeping the memory one search frees for the next, in a process that answers many.

A hybrid search over a large archive makes temporary arrays of megabytes (a score per passage, long posting lists
joined). glibc's malloc gives blocks that large back to the system when they are freed (an mmap of their own, or a
trimmed heap), so the next search faults their pages in again, 4 KiB at a time: at a million passages, 6,000 to
11,000 page faults a search, about half the time of the slowest question asked again. A process that answers
many questions (the app, `serve`, `mcp`, `eval`) asks malloc to keep them instead; a one-question command would
gain nothing.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
KEPT_BLOCK = 64 * 2**20  # blocks up to this size come from the heap and go back to it, not to the system
KEPT_FREE = 256 * 2**20  # free memory the heap keeps at its top before it gives any back


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to :data:`KEPT_BLOCK` for reuse, and up to :data:`KEPT_FREE`
    of free memory; the process then holds at most that much more than it uses. Returns whether it applied: not
    outside Linux, nor with a C library other than glibc."""
    if platform.libc_ver()[0] != "glibc":  # macOS, Windows, musl (whose mallopt does nothing)
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(M_MMAP_THRESHOLD, KEPT_BLOCK)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_FREE))
