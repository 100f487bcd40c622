"""Matches and coverage tables written as CSV or Parquet.

CSV is plain: a header row, then the rows, so that every tool opens it as it is. Parquet also says what produced
it (the command, the query, the index and its commit) in its schema's metadata, so that an export can be redone.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

KEY = b"newsarchive"  # the Parquet schema's metadata key


def about(command: str, query: str, directory: Path, commit: int) -> dict[str, str | int]:
    """What an export records: the command and query, the index directory and the commit they read."""
    return {"command": command, "query": query, "index": str(directory), "commit": commit}


def csv_bytes(table: pa.Table) -> bytes:
    """``table`` as CSV in UTF-8: a header row of its column names, then its rows, dates and times as ISO text."""
    out = io.BytesIO()
    pa_csv.write_csv(_plain(table), out, pa_csv.WriteOptions(quoting_style="needed"))
    return out.getvalue()


def parquet_bytes(table: pa.Table, described: dict[str, str | int]) -> bytes:
    """``table`` as Parquet, ``described`` in its schema's metadata under ``newsarchive``."""
    out = io.BytesIO()
    write_parquet(table, described, out)
    return out.getvalue()


def write_parquet(table: pa.Table, described: dict[str, str | int], out: str | Path | BinaryIO) -> None:
    metadata = {**(table.schema.metadata or {}), KEY: json.dumps(described, ensure_ascii=False).encode()}
    pq.write_table(table.replace_schema_metadata(metadata), out)


def described_by(path: str | Path) -> dict[str, str | int]:
    """What produced the Parquet export at ``path``."""
    return json.loads(pq.read_schema(path).metadata[KEY])


def _plain(table: pa.Table) -> pa.Table:
    """Dates and times as ISO text: CSV readers parse them alike whatever their time zone setting."""
    columns = [
        column.cast(pa.string()) if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type) else column
        for column in table.columns
    ]
    return pa.table(columns, names=table.column_names)
