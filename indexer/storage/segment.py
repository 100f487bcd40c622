"""One segment: the articles and passages of one write (or of a merge), never changed once committed.

::

    segments/000012/
      articles.parquet         the articles' columns but story_id (stories change; segments do not), by article_id
      passages.parquet         the passages' columns, by passage_id; embedding (float16) is read in place by
                               searches (indexer/storage/parquet_vectors.py)
      duplicates.parquet       pairs of articles found to be one story when this segment was written
      ids.npy                  the passage ids in order; segments of format 6 hold a copy of their vectors
                               (vectors.f16), of format 5 in float32 (vectors.f32)
      vectors.faiss            an approximate index, for a segment too large to search exactly (else built at load)
      lexical/                 BM25 term counts (indexer/indexes/lexical.py)
      language_sums.npz        the sum and count of its passages' vectors by language (indexer/models/centering.py)
      lookup/                  the columns a search shows (passages.arrow, articles.arrow), memory-mapped, and the
                               articles' bodies in compressed blocks of a few (body_blocks.arrow): duplicates are
                               compared on them, and a passage's text is its slice of its article's body (segments
                               of format 7 keep the passages' text in texts.arrow, the bodies in bodies.arrow)
      deleted-000007.parquet   (article_id, passage_id) of its tombstoned rows, as of commit 7

A passage id is in exactly one segment; segments' ids do not overlap, and a later segment's are greater.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from indexer.errors import NewsarchiveError
from indexer.reading.article import Article
from indexer.storage import parquet_vectors
from indexer.text.passages import Passage, embedding_text

ARTICLES = "articles.parquet"
PASSAGES = "passages.parquet"
DUPLICATES = "duplicates.parquet"
IDS = "ids.npy"
LOOKUP = "lookup"  # Arrow IPC copies of the columns a search shows, memory-mapped: a hit costs a slice, not a scan
# Half precision: cosines move by about 1e-4, and the vectors take half the disk. A search scores its candidates
# from passages.embedding itself (indexer.storage.parquet_vectors): each vector is stored once.
VECTOR_TYPE, VECTOR_ARROW_TYPE = np.float16, pa.float16()
# Segments of format 6 hold a second copy of their vectors, of format 5 in float32: read as they are.
VECTORS_BEFORE = {"vectors.f16": np.float16, "vectors.f32": np.float32}
FAISS = "vectors.faiss"
LEXICAL = "lexical"
# per language, the sum and count of the passages' vectors (indexer.models.centering)
LANGUAGE_SUMS = "language_sums.npz"
# Small row groups: a search fetches a few passages by id, and DuckDB reads whole row groups of the columns it needs.
PASSAGE_ROWS = 2048
ARTICLE_ROWS = 1024
# Of the Parquet files' columns (but the vectors) and the compressed lookups: zstd at its usual level (DuckDB's
# too), where articles.parquet takes 0.62 of what it takes with pyarrow's default (snappy) and 0.62 of that again
# (pyarrow's zstd is of level 1).
COMPRESSION, COMPRESSION_LEVEL = "zstd", 3
GROUPS_READ = 8  # row groups of articles read at once, when looking articles up by id

_TIME = pa.timestamp("us", tz="UTC")
ARTICLE_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("title", pa.string()),
        ("body", pa.string()),
        ("source", pa.string()),
        ("url", pa.string()),
        ("published", _TIME),
        ("language", pa.string()),
        ("author", pa.string()),
        ("path", pa.string()),
        ("content_hash", pa.string()),
        ("indexed_at", _TIME),
    ]
)
PASSAGE_COLUMNS = ("passage_id", "article_id", "seq", "paragraph", "heading", "text", "char_start", "char_end")
PASSAGE_COLUMNS += ("tokens", "language")
DUPLICATE_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("duplicate_id", pa.string()),
        ("kind", pa.string()),
        ("similarity", pa.float64()),
        ("article_hash", pa.string()),  # the versions paired: a pair dies with either version
        ("duplicate_hash", pa.string()),
    ]
)
TOMBSTONE_SCHEMA = pa.schema([("article_id", pa.string()), ("passage_id", pa.int64())])


def passage_schema(dimension: int) -> pa.Schema:
    types = {"passage_id": pa.int64(), "seq": pa.int32(), "paragraph": pa.int32()}
    types |= {"char_start": pa.int32(), "char_end": pa.int32(), "tokens": pa.int32()}
    fields = [(name, types.get(name, pa.string())) for name in PASSAGE_COLUMNS]
    return pa.schema([*fields, ("embedding", pa.list_(VECTOR_ARROW_TYPE, dimension))])


def passage_writer(path: Path, dimension: int) -> pq.ParquetWriter:
    """A writer of the segment's passages, with their vectors where a search can read them in place."""
    schema = passage_schema(dimension)
    others = [name for name in schema.names if name != parquet_vectors.COLUMN]
    return pq.ParquetWriter(
        path / PASSAGES,
        schema,
        compression={name: COMPRESSION for name in others} | {parquet_vectors.COLUMN: "none"},
        compression_level={name: COMPRESSION_LEVEL for name in others},
        use_dictionary=others,
        column_encoding={parquet_vectors.COLUMN: "PLAIN"},
        write_page_checksum=True,  # the vectors have no second copy to be checked against (`newsarchive check`)
        **parquet_vectors.WRITE_OPTIONS,
    )


def write_passages(batches: Iterable[pa.RecordBatch], path: Path, dimension: int) -> None:
    """Write passage rows (a merge's, from DuckDB, which has no float16) as the segment's Parquet file, streaming."""
    schema = passage_schema(dimension)
    with passage_writer(path, dimension) as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_batches([batch]).select(schema.names).cast(schema), PASSAGE_ROWS)


def article_table(articles: list[Article], languages: list[str | None]) -> pa.Table:
    now = datetime.now(timezone.utc)
    columns: dict[str, Any] = {name: [getattr(a, name, None) for a in articles] for name in ARTICLE_SCHEMA.names}
    columns |= {"article_id": [a.article_id for a in articles], "body": [a.text for a in articles]}
    columns |= {"language": list(languages), "indexed_at": [now] * len(articles)}
    return pa.table(columns, schema=ARTICLE_SCHEMA)


def passage_table(ids: np.ndarray, passages: list[Passage], vectors: np.ndarray) -> pa.Table:
    columns: dict[str, Any] = {"passage_id": ids}
    columns |= {name: [getattr(p, name) for p in passages] for name in PASSAGE_COLUMNS[1:]}
    flat = pa.array(np.ascontiguousarray(vectors, dtype=VECTOR_TYPE).reshape(-1))
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    return pa.table(columns, schema=passage_schema(vectors.shape[1]))


class SegmentWriter:
    """Writes one new segment's files into a staging directory, a batch at a time, so memory stays flat."""

    def __init__(self, path: Path, dimension: int) -> None:
        self.path, self.dimension = path, dimension
        self._passages = passage_writer(path, dimension)
        self._articles: list[pa.Table] = []
        self._ids: list[np.ndarray] = []
        self._lexical = _lexical_builder()
        self.articles = 0
        self.passages = 0

    def add(self, articles: pa.Table, passages: pa.Table, vectors: np.ndarray, titles: dict[str, str]) -> None:
        """Append articles and their passages (in passage id order, above every id written before)."""
        self._articles.append(articles)
        self._passages.write_table(passages, row_group_size=PASSAGE_ROWS)
        ids = passages.column("passage_id").to_numpy()
        self._ids.append(ids)
        columns = passages.select(["article_id", "heading", "text", "language"]).to_pydict()
        self._lexical.add(
            (int(i), embedding_text(titles[a], heading, text), language)
            for i, a, heading, text, language in zip(ids, *columns.values())
        )
        self.articles += articles.num_rows
        self.passages += len(ids)

    def finish(self) -> None:
        """Close the files and build the segment's lexical index (its vector index waits for the commit, which
        knows how large the archive will be)."""
        self._passages.close()
        articles = pa.concat_tables(self._articles) if self._articles else ARTICLE_SCHEMA.empty_table()
        articles = articles.sort_by("article_id")  # so that a lookup by id reads one row group
        pq.write_table(
            articles,
            self.path / ARTICLES,
            row_group_size=ARTICLE_ROWS,
            compression=COMPRESSION,
            compression_level=COMPRESSION_LEVEL,
        )
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)
        np.save(self.path / IDS, ids)
        self._lexical.build().save(self.path / LEXICAL)
        self._lexical = _lexical_builder()
        write_lookup(self.path)
        write_language_sums(self.path, self.dimension)


def _lexical_builder() -> Any:  # LexicalBuilder
    from indexer.indexes.lexical import LexicalBuilder  # when needed, as below: it loads SciPy and the tokenizers

    return LexicalBuilder()


HIT_PASSAGE_COLUMNS = ("passage_id", "article_id", "heading", "text", "char_start", "char_end", "paragraph", "language")
# language and author too: the few articles an exact query finds are counted from here (indexer.exact), not by
# a scan of every segment's Parquet file. Segments written before hold the first five only.
HIT_ARTICLE_COLUMNS = ("article_id", "title", "source", "published", "url", "language", "author")
# The bodies, compressed, read by row in blocks of a few rows: a lookup decompresses the few kilobytes around each
# row, where a Parquet row group is megabytes (a block's texts compressed together in one value, as Arrow
# decompressing a batch of its own took ten times as long). Duplicates are compared on them, and the passages a
# search shows are sliced from them: the text is kept once (a second copy of the passages' text cost 220 bytes a
# passage).
BODY_BLOCKS = Path(LOOKUP) / "body_blocks.arrow"
BODY_COLUMNS = ("body", "language")
BLOCK_ROWS = 16  # a hit decompresses its article's block: 16 bench articles take 50 us; 32, 80 us and 6% less disk
# Format 7 kept the bodies in Arrow's compressed batches and the passages' text in blocks of its own, of 32 rows
# (files of blocks since say how many rows a block holds): read so.
BODIES, TEXTS = Path(LOOKUP) / "bodies.arrow", Path(LOOKUP) / "texts.arrow"
COMPRESSED_ROWS = 32
_TEXT_BLOCKS = pa.schema([("texts", pa.binary()), ("ends", pa.list_(pa.uint32()))])
READ_ROWS = 65_536  # rows read at a time from a Parquet file, writing lookup files


def write_lookup(path: Path) -> None:
    """Write the segment's lookup files from its Parquet files, a row group at a time."""
    (path / LOOKUP).mkdir(exist_ok=True)
    shown = [column for column in HIT_PASSAGE_COLUMNS if column != "text"]
    for name, columns in (("passages", shown), ("articles", HIT_ARTICLE_COLUMNS)):
        source = pq.ParquetFile(path / f"{name}.parquet")
        schema = source.schema_arrow
        schema = pa.schema([schema.field(column) for column in columns])
        with pa.OSFile(str(path / LOOKUP / f"{name}.arrow"), "wb") as sink, pa.ipc.new_file(sink, schema) as out:
            for batch in source.iter_batches(columns=list(columns)):
                out.write_batch(batch.cast(schema) if batch.schema != schema else batch)
    write_blocks(path / ARTICLES, "body", path / BODY_BLOCKS)


def write_blocks(source_file: Path, column: str, target: Path) -> None:
    """Write a text column of a Parquet file in blocks of BLOCK_ROWS rows, a record batch each (a lookup reads its
    block alone): one row, its texts compressed together and where each ends in them."""
    codec = pa.Codec(COMPRESSION, COMPRESSION_LEVEL)
    texts: list[str] = []
    schema = _TEXT_BLOCKS.with_metadata({"rows": str(BLOCK_ROWS)})
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, schema) as out:
        batches = pq.ParquetFile(source_file).iter_batches(batch_size=READ_ROWS, columns=[column])
        for batch in itertools.chain(batches, [None]):
            texts += batch.column(0).to_pylist() if batch is not None else []
            whole = len(texts) if batch is None else len(texts) // BLOCK_ROWS * BLOCK_ROWS
            for start in range(0, whole, BLOCK_ROWS):
                encoded = [text.encode() for text in texts[start : start + BLOCK_ROWS]]
                block = pa.array([codec.compress(b"".join(encoded), asbytes=True)], pa.binary())
                ends = pa.array([np.cumsum([len(text) for text in encoded]).tolist()], _TEXT_BLOCKS.field(1).type)
                out.write_batch(pa.record_batch([block, ends], schema=schema))
            texts = texts[whole:]


def write_language_sums(path: Path, dimension: int) -> None:
    """Write the sum and count of the segment's passage vectors by language, from its stored vectors."""
    sums = language_sums(path, dimension)
    languages = sorted(sums)
    np.savez(
        path / LANGUAGE_SUMS,
        languages=np.asarray(languages, dtype=str),
        sums=np.asarray([sums[lang][0] for lang in languages], dtype=np.float64).reshape(-1, dimension),
        counts=np.asarray([sums[lang][1] for lang in languages], dtype=np.int64),
    )


def language_sums(path: Path, dimension: int) -> dict[str, tuple[np.ndarray, int]]:
    """language (``""`` if unknown) -> (sum of the segment's passage vectors in it, how many), tombstoned ones
    included: from its file, else (a segment written before there was one) from its stored vectors."""
    try:
        with np.load(path / LANGUAGE_SUMS) as saved:
            return {
                str(lang): (total, int(n)) for lang, total, n in zip(saved["languages"], saved["sums"], saved["counts"])
            }
    except FileNotFoundError:
        pass
    from indexer.indexes.lexical import LexicalIndex

    lexical = LexicalIndex.load(path / LEXICAL)
    ids, stored = np.load(path / IDS), stored_vectors(path, dimension)
    rows = np.searchsorted(ids, lexical.ids)  # the lexical rows' order need not be the vectors'
    languages = np.asarray([language or "" for language in lexical.languages], dtype=object)
    sums = {}
    for language in sorted(set(languages)):
        chosen = np.sort(rows[languages == language])
        total = np.zeros(dimension)
        for start in range(0, len(chosen), READ_ROWS):
            total += stored[chosen[start : start + READ_ROWS]].sum(axis=0, dtype=np.float64)
        sums[str(language)] = (total, len(chosen))
    return sums


def build_vector_index(path: Path, vector_index: str, ids: np.ndarray, dimension: int, archive_passages: int) -> str:
    """Write the segment's approximate index if its size calls for one; returns its kind."""
    return build_vector_indexes([path], vector_index, dimension, archive_passages, [ids])[0]


def build_vector_indexes(
    paths: Sequence[Path],
    vector_index: str,
    dimension: int,
    archive_passages: int,
    ids: Sequence[np.ndarray] | None = None,
) -> list[str]:
    """Write the approximate index of each of these segments (of one commit) whose size calls for one; returns
    their kinds.

    Segments of one kind with cells are trained once, on a sample of them all, and share their cells: a large
    build then trains once instead of once per segment, and a search or a near-copy lookup finds a query's
    nearest cells once for all its segments (:class:`indexer.indexes.vectors.SegmentedVectors`).
    """
    from indexer.indexes.vectors import EXACT, TRAINING_PER_LIST, VectorIndex

    ids = [np.load(path / IDS) for path in paths] if ids is None else ids
    kinds = [_factory(vector_index, len(segment_ids), archive_passages) for segment_ids in ids]
    trained = {}
    for kind in set(kinds) - {EXACT}:
        chosen = [stored_vectors(path, dimension) for path, k in zip(paths, kinds) if k == kind]
        cells = [int(n) for n in re.findall(r"IVF(\d+)", kind)]
        if len(chosen) > 1 and cells:
            trained[kind] = VectorIndex.empty(kind, dimension, _sample(chosen, cells[0] * TRAINING_PER_LIST))
    for path, kind, segment_ids in zip(paths, kinds, ids):
        if kind != EXACT:
            stored = stored_vectors(path, dimension)
            VectorIndex.build(kind, dimension, segment_ids, stored, trained.get(kind)).save(path / FAISS)
    return kinds


def _sample(parts: Sequence[np.ndarray], size: int) -> np.ndarray:
    """About ``size`` rows drawn from these arrays, from each in proportion to its length."""
    total = sum(len(part) for part in parts)
    rng = np.random.default_rng(0)
    drawn = [part[np.sort(rng.permutation(len(part))[: -(-size * len(part) // total)])] for part in parts]
    return np.concatenate(drawn).astype(np.float32, copy=False)


def _factory(vector_index: str, passages: int, archive_passages: int) -> str:
    from indexer.indexes.vectors import EXACT, TRAINING_PER_LIST, factory_for

    if vector_index == "auto":
        return factory_for(passages, archive_passages)
    # A segment too small to train the kind asked for is searched exactly until merges make it large enough; an
    # archive too small for it is refused.
    cells = [int(n) for n in re.findall(r"IVF(\d+)", vector_index)]
    if cells and archive_passages < cells[0]:
        raise NewsarchiveError(
            f"vector index {vector_index!r} needs at least {cells[0]:,} passages to train, this archive has "
            f"{archive_passages:,}: use --vector-index auto"
        )
    return EXACT if cells and passages < cells[0] * TRAINING_PER_LIST // 4 else vector_index


def vectors_file(path: Path) -> Path:
    """The file a search reads the segment's vectors from: passages.parquet, or the copy an older segment holds."""
    return next((path / name for name in VECTORS_BEFORE if (path / name).exists()), path / PASSAGES)


def stored_vectors(path: Path, dimension: int) -> np.ndarray | parquet_vectors.ParquetVectors:
    """The segment's vectors, as passages.embedding holds them, memory-mapped: a search reads only the rows it
    scores.

    Raises:
        ValueError: passages.parquet's vectors are not written where they can be read in place.
    """
    file = vectors_file(path)
    if file.name == PASSAGES:
        return parquet_vectors.ParquetVectors(file, dimension)
    if not file.stat().st_size:
        return np.zeros((0, dimension), dtype=VECTORS_BEFORE[file.name])
    return np.memmap(file, dtype=VECTORS_BEFORE[file.name], mode="r").reshape(-1, dimension)


def write_duplicates(path: Path, pairs: list[tuple[str, str, str, float, str, str]]) -> None:
    columns = list(zip(*pairs)) if pairs else [[] for _ in DUPLICATE_SCHEMA]
    table = pa.table(dict(zip(DUPLICATE_SCHEMA.names, columns)), schema=DUPLICATE_SCHEMA)
    pq.write_table(table, path / DUPLICATES)


def write_tombstones(path: Path, article_ids: list[str], passage_ids: np.ndarray) -> None:
    table = pa.table({"article_id": article_ids, "passage_id": passage_ids}, schema=TOMBSTONE_SCHEMA)
    pq.write_table(table, path)


def tombstones(path: Path | None) -> tuple[set[str], np.ndarray]:
    """(article ids, sorted passage ids) in a tombstone file; none for ``None``."""
    if path is None:
        return set(), np.zeros(0, dtype=np.int64)
    table = pq.ParquetFile(path).read()
    articles = set(table.column("article_id").to_pylist())
    passages = np.unique(table.column("passage_id").to_numpy().astype(np.int64))
    return articles, passages[passages >= 0]


class Loaded:
    """A committed segment's search structures, each loaded on first use, once per process, and shared by every
    snapshot: a writer that only adds articles never loads the lexical indexes of the segments already there."""

    def __init__(self, path: Path, dimension: int) -> None:
        self.path, self.dimension = path, dimension
        self.ids: np.ndarray = np.load(path / IDS)
        self.stored = stored_vectors(path, dimension)
        self._lock = threading.Lock()
        self._bodies: CompressedRows | None = None  # format 7's bodies.arrow

    @functools.cached_property
    def vectors(self) -> Any:  # VectorIndex
        return self._vectors(mapped=False)

    @functools.cached_property
    def mapped_vectors(self) -> Any:  # VectorIndex
        """The vector index memory-mapped: for a few lookups (:meth:`indexer.indexes.vectors.VectorIndex.load`)."""
        return self._vectors(mapped=True)

    def _vectors(self, mapped: bool) -> Any:
        from indexer.indexes.vectors import VectorIndex

        with self._lock:
            if (self.path / FAISS).exists():
                return VectorIndex.load(self.path / FAISS, mapped)
            return VectorIndex.flat(self.ids, self.stored)

    @functools.cached_property
    def lexical(self) -> Any:  # LexicalIndex
        from indexer.indexes.lexical import LexicalIndex

        with self._lock:
            return LexicalIndex.load(self.path / LEXICAL)

    @functools.cached_property
    def language_sums(self) -> dict[str, tuple[np.ndarray, int]]:
        """:func:`language_sums` of this segment."""
        return language_sums(self.path, self.dimension)

    @functools.cached_property
    def passage_articles(self) -> pa.ChunkedArray:
        """Each passage's article_id, in id order (memory-mapped): looked up for candidate pairs of duplicates."""
        return self.passages.arrow_column("article_id")

    @functools.cached_property
    def passages(self) -> Rows:
        """The columns a search shows, a row per passage in id order (memory-mapped), the text sliced from the
        article's body (segments of format 7 keep it in texts.arrow, those before in passages.arrow itself)."""
        path = self.path / LOOKUP / "passages.arrow"
        if (self.path / BODY_BLOCKS).exists():
            return Rows(path, PassageTexts(self))
        texts = self.path / TEXTS
        return Rows(path, CompressedTexts(texts, mapped=True) if texts.exists() else None)

    @functools.cached_property
    def body_blocks(self) -> CompressedTexts:
        return CompressedTexts(self.path / BODY_BLOCKS, "body")

    @functools.cached_property
    def articles(self) -> tuple[dict[str, int], Rows]:
        """(article_id -> row, the columns a search shows of each article), memory-mapped."""
        rows = self.article_lookup
        return {article_id: row for row, article_id in enumerate(rows.column("article_id"))}, rows

    @functools.cached_property
    def article_lookup(self) -> Rows:
        return Rows(self.path / LOOKUP / "articles.arrow")

    def article_rows(self, article_ids: pa.Array) -> np.ndarray:
        """The rows of ``articles.parquet`` (and of the lookup file, in the same order) holding these articles."""
        found = pc.is_in(self.article_lookup.arrow_column("article_id"), value_set=article_ids)
        return pc.indices_nonzero(found).to_numpy().astype(np.int64)

    def read_articles(self, rows: np.ndarray, columns: list[str]) -> Iterator[pa.Table]:
        """These rows (ascending) of ``articles.parquet``, read a few row groups at a time (bodies are large)."""
        if not len(rows):
            return
        file = pq.ParquetFile(self.path / ARTICLES)
        starts = np.cumsum([0] + [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)])
        groups = np.searchsorted(starts, rows, side="right") - 1
        numbers = np.unique(groups)
        for first in range(0, len(numbers), GROUPS_READ):
            chunk = numbers[first : first + GROUPS_READ]
            table = file.read_row_groups(chunk.tolist(), columns=columns)
            offsets = np.cumsum([0] + [file.metadata.row_group(g).num_rows for g in chunk.tolist()])[:-1]
            mine = np.isin(groups, chunk)
            places = rows[mine] - starts[groups[mine]] + offsets[np.searchsorted(chunk, groups[mine])]
            yield table.take(pa.array(places))

    def bodies(self, rows: np.ndarray) -> Iterator[tuple[str, str | None]]:
        """(body, language) of the articles in these rows (of ``articles.parquet``, in ascending order)."""
        if (self.path / BODY_BLOCKS).exists():
            languages = self.article_lookup.arrow_column("language").take(pa.array(rows, pa.int64())).to_pylist()
            yield from zip(self.body_blocks.texts(rows), languages)
            return
        if not (self.path / BODIES).exists():  # a segment written before there were body lookups
            for table in self.read_articles(rows, list(BODY_COLUMNS)):
                yield from zip(*table.to_pydict().values())
            return
        with self._lock:
            if self._bodies is None:
                self._bodies = CompressedRows(self.path / BODIES)
        yield from zip(*self._bodies.table(rows).to_pydict().values())


class CompressedTexts:
    """A text column written by :func:`write_blocks`, read by row: a few rows cost the decompression of their
    blocks. Read, not memory-mapped: a build reads most bodies once, and would keep them; format 7's texts.arrow,
    of many blocks a record batch, is ``mapped``."""

    def __init__(self, path: Path, name: str = "text", mapped: bool = False) -> None:
        self._mapped = Rows(path) if mapped else None
        self._reader = None if mapped else pa.ipc.open_file(pa.OSFile(str(path)))
        schema = self._mapped.schema if self._mapped is not None else self._reader.schema
        self._rows = int((schema.metadata or {}).get(b"rows", COMPRESSED_ROWS))
        self._lock = threading.Lock()
        self._codec = pa.Codec(COMPRESSION)
        self.names = [name]

    def _block(self, number: int) -> pa.Table | pa.RecordBatch:
        if self._mapped is not None:
            return self._mapped.table([number])
        with self._lock:  # one file: its reads do not interleave
            return self._reader.get_batch(number)

    def texts(self, rows: np.ndarray | list[int]) -> list[str]:
        """These rows' texts, in this order; each block they are in is decompressed once."""
        rows = np.asarray(rows, dtype=np.int64).tolist()
        texts: list[str] = [""] * len(rows)
        by_block = sorted(range(len(rows)), key=lambda place: rows[place])
        for number, places in itertools.groupby(by_block, key=lambda place: rows[place] // self._rows):
            block = self._block(number)
            ends = block.column("ends")[0].values.to_numpy().astype(np.int64).tolist()
            data = self._codec.decompress(block.column("texts")[0].as_buffer(), ends[-1], asbytes=True)
            for place in places:
                row = rows[place] % self._rows
                texts[place] = data[ends[row - 1] if row else 0 : ends[row]].decode()
        return texts

    def table(self, rows: np.ndarray | list[int], shown: pa.Table | None = None) -> pa.Table:
        return pa.table({self.names[0]: pa.array(self.texts(rows), pa.string())})


class PassageTexts:
    """The passages' text, each sliced from its article's body (``text == body[char_start:char_end]``): the
    bodies' blocks hold the segment's text once."""

    names = ["text"]

    def __init__(self, segment: Loaded) -> None:
        self._segment = segment

    def table(self, rows: np.ndarray | list[int], shown: pa.Table) -> pa.Table:
        """The texts of ``shown``, these rows of passages.arrow."""
        article_row = self._segment.articles[0]
        owners = [article_row[article_id] for article_id in shown.column("article_id").to_pylist()]
        bodies = self._segment.body_blocks.texts(owners)
        spans = zip(bodies, shown.column("char_start").to_pylist(), shown.column("char_end").to_pylist())
        return pa.table({"text": pa.array([body[start:end] for body, start, end in spans], pa.string())})


class CompressedRows:
    """An Arrow file of compressed batches of :data:`COMPRESSED_ROWS` rows, read by row number: reading a few rows
    decompresses their batches alone. Read, not memory-mapped: a build reads most bodies once, and would keep them."""

    def __init__(self, path: Path) -> None:
        self._reader = pa.ipc.open_file(pa.OSFile(str(path)))
        self._lock = threading.Lock()

    def table(self, rows: np.ndarray | list[int]) -> pa.Table:
        """These rows, in this order (a batch is decompressed once for rows next to each other)."""
        slices = []
        for number, places in itertools.groupby(np.asarray(rows).tolist(), key=lambda row: row // COMPRESSED_ROWS):
            with self._lock:  # one file: its reads do not interleave
                batch = self._reader.get_batch(number)
            slices += [batch.slice(row % COMPRESSED_ROWS, 1) for row in places]
        return pa.Table.from_batches(slices, self._reader.schema)


class Rows:
    """A memory-mapped Arrow file read by row number: each row is a slice of its record batch, so reading a few
    costs what they hold (``Table.take`` over a file's many batches cost ~3 ms a call)."""

    def __init__(self, path: Path, more: CompressedTexts | PassageTexts | None = None) -> None:  # the rows' text
        self._reader = pa.ipc.open_file(pa.memory_map(str(path)))
        self._batches = [self._reader.get_batch(i) for i in range(self._reader.num_record_batches)]
        self._starts = np.cumsum([0] + [batch.num_rows for batch in self._batches])
        self._more = more

    def take(self, rows: np.ndarray | list[int]) -> list[dict[str, Any]]:
        return self.table(rows).to_pylist()

    def table(self, rows: np.ndarray | list[int]) -> pa.Table:
        """These rows as a table, a slice of a batch each (for a few rows)."""
        numbers = np.searchsorted(self._starts, rows, side="right") - 1
        slices = [
            self._batches[number].slice(row - self._starts[number], 1)
            for number, row in zip(numbers.tolist(), np.asarray(rows).tolist())
        ]
        table = pa.Table.from_batches(slices, self._reader.schema)
        if self._more is not None:
            more = self._more.table(rows, table)
            for name in more.column_names:
                table = table.append_column(name, more.column(name))
        return table

    @property
    def schema(self) -> pa.Schema:
        return self._reader.schema

    @property
    def names(self) -> list[str]:
        return [*self._reader.schema.names, *(self._more.names if self._more is not None else [])]

    def column(self, name: str) -> list[Any]:
        return self.arrow_column(name).to_pylist()

    def arrow_column(self, name: str) -> pa.ChunkedArray:
        return pa.chunked_array([batch.column(name) for batch in self._batches], self._reader.schema.field(name).type)


_lock = threading.Lock()
_loaded: dict[Path, Loaded] = {}


def load(paths: list[Path], dimension: int) -> list[Loaded]:
    """These segments' :class:`Loaded` structures. A segment is immutable, so they are kept for the next snapshot,
    which then loads only new segments; those of older snapshots are dropped (their snapshots keep what they use)."""
    with _lock:
        loaded = {path: _loaded.get(path) or Loaded(path, dimension) for path in paths}
        _loaded.clear()
        _loaded.update(loaded)
        return [loaded[path] for path in paths]
