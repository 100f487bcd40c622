"""Exact counting: ``coverage``, and the matching of ``search --match``, which both count and export."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import click

from indexer.cli.common import echo, emit, index_dir_option, plural, with_export_options
from indexer.terminal import inert_json


def match(
    text: str, sort: str, as_json: bool, as_csv: bool, parquet: Path | None, index_dir: Path, filters: dict
) -> None:
    """``search --match``: every article the exact query matches, printed, as JSON, or exported."""
    from indexer.exact.counts import matches
    from indexer.exact.export import about
    from indexer.exact.query import with_filters
    from indexer.exact.reports import match_report
    from indexer.storage import Snapshot

    narrowed = (filters["sources"], filters["languages"], filters["since"], filters["until"])
    with Snapshot(index_dir) as snapshot:
        if as_csv or parquet:
            query = with_filters(text, *narrowed)
            described = about("newsarchive search --match", query, index_dir, snapshot.commit)
            _exported(matches(snapshot, query, sort=sort), described, as_csv, parquet)
            return
        report = match_report(snapshot, text, "newsarchive search --match", sort, *narrowed)
    if as_json:
        emit(inert_json(report, indent=2, default=str))
        return
    rows, counted = report["matches"], report["facets"]
    echo(f"{plural(len(rows), 'article')} match {report['query']!r}.")
    for name in ("source", "language"):
        if counted[name]:
            top = ", ".join(f"{row['value'] or 'none'} {row['count']}" for row in counted[name])
            echo(f"By {name}: {top}")
    width = min(shutil.get_terminal_size().columns, 100)
    for row in rows:
        day = row["published"].date().isoformat() if row["published"] else "undated"
        place = " · ".join(str(part) for part in (day, row["source"], row["title"]) if part)
        echo(f"  [{row['article_id']}]", bold=place)
        if row["text"]:
            echo(textwrap.fill(row["text"], width=width, initial_indent="   ", subsequent_indent="   ") + "\n")


def _exported(table: Any, described: dict, as_csv: bool, parquet: Path | None) -> bool:
    """Write ``table`` as --csv or --parquet asked; whether it was."""
    from indexer.exact import export

    if parquet:
        export.write_parquet(table, described, parquet)
        echo(f"{plural(table.num_rows, 'row')} written to {parquet}", err=True)
    if as_csv:
        emit(export.csv_bytes(table).decode(), nl=False)
    return bool(parquet or as_csv)


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--by", type=click.Choice(["day", "week", "month", "year"]), default="day", show_default=True, help="The period."
)
@click.option("--source", "sources", multiple=True, help="Count only these sources (repeatable); default: all.")
@click.option("--by-source", is_flag=True, help="A row per source and period.")
@click.option("--semantic", is_flag=True, help="QUERY is a question: count the articles close to it in meaning.")
@click.option(
    "--threshold",
    type=float,
    help="--semantic: the margin over neutral news a passage needs (default: the alerts', see the Alerts section of "
    "docs/adding-articles.md).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_export_options
@index_dir_option
def coverage(
    query: tuple[str, ...],
    by: str,
    sources: tuple[str, ...],
    by_source: bool,
    semantic: bool,
    threshold: float | None,
    as_json: bool,
    as_csv: bool,
    parquet: Path | None,
    index_dir: Path,
) -> None:
    """How many articles match QUERY per period, beside all articles of the same sources then, and the share.

    QUERY is exact, as in `search --match` (its --help gives the language). With --semantic it is a question, and
    an article counts when one of its passages is closer in meaning to it than everyday news is, by --threshold
    (the rule of alerts): every passage is scored, but what the rule counts is approximate. Weeks start on
    Monday; times are UTC; undated articles are not counted.

    \b
    Example:
        newsarchive coverage 'drone* "black sea"' --by week
        newsarchive coverage grano --by month --by-source --csv > grano.csv
        newsarchive coverage --semantic "a drone downed over the sea" --by month
    """
    from indexer.exact.reports import coverage_counts

    text = " ".join(query)
    if threshold is not None and not semantic:
        raise click.UsageError("--threshold is for --semantic")
    if semantic:
        from indexer.live.alerts import THRESHOLD
        from indexer.retrieval.archive import Archive as opened
    else:
        from indexer.storage import Snapshot as opened
    margin = (THRESHOLD if threshold is None else threshold) if semantic else None
    with opened(index_dir) as snapshot:
        options = {"sources": sources, "by_source": by_source, "semantic": semantic, "threshold": margin}
        table, described = coverage_counts(snapshot, text, "newsarchive coverage", by, **options)
    if _exported(table, described, as_csv, parquet):
        return
    rows = table.to_pylist()
    if as_json:
        emit(inert_json({**described, "by": by, "periods": rows}, indent=2, default=str))
        return
    rule = described.get("approximate")
    if rule:
        echo(f"Approximate: {rule}.")
    if not rows:
        echo("No dated articles in these sources.")
    width = max((len(str(row["source"])) for row in rows), default=0) if by_source else 0
    for row in rows:
        source = f"  {str(row['source']):<{width}}" if by_source else ""
        echo(f"{row['period']}{source}  {row['matching']:>7,} of {row['total']:>7,}  {row['share']:7.1%}")
