"""Merging segments' BM25 term counts into one segment's files, streaming, in bounded memory.

A merged term's postings are each part's postings of it, one part after the other: parts are merged in order and
their kept rows keep their order, so the rows stay sorted. Terms are written a block at a time, and only the
block's postings are read: memory holds a block, never the merged counts (``optimize`` of a million passages held
9 GiB when they were merged in memory; bench/search.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

BLOCK = 1 << 22  # postings read at a time (about 100 MB of temporaries)
MAX_COUNT = 255  # times a token counts in one passage (stored in a byte)


class Bm25(Protocol):
    """What a merge reads of a segment's :class:`indexer.indexes.lexical.Bm25`."""

    vocabulary: dict[str, int]
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    lengths: np.ndarray


def write_merged(parts: Sequence[Bm25], keeps: Sequence[np.ndarray], directory: Path, name: str) -> None:
    """Write, as :meth:`Bm25.save` does, one index of the rows of ``parts`` that their ``keeps`` masks keep, in
    order, without tokenizing anything again."""
    from indexer.indexes.vectors import release_pages

    vocabulary: dict[str, int] = {}
    local_terms = []  # per part: the merged number of each of its terms
    for part in parts:
        tokens = sorted(part.vocabulary, key=part.vocabulary.__getitem__)
        numbers = (vocabulary.setdefault(token, len(vocabulary)) for token in tokens)
        local_terms.append(np.fromiter(numbers, np.int64, len(tokens)))
    # Per part: each merged term's own term number (-1: not there), and its kept rows' merged row numbers.
    terms_of = []
    for numbers in local_terms:
        own = np.full(len(vocabulary), -1, dtype=np.int64)
        own[numbers] = np.arange(len(numbers))
        terms_of.append(own)
    offsets = np.cumsum([0] + [int(np.count_nonzero(keep)) for keep in keeps])
    new_rows = [start + np.cumsum(keep) - 1 for keep, start in zip(keeps, offsets)]
    sizes = sum(_postings_sizes(part, own) for part, own in zip(parts, terms_of))
    (directory / f"{name}.vocabulary.json").write_text(json.dumps(list(vocabulary)), encoding="utf-8")
    indptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    with (
        _Npy(directory / f"{name}.indices.npy", np.int32) as indices,
        _Npy(directory / f"{name}.data.npy", np.uint8) as data,
    ):
        for first, last in _blocks(sizes):
            rows, counts, lengths = _block(parts, keeps, terms_of, new_rows, first, last)
            indices.write(rows)
            data.write(counts)
            indptr[first + 1 : last + 1] = lengths
            for part in parts:  # the parts' pages read for this block leave this process's memory
                release_pages(part.indices)
                release_pages(part.data)
    np.save(directory / f"{name}.indptr.npy", np.cumsum(indptr))
    lengths = [np.asarray(part.lengths)[keep] for part, keep in zip(parts, keeps)]
    np.save(directory / f"{name}.lengths.npy", np.concatenate(lengths or [np.zeros(0, np.float32)]).astype(np.float32))


def stored_counts(counts: np.ndarray) -> np.ndarray:
    """Term counts as a segment stores them, built or merged: a byte each, a count above :data:`MAX_COUNT` kept at
    it (BM25's saturation makes more count for nothing: 255 times a token weighs 0.99 of infinitely often). Segments
    written before store float32 counts, read as they are."""
    return np.minimum(counts, MAX_COUNT).astype(np.uint8)


def _postings_sizes(part: Bm25, own: np.ndarray) -> np.ndarray:
    """The length of each merged term's postings in ``part`` (tombstoned rows included)."""
    sizes = np.zeros(len(own), dtype=np.int64)
    present = own >= 0
    sizes[present] = part.indptr[own[present] + 1] - part.indptr[own[present]]
    return sizes


def _blocks(sizes: np.ndarray) -> list[tuple[int, int]]:
    """Runs of merged terms holding about :data:`BLOCK` postings each (a single larger term is a block alone)."""
    ends = np.cumsum(sizes)
    blocks, first = [], 0
    while first < len(sizes):
        last = int(np.searchsorted(ends, (ends[first - 1] if first else 0) + BLOCK, side="right"))
        last = max(last, first + 1)
        blocks.append((first, last))
        first = last
    return blocks


def _block(
    parts: Sequence[Bm25],
    keeps: Sequence[np.ndarray],
    terms_of: Sequence[np.ndarray],
    new_rows: Sequence[np.ndarray],
    first: int,
    last: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The merged postings of terms ``first`` to ``last``: rows and counts in term order, and each term's length."""
    terms, rows, counts = [], [], []
    for part, keep, own, renumbered in zip(parts, keeps, terms_of, new_rows):
        local = own[first:last]
        present = np.flatnonzero(local >= 0)
        starts, ends = part.indptr[local[present]], part.indptr[local[present] + 1]
        lengths = ends - starts
        # Every posting of these terms, read as one gather: each term's positions run from its start.
        places = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        found = np.asarray(part.indices[places])
        kept = keep[found]
        terms.append(np.repeat(present, lengths)[kept])
        rows.append(renumbered[found[kept]])
        counts.append(np.asarray(part.data[places])[kept])
    term = np.concatenate(terms)
    order = np.argsort(term, kind="stable")  # parts one after the other within a term: rows stay sorted
    lengths = np.bincount(term, minlength=last - first)
    return np.concatenate(rows)[order].astype(np.int32), stored_counts(np.concatenate(counts)[order]), lengths


class _Npy:
    """A one-dimensional ``.npy`` file written in pieces, its length put in its header at the end."""

    def __init__(self, path: Path, dtype: type) -> None:
        self.path, self.dtype, self.length = path, np.dtype(dtype), 0
        self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 -- closed by __exit__
        self._header_size = self._header(0)

    def _header(self, length: int) -> int:
        self.file.seek(0)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (length,)}
        np.lib.format.write_array_header_1_0(self.file, header)
        return self.file.tell()

    def write(self, values: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())
        self.length += len(values)

    def __enter__(self) -> _Npy:
        return self

    def __exit__(self, *exc: object) -> None:
        end = self.file.tell()
        # The header is padded to 64 bytes: any length up to 10^15 keeps its size, so the data stays in place.
        if self._header(self.length) != self._header_size:
            raise AssertionError(f"{self.path}: .npy header changed size")
        self.file.seek(end)
        self.file.close()
