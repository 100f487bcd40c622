"""A process that answers many questions keeps the memory one frees for the next (indexer.retrieval.memory)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# A search's temporaries: ten arrays of 3.9 MB (below the size NumPy asks huge pages for) live at once, then freed;
# five rounds, and the page faults of the last four: each round faults every page in again unless freed memory is
# kept.
ROUNDS = """
import resource, sys
import numpy as np
from indexer.retrieval.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def one_round():
    arrays = [np.ones(3_900_000, dtype=np.uint8) for _ in range(10)]
    del arrays
one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    one_round()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(how: str) -> int:
    done = subprocess.run([sys.executable, "-c", ROUNDS, how], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    pages = 4 * 10 * 3_900_000 // 4096
    assert faults("default") > pages // 2  # given back and faulted in again each round
    assert faults("keep") < pages // 50  # reused
