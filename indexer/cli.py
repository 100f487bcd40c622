"""The ``newsarchive`` command line: a thin layer over the indexer's API.

Heavy libraries (torch, sentence-transformers, FAISS) are imported inside the commands that need them, so that
``--help``, ``info`` and ``sql`` start instantly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from . import config
from .errors import NewsarchiveError
from .terminal import inert, inert_json

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def echo(text: str = "", *, bold: str = "", err: bool = False, nl: bool = True) -> None:
    """Print for a person: ``bold`` (in bold on a terminal), then ``text``, both without terminal controls.

    Every line the commands print for a person goes through here: a title, a passage, a file name or a server's
    reply is shown as text and never obeyed by the terminal (see :mod:`indexer.terminal`). Data for programs
    goes through :func:`emit`.
    """
    click.echo((click.style(inert(bold), bold=True) if bold else "") + inert(text), err=err, nl=nl)


def emit(data: str, nl: bool = True) -> None:
    """Print data for a program as it is: CSV stays faithful, and JSON comes from :func:`inert_json`. On a
    terminal, where a person reads it, it is made inert like every other line."""
    click.echo(inert(data) if sys.stdout.isatty() else data, nl=nl)


class _Group(click.Group):
    """Turns failures into one line on stderr and exit code 1, never a traceback: expected ones with their message,
    others with their kind and first line (``$NEWSARCHIVE_DEBUG=1`` lets their traceback through)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:  # its message may quote an article, a file name or a server
            error.message = inert(error.message)
            raise
        except NewsarchiveError as error:
            raise click.ClickException(inert(str(error))) from None
        except ImportError as error:  # a broken or partial install: heavy modules are imported late, inside commands
            reason = str(error).strip().splitlines()[0] if str(error).strip() else f"no module {error.name}"
            raise click.ClickException(
                f"a package newsarchive needs cannot be imported ({reason}); reinstall it: pip install newsarchive"
            ) from None
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own ways out
        except Exception as error:  # noqa: BLE001 -- nobody foresaw it (a damaged file, a bug): one line, not a traceback
            if os.environ.get(config.DEBUG_ENV):
                raise
            what = (str(error).strip().splitlines() or [""])[0]
            raise click.ClickException(
                inert(
                    f"unexpected failure ({type(error).__name__}{': ' + what if what else ''}); "
                    f"run it again with {config.DEBUG_ENV}=1 to see where it happened"
                )
            ) from None


index_dir_option = click.option(
    "--index-dir",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=config.INDEX_DIR_ENV,
    default=config.DEFAULT_INDEX_DIR,
    show_default=True,
    help=f"The index directory (or ${config.INDEX_DIR_ENV}).",
)
model_option = click.option(
    "--model",
    "-m",
    envvar=config.MODEL_ENV,
    help=f"A sentence-transformers model id or path (or ${config.MODEL_ENV}). "
    "Default: the offline multilingual-e5-small; for search, the model the index was built with.",
)


MODES = ("hybrid", "dense", "lexical")  # indexer.search.MODES, repeated so that --help needs no numpy
mode_option = click.option(
    "--mode",
    type=click.Choice(MODES),
    default="hybrid",
    show_default=True,
    help="hybrid: meaning and words; dense: meaning only; lexical: words, names and codes only.",
)


def filter_options(command: Any) -> Any:
    """--source, --language, --since and --until, shared by the commands that search."""
    options = [
        click.option("--source", "sources", multiple=True, help="Only articles from this source (repeatable)."),
        click.option("--language", "languages", multiple=True, help="Only articles in this language (repeatable)."),
        click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only articles published on or after."),
        click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Only articles published on or before."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _filters(sources: tuple[str, ...], languages: tuple[str, ...], since: Any, until: Any) -> Any:
    from .search import Filters

    return Filters(sources, languages, since.date() if since else None, until.date() if until else None)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(package_name="newsarchive", message="%(prog)s %(version)s")
def cli() -> None:
    """Search a news archive by meaning, in English, Italian and about 100 other languages.

    Index article files once, then search them from here, from the web app, or in SQL.

    \b
    Example:
        newsarchive index seeds/
        newsarchive search "what happened to the MQ-9 drone"
    """


@cli.command()
@click.argument("paths", nargs=-1)
@index_dir_option
@model_option
@click.option("--rebuild", is_flag=True, help="Start from an empty index instead of updating the existing one.")
@click.option(
    "--prune", is_flag=True, help="Also remove articles whose file is gone, or no longer in a file that was read."
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "int8", "fp32"]),
    envvar=config.PRECISION_ENV,
    help="How the model runs (or $NEWSARCHIVE_PRECISION). auto and fp32: vectors of full precision (see --backend); "
    "int8: default model only, on onnxruntime, faster again and about a point of recall worse. Default: the "
    "index's, or fp32.",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "openvino", "onnx", "torch"]),
    envvar=config.BACKEND_ENV,
    help="What runs the model (or $NEWSARCHIVE_BACKEND, which every command follows). auto: the fastest on this "
    "CPU whose vectors agree with fp32, measured once per model and cached (OpenVINO in bf16 where the CPU has it, "
    "else onnxruntime, else torch); openvino, onnx (onnxruntime) or torch (sentence-transformers). Not kept with "
    "the index.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(16, 500),
    help="Longest passage in model tokens (default 256, or the index's). Longer paragraphs are cut at sentences.",
)
@click.option(
    "--vector-index",
    metavar="FACTORY",
    help="FAISS index factory string for the vectors, e.g. HNSW32 or IVF4096,SQ8 (default: the index's, or auto: "
    "exact search up to 100,000 passages, IVF with 8-bit vectors beyond). Changing it re-embeds nothing.",
)
@click.option("--query-prompt", help="Text put before each query (default: the model's own query prompt).")
@click.option("--passage-prompt", help="Text put before each passage (default: the model's own passage prompt).")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    metavar="[ADDRESS]",
    help="Read and embed on a Ray cluster (pip install 'newsarchive[cluster]'): ADDRESS (host:port, ray://host:port), "
    "else $RAY_ADDRESS, else a local Ray on this machine. This process alone writes the index, committing every "
    "20,000 new articles.",
)
@click.option(
    "--ray-actors", type=click.IntRange(1), help="Embedding actors (default: as many as the cluster's CPUs allow)."
)
@click.option(
    "--ray-cpus-per-actor",
    type=click.FloatRange(0.1),
    default=1.0,
    show_default=True,
    help="CPUs each actor gets; its model computes with that many threads.",
)
@click.option(
    "--ray-gpus-per-actor",
    type=click.FloatRange(0),
    default=0.0,
    help="GPUs each actor gets; the model then runs in sentence-transformers on CUDA.",
)
@click.option(
    "--ray-ship-inputs",
    is_flag=True,
    help="Read the inputs here and send their text to the workers, when they cannot see this machine's files.",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Let the pages that feed entries link to, and redirects, be on private and local addresses too (or "
    "$NEWSARCHIVE_ALLOW_PRIVATE=1). Off: only public addresses, or the site of a URL given on your own network.",
)
def index(
    paths: tuple[str, ...],
    index_dir: Path,
    model: str | None,
    rebuild: bool,
    prune: bool,
    precision: str | None,
    backend: str | None,
    vector_index: str | None,
    max_tokens: int | None,
    query_prompt: str | None,
    passage_prompt: str | None,
    ray_address: str | None,
    ray_actors: int | None,
    ray_cpus_per_actor: float,
    ray_gpus_per_actor: float,
    ray_ship_inputs: bool,
    allow_private: bool,
) -> None:
    """Build or update the index from article files, folders and URLs.

    Reads .txt (first line is the title), .md and .jsonl files (one article per line: id, title, text, and
    optionally source, url, published, language, author), saved web pages (.html, .htm: the main text and the page's
    title, date, author, site and canonical URL), and RSS or Atom feeds (.rss, .atom, .xml: one article per entry,
    with the page's text when the entry holds only a summary). PATHS may also be http(s) URLs of pages or feeds,
    each fetched within 30 s (the pages a feed's entries link to: 60 s for them all, only from public addresses, or
    the feed's own site when it is on your network). New and changed articles are embedded, and grouped with their
    copies and translations into stories (articles.story_id); unchanged ones are skipped. A file or URL that cannot
    be read is reported and skipped (what was indexed from it stays), and the exit code is then 1. An article
    belongs to the file, page or feed that first indexed it: another input with its id is reported and replaces
    nothing (remove it first to hand it over). Files in folders that are not articles (a photo, XML that is not a
    feed), and links whose page was not fetched (refused, or late), are notes that do not change the exit code.
    Readers keep seeing the previous version until the new one is complete.

    \b
    Examples:
        newsarchive index seeds/ ~/saved-articles/ https://example.com/news/feed.xml
        newsarchive index /shared/articles/ --ray ray://head:10001
    """
    from .cluster import ClusterOptions
    from .ingest import index_paths

    if ray_address is not None and ":" not in ray_address and ray_address != "auto":
        paths, ray_address = (ray_address, *paths), "auto"  # `--ray seeds/`: a path, not a cluster's address
    if not paths:
        raise click.UsageError("Missing argument 'PATHS...'.")
    cluster = None
    if ray_address is not None or ray_ship_inputs or ray_actors:
        options = (ray_actors, ray_cpus_per_actor, ray_gpus_per_actor, ray_ship_inputs)
        cluster = ClusterOptions(ray_address, *options)

    bar: Any = None

    def progress(stage: str, done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Embedding articles", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    from .fetch_policy import allowing_private

    try:
        with allowing_private(allow_private):
            report = index_paths(
                paths,
                index_dir,
                model=model,
                rebuild=rebuild,
                prune=prune,
                precision=precision,
                backend=backend,
                vector_index=vector_index,
                max_tokens=max_tokens,
                query_prompt=query_prompt,
                passage_prompt=passage_prompt,
                progress=progress,
                parallel=True,  # the console script's main module is safe to import again
                cluster=cluster,
            )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for problem in report.problems:
        echo(f"skipped {problem}", err=True)
    for note in report.ignored[:20]:  # a folder of photos would drown the rest
        echo(f"{note.label} {note}", err=True)
    if len(report.ignored) > 20:
        echo(f"and {len(report.ignored) - 20} more notes like these", err=True)
    _summary(report, index_dir)
    for match in report.matches:
        echo(f"alert {match.alert}: {match.title} ({match.url or match.article_id})")
    if report.problems:
        raise click.ClickException(f"{_plural(len(report.problems), 'input')} skipped (listed above)")


def _summary(report: Any, index_dir: Path) -> None:
    echo(
        f"{_plural(report.added, 'article')} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed; {_plural(report.embedded, 'passage')} embedded in {report.seconds:.1f} s.\n"
        f"{index_dir}/ now holds {_plural(report.articles, 'article')} in {_plural(report.passages, 'passage')}."
    )


@cli.command()
@click.argument("article_ids", nargs=-1, required=True)
@index_dir_option
def remove(article_ids: tuple[str, ...], index_dir: Path) -> None:
    """Remove articles, with their passages, by ARTICLE_ID.

    An id that is not in the index is an error, and then nothing is removed.

    \b
    Example:
        newsarchive remove 000_3b61c3f86574234b
    """
    from .ingest import remove_articles

    _summary(remove_articles(article_ids, index_dir), index_dir)


@cli.command()
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
    from .ingest import optimize as run_optimize

    manifest = run_optimize(index_dir)
    echo(
        f"{index_dir}/ now holds {_plural(manifest.articles, 'article')} in {_plural(manifest.passages, 'passage')}, "
        f"in {_plural(len(manifest.segments), 'segment')}."
    )


@cli.command("check")
@index_dir_option
def check_index(index_dir: Path) -> None:
    """Verify the index: the commit, and every segment's rows, vectors and lexical index, agree.

    Also checks that passage and article ids are unique across segments, that tombstones point at rows of their
    segment, and that archive/archive.duckdb shows the current commit. Exits 1 and says what is wrong when not.

    \b
    Example:
        newsarchive check --index-dir archive
    """
    from .storage.check import check

    problems = check(index_dir)
    for problem in problems:
        echo(f"{index_dir}/: {problem}", err=True)
    if problems:
        raise click.ClickException(f"{index_dir}/ failed {_plural(len(problems), 'check')}; rebuild it with --rebuild")
    echo(f"{index_dir}/ is sound.")


export_options = [
    click.option("--csv", "as_csv", is_flag=True, help="Print CSV: a header row, then the rows."),
    click.option(
        "--parquet",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write Parquet to this file (its metadata says what produced it).",
    ),
]


def with_export_options(command: Any) -> Any:
    for option in reversed(export_options):
        command = option(command)
    return command


@cli.command()
@click.argument("query", nargs=-1, required=True)
@click.option("-k", "--top", "k", type=click.IntRange(1, 1000), default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the query and its hits.")
@click.option("--match", "exact", is_flag=True, help="Every article QUERY matches exactly (the query language above).")
@click.option(
    "--sort", type=click.Choice(["date", "relevance"]), default="date", show_default=True, help="--match: the order."
)
@with_export_options
@mode_option
@filter_options
@index_dir_option
@model_option
def search(
    query: tuple[str, ...],
    k: int,
    as_json: bool,
    exact: bool,
    sort: str,
    as_csv: bool,
    parquet: Path | None,
    mode: str,
    index_dir: Path,
    model: str | None,
    **filters: Any,
) -> None:
    """Find the passages that best match QUERY, in any language; with --match, every article QUERY matches.

    Hybrid search ranks by meaning and adds evidence from matching words: all of them in passages in the query's
    language, and names, numbers and codes (MQ-9, COVID-19) in passages in other languages. A story that several
    outlets ran (copied, edited or translated) is shown in one article, with "also in:" naming the others.

    --match is exact, for counting: words (stemmed in each article's language), "quoted phrases", drone* (any word
    so beginning), AND (the default between terms), OR, NOT or -word, parentheses, and the fields source:,
    language:, author:, title: and published:2025-01-01..2025-03-31 (also a day, a month or a year). Each match
    comes with its cited passage, the one that best holds the query's words. --csv and --parquet export them.

    \b
    Example:
        newsarchive search what happened to the MQ-9 drone
        newsarchive search -k 3 --json "scambio di prigionieri"
        newsarchive search --match '"black sea" drone* -exercise published:2023-03' --csv > matches.csv
    """
    text = " ".join(query)
    if exact:
        _match(text, sort, as_json, as_csv, parquet, index_dir, filters)
        return
    if as_csv or parquet:
        raise click.UsageError("--csv and --parquet export the articles of --match")
    from .archive import Archive
    from .search import search as run_search

    with Archive(index_dir, model=model) as archive:
        hits = run_search(archive, text, k=k, filters=_filters(**filters), mode=mode)
    if as_json:
        emit(inert_json({"query": text, "mode": mode, "hits": [hit.to_dict() for hit in hits]}, indent=2))
        return
    if not hits:
        echo("No passages match.")
    width = min(shutil.get_terminal_size().columns, 100)
    for hit in hits:
        echo(" · ".join(hit.place()), bold=f"{hit.rank}. [{hit.score:.3f}] ")
        _echo_also_in(hit, "   ", width)
        echo(textwrap.fill(hit.text, width=width, initial_indent="   ", subsequent_indent="   ") + "\n")


def _match(
    text: str, sort: str, as_json: bool, as_csv: bool, parquet: Path | None, index_dir: Path, filters: dict
) -> None:
    from .exact.counts import facets, matches
    from .exact.match import Condition
    from .exact.query import with_filters
    from .storage import Snapshot

    query = with_filters(text, filters["sources"], filters["languages"], filters["since"], filters["until"])
    with Snapshot(index_dir) as snapshot:
        condition = Condition(snapshot, query)
        found = matches(snapshot, condition, sort=sort)
        described = _described("search --match", query, index_dir, snapshot.commit)
        if _exported(found, described, as_csv, parquet):
            return
        counted = {name: table.to_pylist() for name, table in facets(snapshot, condition).items()}
    rows = found.to_pylist()
    if as_json:
        output = {**described, "facets": counted, "matches": rows}
        emit(inert_json(output, indent=2, default=str))
        return
    echo(f"{_plural(len(rows), 'article')} match {query!r}.")
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


@contextlib.contextmanager
def _counted(index_dir: Path, text: str, semantic: bool, threshold: float | None) -> Iterator[tuple[Any, Any, str]]:
    """(snapshot, what to count, the rule when approximate) for an exact query or, with ``semantic``, a question."""
    if not semantic:
        from .storage import Snapshot

        with Snapshot(index_dir) as snapshot:
            yield snapshot, text, ""
        return
    from .archive import Archive
    from .exact.counts import by_meaning
    from .live.alerts import THRESHOLD

    margin = THRESHOLD if threshold is None else threshold
    with Archive(index_dir) as archive:
        rule = (
            f"articles with a passage whose cosine similarity to the question exceeds its similarity to everyday "
            f"news by at least {margin:g}"
        )
        yield archive, by_meaning(archive, archive.embedder, text, margin), rule


def _described(command: str, query: str, index_dir: Path, commit: int) -> dict:
    from .exact.export import about

    return about(f"newsarchive {command}", query, index_dir, commit)


def _exported(table: Any, described: dict, as_csv: bool, parquet: Path | None) -> bool:
    """Write ``table`` as --csv or --parquet asked; whether it was."""
    from .exact import export

    if parquet:
        export.write_parquet(table, described, parquet)
        echo(f"{_plural(table.num_rows, 'row')} written to {parquet}", err=True)
    if as_csv:
        emit(export.csv_bytes(table).decode(), nl=False)
    return bool(parquet or as_csv)


@cli.command()
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
    from .exact.counts import coverage as count

    text = " ".join(query)
    if threshold is not None and not semantic:
        raise click.UsageError("--threshold is for --semantic")
    with _counted(index_dir, text, semantic, threshold) as (snapshot, counted, rule):
        table = count(snapshot, counted, by=by, sources=sources, by_source=by_source)
        described = _described("coverage" + (" --semantic" if semantic else ""), text, index_dir, snapshot.commit)
    if rule:
        described["approximate"] = rule
    if _exported(table, described, as_csv, parquet):
        return
    rows = table.to_pylist()
    if as_json:
        emit(inert_json({**described, "by": by, "periods": rows}, indent=2, default=str))
        return
    if rule:
        echo(f"Approximate: {rule}.")
    if not rows:
        echo("No dated articles in these sources.")
    width = max((len(str(row["source"])) for row in rows), default=0) if by_source else 0
    for row in rows:
        source = f"  {str(row['source']):<{width}}" if by_source else ""
        echo(f"{row['period']}{source}  {row['matching']:>7,} of {row['total']:>7,}  {row['share']:7.1%}")


@cli.command()
@click.argument("question", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the answer object as JSON.")
@mode_option
@filter_options
@index_dir_option
@model_option
def ask(
    question: tuple[str, ...], as_json: bool, mode: str, index_dir: Path, model: str | None, **filters: Any
) -> None:
    """Answer QUESTION with sentences quoted from the archive, each citing its passage.

    When nothing in the archive is relevant enough, says so instead of citing noise.

    \b
    Example:
        newsarchive ask what happened to the MQ-9 drone
        newsarchive ask --json "Quanti soldati ucraini sono stati uccisi?"
    """
    from .answer import ask as run_ask
    from .archive import Archive

    text = " ".join(question)
    with Archive(index_dir, model=model) as archive:
        answer = run_ask(archive, text, filters=_filters(**filters), mode=mode)
    if as_json:
        emit(inert_json(answer.to_dict(), indent=2))
        return
    width = min(shutil.get_terminal_size().columns, 100)
    if not answer.found:
        echo("Nothing in the archive answers this closely enough.")
        return
    echo(textwrap.fill(answer.text(), width=width) + "\n")
    for source in answer.sources:
        echo(" · ".join(source.hit.place()), bold=f"[{source.number}] ")
        _echo_also_in(source.hit, "    ", width)
        echo(textwrap.fill(source.hit.text, width=width, initial_indent="    ", subsequent_indent="    ") + "\n")


def _echo_also_in(hit: Any, indent: str, width: int) -> None:
    """The other outlets and languages that ran the hit's story."""
    if hit.also_in:
        line = "also in: " + "; ".join(hit.elsewhere())
        echo(textwrap.fill(line, width=width, initial_indent=indent, subsequent_indent=indent + "  "))


@cli.command()
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
        from .storage.edit import write_sql

        edit = write_sql(index_dir, query, timeout)
        _print_rows(edit.columns, edit.rows, fmt or "csv")
        done = f"{index_dir}/ updated (commit {edit.commit})." if edit.commit else "Nothing changed: no commit made."
        echo(done, err=True)
        return
    from .sql_functions import register
    from .storage import Snapshot, catalog, sandbox

    sandbox.check_statements(query, sandbox.READING)
    with Snapshot(index_dir) as snapshot, catalog.sandboxed(index_dir, snapshot.manifest) as db:
        register(db, snapshot)
        # DuckDB runs a query lazily: errors, and the time limit, can come while the rows are fetched or shown.
        with sandbox.running(db, timeout):
            relation = db.sql(query)
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


@cli.command("eval")
@click.argument("queries", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--limit", type=click.IntRange(1), help="Use only N questions (the first N, or N at random with --sample)."
)
@click.option("--sample", is_flag=True, help="With --limit: a random sample (fixed seed, so runs compare).")
@click.option(
    "--mode",
    "modes",
    type=click.Choice(MODES),
    multiple=True,
    help="Measure only this mode (repeatable; default: all).",
)
@click.option(
    "--by-language",
    is_flag=True,
    help="Also split the figures by question language and the answering article's language (en→ru, ...): the "
    "question's lang field, else detected.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@index_dir_option
@model_option
def evaluate(
    queries: Path,
    limit: int | None,
    sample: bool,
    modes: tuple[str, ...],
    by_language: bool,
    as_json: bool,
    index_dir: Path,
    model: str | None,
) -> None:
    """Measure retrieval quality with QUERIES, a JSONL file of {"id", "text", "gold": [article ids]} lines.

    Reports recall@1/5/10/100, MRR@10, nDCG@10 and queries per second for each search mode. Articles rank by
    their best passage. Questions are embedded once, in batches, for all modes. --by-language also reports them
    for each pair of question language and answering article's language (en→ru: English questions whose answer
    is in a Russian article).

    \b
    Example:
        newsarchive index bench/data/squad-it/passages.jsonl -d /tmp/squad
        newsarchive eval bench/data/squad-it/queries_en.jsonl -d /tmp/squad --limit 500 --sample
        newsarchive eval bench/data/squad-it/queries_en.jsonl -d /tmp/squad --by-language --mode dense
    """
    from .archive import Archive
    from .evaluate import evaluate as run_evaluation
    from .evaluate import evaluate_by_language, load_questions
    from .memory import keep_freed_memory

    keep_freed_memory()  # many questions, one process
    questions = load_questions(queries, limit, sample)
    with Archive(index_dir, model=model) as archive:
        if by_language:
            results = evaluate_by_language(archive, questions, modes or MODES)
        else:
            results = {mode: {"all": e} for mode, e in run_evaluation(archive, questions, modes or MODES).items()}
    figures = {mode: {pair: e.to_dict() for pair, e in pairs.items()} for mode, pairs in results.items()}
    overall = {mode: pairs["all"] for mode, pairs in figures.items()}
    if as_json:
        output = {"queries": str(queries), "questions": len(questions), "modes": overall}
        if by_language:
            output["by_language"] = {
                mode: {p: f for p, f in pairs.items() if p != "all"} for mode, pairs in figures.items()
            }
        emit(inert_json(output, indent=2))
        return
    echo(f"{queries}: {_plural(len(questions), 'question')}")
    names = [name for name in next(iter(overall.values())) if name != "questions"]
    echo(f"{'mode':<10}" + "".join(f"{name:>20}" for name in names))
    for mode, values in overall.items():
        echo(f"{mode:<10}" + "".join(f"{values[name]:>20}" for name in names))
    if by_language:
        names = [name for name in names if name != "queries_per_second"]
        echo(f"\n{'mode':<10}{'languages':<14}{'questions':>10}" + "".join(f"{name:>12}" for name in names))
        for mode, pairs in figures.items():
            for pair, values in pairs.items():
                if pair != "all":
                    cells = "".join(f"{values[name]:>12}" for name in names)
                    echo(f"{mode:<10}{pair:<14}{values['questions']:>10}" + cells)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the details as one JSON object.")
@index_dir_option
def info(as_json: bool, index_dir: Path) -> None:
    """Show the index's model, size, vector index kind and build time.

    stories counts an article with its copies and translations as one; duplicates counts the pairs in the
    duplicates table. vectors_bytes is what a search holds in memory for the vectors (the model and DuckDB's
    cache come on top); lexical_bytes is memory-mapped, so a search reads only its words' part. backend is what
    embedded the passages last written; backend_here is what runs the model on this machine, and why.

    \b
    Example:
        newsarchive info --index-dir archive
    """
    from dataclasses import asdict

    from . import backends
    from .storage import Snapshot
    from .storage.layout import size

    with Snapshot(index_dir) as snapshot:
        manifest = snapshot.manifest
        details = {"index_dir": str(index_dir), **asdict(manifest)}
        details["segments"] = len(manifest.segments)
        details["tombstones"] = sum(entry.deleted for entry in manifest.segments)
        query = "SELECT (SELECT count(DISTINCT story_id) FROM articles), (SELECT count(*) FROM duplicates)"
        details["stories"], details["duplicates"] = snapshot.store.db.execute(query).fetchall()[0]
        details["vector_index_kind"] = snapshot.vectors.describe()
        paths = list(snapshot.paths.values())
    details["size_bytes"] = size(index_dir)
    # A segment with an approximate index holds it in memory; an exact one, its vectors.
    held = [path / "vectors.faiss" if (path / "vectors.faiss").exists() else path / "vectors.f32" for path in paths]
    details["vectors_bytes"] = sum(size(path) for path in held)
    details["lexical_bytes"] = sum(size(path / "lexical") for path in paths)
    details["backend_here"] = backends.describe(manifest.model, manifest.precision, config.cache_dir())
    if as_json:
        emit(inert_json(details, indent=2))
        return
    for key, value in details.items():
        if key.endswith("_bytes"):
            key, value = key.removesuffix("_bytes"), f"{value / 1e6:.1f} MB"
        # Prompts often end in a space that matters: show them quoted.
        echo(f"{key + ':':<16}{value!r}" if key.endswith("_prompt") else f"{key + ':':<16}{value}")


@cli.group(cls=_Group)
def feeds() -> None:
    """Feeds the archive follows: `follow` fetches them when due and indexes what is new.

    \b
    Example:
      newsarchive feeds add https://example.org/rss.xml --every 15m
      newsarchive feeds list
    """


@feeds.command("add")
@click.argument("url")
@click.option(
    "--every", "period", default="15m", show_default=True, help="How often: 90s, 15m, 2h, 1d (a minute to 365d)."
)
@click.option("--source", help="The source its articles get (default: the feed's own title).")
@index_dir_option
def feeds_add(url: str, period: str, source: str | None, index_dir: Path) -> None:
    """Follow the feed at URL (again: change how often, or its source).

    \b
    Example:
        newsarchive feeds add https://www.ansa.it/sito/ansait_rss.xml --every 30m --source ANSA
    """
    from .fetch_policy import shown
    from .live.feeds import add_feed, every

    feed = add_feed(url, index_dir, every(period), source)
    echo(f"following {shown(feed.url)} every {_period(feed.every_seconds)}; `newsarchive follow` fetches it")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the feeds as a JSON array of objects.")
@index_dir_option
def feeds_list(as_json: bool, index_dir: Path) -> None:
    """The feeds followed, each with its health: last fetch and status, entries, failures in a row, next due."""
    import dataclasses

    from .fetch_policy import shown
    from .live.feeds import listed

    found = listed(index_dir)
    if as_json:
        rows = [dataclasses.asdict(feed) for feed in found]
        for row in rows:  # a password in a feed's URL is never printed
            row["url"], row["location"] = shown(row["url"]), row["location"] and shown(row["location"])
        emit(inert_json(rows, default=str, indent=2))
        return
    if not found:
        echo(f"no feed is followed in {index_dir}/: `newsarchive feeds add URL` follows one")
    for feed in found:
        when = f"{feed.last_fetch:%Y-%m-%d %H:%M}" if feed.last_fetch else "never"
        health = feed.last_error or (f"HTTP {feed.last_status}" if feed.last_status else "not fetched yet")
        entries = f"{feed.entries_seen} entries, {feed.entries_new} new" if feed.entries_seen is not None else ""
        due = f"{feed.next_due:%Y-%m-%d %H:%M}" if feed.next_due else "now"
        source = f", source {feed.source}" if feed.source else ""
        echo(f"{shown(feed.url)}  every {_period(feed.every_seconds)}{source}")
        echo(
            f"  last fetch {when}: {health}"
            + (f"; {entries}" if entries else "")
            + (f"; {_plural(feed.failures, 'failure')} in a row" if feed.failures else "")
            + f"; next due {due}"
        )
        if feed.location and feed.location != feed.url:
            echo(f"  moved for good to {shown(feed.location)}")


@feeds.command("remove")
@click.argument("url")
@index_dir_option
def feeds_remove(url: str, index_dir: Path) -> None:
    """Stop following the feed at URL; the articles it brought stay."""
    from .fetch_policy import shown
    from .live.feeds import remove_feed

    remove_feed(url, index_dir)
    echo(f"no longer following {shown(url)}")


@cli.command("follow")
@click.option("--once", is_flag=True, help="One round over every feed, due or not, then exit (for cron or a timer).")
@click.option(
    "--allow-private",
    is_flag=True,
    help="Let the pages that feed entries link to, and redirects, be on private and local addresses too (or "
    "$NEWSARCHIVE_ALLOW_PRIVATE=1). Off: only public addresses, or the site of a feed on your own network.",
)
@index_dir_option
def follow_feeds(once: bool, allow_private: bool, index_dir: Path) -> None:
    """Fetch the followed feeds when due and index their new and changed entries, until stopped.

    Each round is one commit and prints one line, then one line per feed that failed; a failing feed is tried again
    later, less and less often, and the others go on. Requests are conditional: an unchanged feed costs a 304. A
    round's fetching takes at most 120 s, each request 30 s. Stopping it at any moment, even with kill -9, loses
    nothing committed.

    \b
    Examples:
        newsarchive follow
        newsarchive follow --once      # from cron: */15 * * * * newsarchive follow --once -d /srv/archive
    """
    from .live.follow import follow

    try:
        result = follow(index_dir, once=once, echo=echo, allow_private=allow_private)
    except KeyboardInterrupt:
        echo("stopped")
        return
    failed = [item.feed.url for item in result.fetched if item.feed.failures]
    if failed:
        raise click.ClickException(f"{_plural(len(failed), 'feed')} failed (listed above)")


@cli.group(cls=_Group)
def alerts() -> None:
    """Saved searches run on each new article: what they match is kept, shown, and written as an Atom feed.

    \b
    Example:
      newsarchive alerts add drones "a drone over the Black Sea" --language en
      newsarchive alerts show drones --since 2026-12-01
    """


@alerts.command("add")
@click.argument("name")
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--mode",
    type=click.Choice(["dense", "lexical"]),
    default="dense",
    show_default=True,
    help="dense: close in meaning, in any language; lexical: a passage holds every word of the query.",
)
@click.option("--source", "sources", multiple=True, help="Only articles of this source (repeatable).")
@click.option("--language", "languages", multiple=True, help="Only articles in this language (repeatable).")
@click.option(
    "--threshold",
    type=float,
    help="dense: the margin over neutral news a match needs (see the Alerts section of docs/adding-articles.md).",
)
@click.option(
    "--webhook", help="POST each round's new matches to this URL, as JSON (retried within 60 s; failures logged)."
)
@index_dir_option
def alerts_add(
    name: str,
    query: tuple[str, ...],
    mode: str,
    sources: tuple[str, ...],
    languages: tuple[str, ...],
    threshold: float | None,
    webhook: str | None,
    index_dir: Path,
) -> None:
    """Save the alert NAME for QUERY: from now on, each article indexed that matches it is recorded once.

    NAME is 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'; the alert's Atom feed is
    alerts/NAME.xml in the index directory.

    \b
    Example:
        newsarchive alerts add drones "drone shot down over the Black Sea" --language en --language it
    """
    from .live.alerts import add_alert

    alert = add_alert(name, " ".join(query), index_dir, mode, sources, languages, threshold, webhook)
    echo(f"alert {alert.name}: {alert.query!r} ({alert.mode}, threshold {alert.threshold:g})")


@alerts.command("list")
@index_dir_option
def alerts_list(index_dir: Path) -> None:
    """The saved alerts, what each matches on, and how many articles it matched."""
    from .live.alerts import listed

    found = listed(index_dir)
    if not found:
        echo(f"no alert is saved in {index_dir}/: `newsarchive alerts add NAME QUERY` saves one")
    for alert, matched in found:
        filters = "".join(f", source {s}" for s in alert.sources) + "".join(f", language {x}" for x in alert.languages)
        echo(f"{alert.name}: {alert.query!r} ({alert.mode}{filters}); {_plural(matched, 'match')}")
        if alert.mode == "lexical":
            echo("  an article matches when a passage holds every word of the query")
        else:
            echo(
                f"  an article matches when a passage's similarity to the query beats the query's to neutral news "
                f"by {alert.threshold:g}"
            )


@alerts.command("show")
@click.argument("name")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only matches found on or after this day.")
@click.option("--json", "as_json", is_flag=True, help="Print the matches as a JSON array of objects.")
@index_dir_option
def alerts_show(name: str, since: Any, as_json: bool, index_dir: Path) -> None:
    """The articles alert NAME matched, newest first, each with the passage that matched."""
    import dataclasses

    from .live.alerts import matches_of

    found = matches_of(name, index_dir, since.date() if since else None)
    if as_json:
        emit(inert_json([dataclasses.asdict(m) for m in found], default=str, indent=2))
        return
    width = shutil.get_terminal_size((100, 20)).columns
    for match in found:
        where = f"{match.source or '?'}, {match.url or match.article_id}"
        echo(f"{match.matched_at:%Y-%m-%d %H:%M}  {match.title}  ({where})")
        echo(textwrap.fill(match.passage, width, initial_indent="    ", subsequent_indent="    "))
    if not found:
        echo(f"alert {name} has matched nothing yet")


@alerts.command("remove")
@click.argument("name")
@index_dir_option
def alerts_remove(name: str, index_dir: Path) -> None:
    """Remove the alert NAME and what it matched."""
    from .live.alerts import remove_alert

    remove_alert(name, index_dir)
    echo(f"alert {name} removed")


def _period(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="newsarchive")
