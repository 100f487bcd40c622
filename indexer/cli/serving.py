"""The archive as a service: ``serve`` (the HTTP API), ``keys`` (who may use it)."""

from __future__ import annotations

from pathlib import Path

import click

from indexer.cli.common import Group, echo, emit, index_dir_option
from indexer.terminal import inert_json


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="The port.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes serving requests; each loads the model once.",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve without keys, even if some exist. Without it, requests need a key once one exists, and a host "
    "other than loopback is refused until one does.",
)
@click.option(
    "--rate",
    type=click.IntRange(0),
    default=600,
    show_default=True,
    help="Requests a minute per key (per address without keys); past it, 429. 0: no limit.",
)
@click.option(
    "--max-body",
    type=click.IntRange(1024),
    default=1 << 20,
    show_default=True,
    help="Bytes of a request's body (a question, a SQL query); past it, 413.",
)
@click.option(
    "--max-upload",
    type=click.IntRange(1024),
    default=64 << 20,
    show_default=True,
    help="Bytes of a body of articles (POST /v1/articles); past it, 413.",
)
@index_dir_option
def serve(
    host: str, port: int, workers: int, no_auth: bool, rate: int, max_body: int, max_upload: int, index_dir: Path
) -> None:
    """Serve the archive as a JSON API under /v1, with its OpenAPI docs at /docs.

    GET /v1/search, POST /v1/ask, GET /v1/match and /v1/coverage, GET /v1/articles/ID, POST /v1/sql (read-only),
    GET /v1/alerts and /v1/alerts/NAME/matches, POST /v1/articles (a write key), GET /v1/info and GET /healthz:
    each returns what the matching command prints with --json. Requests carry `Authorization: Bearer KEY`
    (`newsarchive keys create`). Each request reads the commit current when it came: what `index` and `follow`
    commit is served from the next one, without a restart. A language model for `ask` is configured as for the
    CLI ($NEWSARCHIVE_LLM_URL, ..._MODEL, ..._API_KEY).

    \b
    Example:
        newsarchive keys create newsroom-cms --scope write
        newsarchive serve --host 0.0.0.0 --port 8000 --workers 2
        curl -H "Authorization: Bearer $KEY" "http://127.0.0.1:8000/v1/search?q=MQ-9+drone&k=3"
    """
    from indexer.service.limits import Limits
    from indexer.service.server import needs_keys, run

    auth = needs_keys(index_dir, host, no_auth)
    if not auth and not no_auth:
        echo(f"No API key exists for {index_dir}/: serving without keys, on {host} only.", err=True)
    run(index_dir, host, port, workers, auth, Limits(rate, max_body, max_upload))


@click.group(cls=Group)
def keys() -> None:
    """The keys of the HTTP API (`serve`): only their hashes are kept, in the index directory.

    \b
    Example:
      newsarchive keys create factcheck --scope read
      newsarchive keys list
      newsarchive keys revoke factcheck
    """


@keys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "write"]),
    default="read",
    show_default=True,
    help="read: search, ask, count and SQL; write: also add articles.",
)
@index_dir_option
def keys_create(name: str, scope: str, index_dir: Path) -> None:
    """Make a key called NAME and print it, alone on the last line: it is shown only this once.

    NAME is 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'.
    """
    from indexer.service.keys import create

    key = create(index_dir, name, scope)
    echo(f"key {name} ({scope}) created for {index_dir}/; it is not kept, so store it now:", err=True)
    emit(key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as a JSON array of objects.")
@index_dir_option
def keys_list(as_json: bool, index_dir: Path) -> None:
    """The keys: name, scope and when each was made (never the key)."""
    from indexer.service.keys import listed

    found = listed(index_dir)
    if as_json:
        emit(inert_json([{"name": k.name, "scope": k.scope, "created": k.created} for k in found], indent=2))
        return
    if not found:
        echo(f"no API key exists for {index_dir}/: `newsarchive keys create NAME` makes one")
    for key in found:
        echo(f"{key.name}  {key.scope}  created {key.created}")


@keys.command("revoke")
@click.argument("name")
@index_dir_option
def keys_revoke(name: str, index_dir: Path) -> None:
    """Revoke the key NAME: a running server refuses it from its next request."""
    from indexer.service.keys import revoke

    revoke(index_dir, name)
    echo(f"key {name} revoked")


@click.command("mcp")
@index_dir_option
def mcp(index_dir: Path) -> None:
    """Serve the archive's tools to an AI assistant over MCP, on standard input and output.

    The tools are search, ask, get_article, match and coverage; each returns cited passages with their article,
    source, date and URL, as the API does (`serve` offers the same tools at /mcp, behind its keys). A desktop
    assistant starts this command itself: docs/serving.md has a configuration to copy.

    \b
    Example:
        newsarchive mcp --index-dir /srv/archive
    """
    from indexer.answers.llm import Generator
    from indexer.retrieval.archive import Served
    from indexer.service.mcp import create_mcp

    served = Served(index_dir)
    served.latest().embedder.embed_queries(["warm up"])  # a missing index is one line now, not a failed tool later
    create_mcp(served, Generator.configured()).run("stdio")
