"""Putting articles into the index and taking them out: ``index`` and ``remove``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from indexer import config
from indexer.cli.common import echo, index_dir_option, model_option, plural


@click.command()
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
    "exact search up to 100,000 passages, IVF with one-bit RaBitQ codes beyond, candidates scored again exactly). "
    "Changing it re-embeds nothing.",
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
    "else $RAY_ADDRESS, else a local Ray on this machine. This process alone writes the index.",
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
    Readers keep seeing the previous version until the run commits: at its end, and every 20,000 new or changed
    articles in a large run (a run killed and started again embeds only what it had not committed).

    \b
    Examples:
        newsarchive index seeds/ ~/saved-articles/ https://example.com/news/feed.xml
        newsarchive index /shared/articles/ --ray ray://head:10001
    """
    from indexer.ingest.cluster import ClusterOptions
    from indexer.ingest.index import index_paths
    from indexer.live.alerts import run_alerts

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

    from indexer.reading.fetch_policy import allowing_private

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
                run_alerts=run_alerts,
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
        raise click.ClickException(f"{plural(len(report.problems), 'input')} skipped (listed above)")


def _summary(report: Any, index_dir: Path) -> None:
    echo(
        f"{plural(report.added, 'article')} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed; {plural(report.embedded, 'passage')} embedded in {report.seconds:.1f} s.\n"
        f"{index_dir}/ now holds {plural(report.articles, 'article')} in {plural(report.passages, 'passage')}."
    )


@click.command()
@click.argument("article_ids", nargs=-1, required=True)
@index_dir_option
def remove(article_ids: tuple[str, ...], index_dir: Path) -> None:
    """Remove articles, with their passages, by ARTICLE_ID.

    An id that is not in the index is an error, and then nothing is removed.

    \b
    Example:
        newsarchive remove 000_3b61c3f86574234b
    """
    from indexer.ingest.index import remove_articles

    _summary(remove_articles(article_ids, index_dir), index_dir)
