"""Looking after the archive itself: ``optimize``, ``check``, ``sql`` and ``info``."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from pathlib import Path

import click

from indexer.cli.common import echo, emit, index_dir_option, plural
from indexer.terminal import inert_json


@click.command()
@index_dir_option
def optimize(index_dir: Path) -> None:
    """Merge every segment of the index into one, dropping removed and replaced rows.

    Nothing is embedded again: the merge reads the segments' rows, vectors and term counts. It is a commit like
    any other: searches and the app go on meanwhile, on the commit before until it is done. Small segments are
    merged after each commit anyway; run this after large deletions, or to make searches of a large archive a
    little faster.

    \b
    Example:
        newsarchive optimize --index-dir archive
    """
    from indexer.ingest.index import optimize as run_optimize

    manifest = run_optimize(index_dir)
    echo(
        f"{index_dir}/ now holds {plural(manifest.articles, 'article')} in {plural(manifest.passages, 'passage')}, "
        f"in {plural(len(manifest.segments), 'segment')}."
    )


@click.command("check")
@index_dir_option
def check_index(index_dir: Path) -> None:
    """Verify the index: the commit, and every segment's rows, vectors and lexical index, agree.

    Also checks that passage and article ids are unique across segments, that tombstones point at rows of their
    segment, and that archive/archive.duckdb shows the current commit. Exits 1 and says what is wrong when not.

    \b
    Example:
        newsarchive check --index-dir archive
    """
    from indexer.storage.check import check

    problems = check(index_dir)
    for problem in problems:
        echo(f"{index_dir}/: {problem}", err=True)
    if problems:
        raise click.ClickException(f"{index_dir}/ failed {plural(len(problems), 'check')}; rebuild it with --rebuild")
    echo(f"{index_dir}/ is sound.")


@click.command()
@click.argument("query")
@click.option("--json", "fmt", flag_value="json", help="Rows as a JSON array of objects.")
@click.option("--csv", "fmt", flag_value="csv", help="Rows as CSV with a header line.")
@click.option(
    "--write",
    is_flag=True,
    help="Allow INSERT, UPDATE and DELETE (say, to correct metadata). The result is checked (ids, offsets, "
    "vectors) and the articles it touches are written again, with their passages and vectors, as a new commit; a "
    "change that would break the index is refused, and one that changes nothing makes no commit.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, max=86_400),  # a day; threading's timer refuses far larger values
    metavar="SECONDS",
    default=60.0,  # indexer.storage.sandbox.TIMEOUT, repeated so that --help needs no DuckDB
    show_default=True,
    help="Stop the query after this many seconds, at most 86,400 (0: no limit).",
)
@index_dir_option
def sql(query: str, fmt: str | None, write: bool, timeout: float, index_dir: Path) -> None:
    """Run a SQL QUERY on the archive's tables and print the rows; read-only unless --write.

    The tables are articles, passages and duplicates, as of the current commit; docs/the-archive.md ("Query
    with SQL") documents their columns.
    embed(text) gives a question's vector, to compare with passages.embedding; semantic_search(query, k)
    returns the k passages closest in meaning, and search_passages(query, k, mode) the k best of a hybrid,
    dense or lexical search, as (passage_id, score) rows to join.

    The query runs sandboxed: it reads the archive's tables and no other file, writes no file, and loads no
    extension. Only SELECT (with WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) runs, and with --write also INSERT,
    UPDATE and DELETE on articles, passages and duplicates; COPY, ATTACH, INSTALL, CREATE, SET and the like are
    refused.

    \b
    Example:
        newsarchive sql "SELECT article_id, count(*) AS passages FROM passages GROUP BY article_id"
        newsarchive sql --write "UPDATE articles SET source = 'Reuters' WHERE article_id = 'wire-1'"
    """
    if write:
        from indexer.storage.edit import write_sql

        edit = write_sql(index_dir, query, timeout)
        _print_rows(edit.columns, edit.rows, fmt or "csv")
        done = f"{index_dir}/ updated (commit {edit.commit})." if edit.commit else "Nothing changed: no commit made."
        echo(done, err=True)
        return
    from indexer.retrieval.sql_functions import people_sql
    from indexer.storage import Snapshot

    with Snapshot(index_dir) as snapshot, people_sql(snapshot, query, timeout) as relation:
        if relation is None:
            return
        if fmt is None:
            shown = io.StringIO()
            with contextlib.redirect_stdout(shown):
                relation.show(max_rows=1_000_000, max_width=shutil.get_terminal_size().columns)
            echo(shown.getvalue(), nl=False)
            return
        columns, rows = relation.columns, relation.fetchall()
    _print_rows(columns, rows, fmt)


def _print_rows(columns: list[str], rows: list[tuple], fmt: str) -> None:
    if not columns:
        return
    if fmt == "json":
        emit(inert_json([dict(zip(columns, row)) for row in rows], indent=2, default=str))
    else:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        emit(out.getvalue(), nl=False)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the details as one JSON object.")
@index_dir_option
def info(as_json: bool, index_dir: Path) -> None:
    """Show the index's model, size, vector index kind and build time.

    stories counts an article with its copies and translations as one; duplicates counts the pairs in the
    duplicates table. vectors_bytes is what a search holds in memory for the vectors (the model and DuckDB's
    cache come on top); lexical_bytes is memory-mapped, so a search reads only its words' part. backend is what
    embedded the passages last written; backend_here is what runs the model on this machine, and why. generator
    is the language model ask writes answers with ($NEWSARCHIVE_LLM_URL and $NEWSARCHIVE_LLM_MODEL), if any.

    \b
    Example:
        newsarchive info --index-dir archive
    """
    from indexer.answers.llm import Generator
    from indexer.retrieval.info import describe
    from indexer.storage import Snapshot

    with Snapshot(index_dir) as snapshot:
        details = describe(snapshot)
    details["generator"] = Generator.configured_description()
    if as_json:
        emit(inert_json(details, indent=2))
        return
    for key, value in details.items():
        if key.endswith("_bytes"):
            key, value = key.removesuffix("_bytes"), f"{value / 1e6:.1f} MB"
        # Prompts often end in a space that matters: show them quoted.
        echo(f"{key + ':':<16}{value!r}" if key.endswith("_prompt") else f"{key + ':':<16}{value}")
