"""Converting an index of an earlier format (3 or 4: whole generations) into segments, without embedding anything.

The current generation becomes one segment: its tables are copied to Parquet, its vectors and BM25 counts kept as
they are, its duplicate pairs and stories carried over (format 3 had none: they are found, from the stored
vectors). The conversion is a commit like any other; the old generations are removed after it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import numpy as np

from indexer.errors import NewsarchiveError
from indexer.storage import layout, segment
from indexer.storage.catalog import quoted
from indexer.storage.manifest import Manifest, SegmentEntry


def convert(directory: Path, old: Manifest, name: str) -> tuple[SegmentEntry, Path, int]:
    """Write ``old``'s generation as the files of segment ``name``, staged in ``directory`` for the writer (which
    holds the lock) to commit: the segment's entry, its staging folder and the next passage id.

    Raises:
        NewsarchiveError: The old index cannot be read; it is left as it was.
    """
    generation = Path(os.path.realpath(directory / "current"))
    if not (generation / "archive.duckdb").exists():
        generation = directory  # the flat layout before generations
    path = layout.staging_directory(directory, name)
    try:
        entry, next_id = _convert(generation, path, old, name)
    except (duckdb.Error, OSError, KeyError) as error:
        shutil.rmtree(path, ignore_errors=True)
        raise NewsarchiveError(f"cannot upgrade {directory}/: {error}; rebuild it with --rebuild") from None
    return entry, path, next_id


def _convert(generation: Path, path: Path, old: Manifest, name: str) -> tuple[SegmentEntry, int]:
    """Write the generation's rows as segment files in ``path``: (its entry, the next passage id)."""
    dimension = old.dimension
    with duckdb.connect(str(generation / "archive.duckdb"), read_only=True) as db:
        columns = {
            row[0]
            for row in db.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'articles'").fetchall()
        }
        author = "author" if "author" in columns else "NULL::VARCHAR AS author"
        names = [n if n != "author" else author for n in segment.ARTICLE_SCHEMA.names]
        db.execute(
            f"COPY (SELECT {', '.join(names)} FROM articles ORDER BY article_id) TO {quoted(path / segment.ARTICLES)} "
            f"(FORMAT parquet, ROW_GROUP_SIZE {segment.ARTICLE_ROWS})"
        )
        db.execute(
            f"COPY (SELECT {', '.join(segment.PASSAGE_COLUMNS)}, embedding FROM passages ORDER BY passage_id) "
            f"TO {quoted(path / segment.PASSAGES)} (FORMAT parquet, ROW_GROUP_SIZE {segment.PASSAGE_ROWS})"
        )
        tables = {row[0] for row in db.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "duplicates" in tables:
            db.execute(
                f"""COPY (SELECT d.article_id, d.duplicate_id, d.kind, d.similarity,
                                 a.content_hash AS article_hash, b.content_hash AS duplicate_hash
                          FROM duplicates d JOIN articles a ON a.article_id = d.article_id
                          JOIN articles b ON b.article_id = d.duplicate_id)
                    TO {quoted(path / segment.DUPLICATES)} (FORMAT parquet)"""
            )
        else:
            segment.write_duplicates(path, [])
        articles = db.execute("SELECT count(*) FROM articles").fetchall()[0][0]
        table = db.sql("SELECT passage_id, embedding FROM passages ORDER BY passage_id").to_arrow_table()
        next_id = db.execute("SELECT coalesce(max(passage_id), 0) + 1 FROM passages").fetchall()[0][0]
    ids = table.column("passage_id").to_numpy().astype(np.int64)
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(len(ids), dimension)
    np.save(path / segment.IDS, ids)
    # DuckDB writes the Parquet rows above with float32 vectors: the segment keeps them so, as format 5's did.
    (path / "vectors.f32").write_bytes(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    shutil.copytree(generation / "lexical", path / segment.LEXICAL)
    segment.write_lookup(path)
    segment.write_language_sums(path, dimension)
    index_type = "Flat"
    from indexer.indexes.vectors import VectorIndex

    old_vectors = VectorIndex.load(generation / "vectors.faiss")
    if not old_vectors.exact:
        shutil.copy2(generation / "vectors.faiss", path / segment.FAISS)
        index_type = old.index_type
    return SegmentEntry(name, articles, len(ids), index_type=index_type), int(next_id)
