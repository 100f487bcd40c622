"""The passages' vectors read in place from ``passages.parquet``, memory-mapped: each vector is stored once.

A segment's ``embedding`` column is written unencoded and uncompressed, in data pages of version 2, so each page
holds its rows' float16 values one after the other, right after its repetition and definition levels. DuckDB reads
the column as any other (the public ``passages.embedding``); a search reads the rows it scores from the pages in
place, as from a file of vectors, once the page headers have said where each page's values begin.

pyarrow reads Parquet by row group, not by row, and does not say where pages begin; the few fields needed are read
here from the page headers (Thrift's compact protocol, as Parquet's specification defines it).
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

COLUMN = "embedding"
# How the file is written (besides the column's being uncompressed and PLAIN), so that the values lie in the file
# as a float16 array per page, whose header gives the length of the levels before them.
WRITE_OPTIONS = {"data_page_version": "2.0"}
_DATA_PAGE_V2 = 3


class ParquetVectors:
    """A segment's vectors as an array of ``(passages, dimension)`` float16 rows, read from its Parquet file.

    Indexing takes a row, a slice or an array of rows, as a NumPy array's would, and returns a new array.

    Raises:
        ValueError: The column is not written as this module reads it (a file of another writer).
    """

    def __init__(self, file: Path, dimension: int) -> None:
        self.dimension = dimension
        starts, offsets = _pages(file, dimension)
        self._starts = np.asarray(starts, dtype=np.int64)  # first row of each page, and one past the last row
        self._offsets = np.asarray(offsets, dtype=np.int64)  # byte where each page's values begin
        self.shape = (int(self._starts[-1]), dimension)
        self.dtype = np.dtype(np.float16)
        self._map, self._rows = None, None
        if self.shape[0]:
            with open(file, "rb") as opened:
                self._map = mmap.mmap(opened.fileno(), 0, access=mmap.ACCESS_READ)
            # A view whose row i is the vector's bytes from byte i: a page's values begin on any byte (float16 views
            # would need two, one per parity), and a gather of rows is then one fancy index, as in an array.
            raw, size = np.frombuffer(self._map, np.uint8), dimension * self.dtype.itemsize
            self._rows = np.lib.stride_tricks.as_strided(raw, (len(raw) - size + 1, size), (1, 1), writeable=False)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(rows, slice):
            return self[np.arange(len(self))[rows]]
        if np.ndim(rows) == 0:
            return self[np.asarray([rows])][0]
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0, self.dimension), dtype=self.dtype)
        if rows.min() < -len(self) or rows.max() >= len(self):
            raise IndexError(f"rows out of range for {len(self)} vectors")
        rows = np.where(rows < 0, rows + len(self), rows)
        pages = np.searchsorted(self._starts, rows, side="right") - 1
        at = self._offsets[pages] + (rows - self._starts[pages]) * self.dimension * self.dtype.itemsize
        return self._rows[at].view(self.dtype)

    def release(self) -> None:
        """Drop the pages read from this process's resident memory (they stay in the OS's page cache)."""
        if self._map is not None:
            self._map.madvise(mmap.MADV_DONTNEED)


def _pages(file: Path, dimension: int) -> tuple[list[int], list[int]]:
    """The first row of each page of the column (and the number of rows after them), and where its values begin."""
    metadata = pq.ParquetFile(file).metadata
    column = _column_index(metadata)
    starts, offsets, row = [], [], 0
    with open(file, "rb") as opened:
        for group in range(metadata.num_row_groups):
            chunk = metadata.row_group(group).column(column)
            if chunk.compression != "UNCOMPRESSED" or chunk.physical_type != "FIXED_LEN_BYTE_ARRAY":
                raise ValueError(f"{file}: {COLUMN} is {chunk.compression}, {chunk.physical_type}, not plain float16")
            position, end = chunk.data_page_offset, chunk.data_page_offset + chunk.total_compressed_size
            while position < end:
                header, page = _header(opened, position, end)
                if (
                    page["type"] != _DATA_PAGE_V2
                    or page["num_nulls"]
                    or page["num_values"] != page["num_rows"] * dimension
                ):
                    raise ValueError(f"{file}: a page of {COLUMN} at byte {position} is not a full page of version 2")
                starts.append(row)
                offsets.append(position + header.length + page["repetition_levels"] + page["definition_levels"])
                row += page["num_rows"]
                position += header.length + page["compressed_size"]
    return [*starts, row], offsets


def _header(opened, position: int, end: int) -> tuple[_Header, dict[str, int]]:
    size = 256  # a header with statistics of two float16 values takes a few dozen bytes
    while True:
        opened.seek(position)
        header = _Header(opened.read(min(size, end - position)))
        try:
            return header, header.page()
        except EOFError:
            if size >= end - position:
                raise ValueError(f"{opened.name}: the page header at byte {position} is cut short") from None
            size *= 16


def _column_index(metadata: pq.FileMetaData) -> int:
    paths = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    return next(i for i, path in enumerate(paths) if path.split(".")[0] == COLUMN)


class _Header:
    """The fields of a Parquet page header that locate its values (Thrift compact protocol)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.length = data, 0

    def page(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for field, kind in self._fields():
            if field in (1, 3) and kind == 5:
                found[{1: "type", 3: "compressed_size"}[field]] = self._int()
            elif field == 8 and kind == 12:
                names = {1: "num_values", 2: "num_nulls", 3: "num_rows", 5: "definition_levels", 6: "repetition_levels"}
                for inner, inner_kind in self._fields():
                    if inner in names and inner_kind == 5:
                        found[names[inner]] = self._int()
                    else:
                        self._skip(inner_kind)
            else:
                self._skip(kind)
        return found

    def _fields(self):
        last = 0
        while True:
            byte = self._byte()
            if byte == 0:
                return
            delta, kind = byte >> 4, byte & 0x0F
            last = last + delta if delta else self._int()
            yield last, kind

    def _byte(self) -> int:
        if self.length >= len(self.data):
            raise EOFError
        self.length += 1
        return self.data[self.length - 1]

    def _varint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self._byte()
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def _int(self) -> int:
        value = self._varint()
        return (value >> 1) ^ -(value & 1)  # zigzag

    def _skip(self, kind: int) -> None:
        if kind in (1, 2):  # booleans are in the type
            return
        if kind == 3:
            self.length += 1
        elif kind in (4, 5, 6):
            self._varint()
        elif kind == 7:
            self.length += 8
        elif kind == 8:
            size = self._varint()  # first: it moves self.length
            self.length += size
        elif kind in (9, 10):
            head = self._byte()
            size = head >> 4 if head >> 4 != 15 else self._varint()
            for _ in range(size):
                self._skip(3 if head & 0x0F in (1, 2) else head & 0x0F)  # a list's booleans take a byte each
        elif kind == 11:
            size = self._varint()
            kinds = self._byte() if size else 0
            for _ in range(size):
                self._skip(kinds >> 4)
                self._skip(kinds & 0x0F)
        elif kind == 12:
            for _, inner in self._fields():
                self._skip(inner)
        else:
            raise ValueError(f"a page header with an unknown Thrift type {kind}")
