"""The ``newsarchive`` group, which gathers every group's commands, and the console script's entry point.

Heavy libraries (torch, sentence-transformers, FAISS) are imported inside the commands that need them, so that
``--help``, ``info`` and ``sql`` start instantly.
"""

from __future__ import annotations

import click

from indexer.cli.adding import index, remove
from indexer.cli.archive import check_index, info, optimize, sql
from indexer.cli.asking import ask, evaluate, search
from indexer.cli.common import CONTEXT, Group
from indexer.cli.counting import coverage
from indexer.cli.following import alerts, feeds, follow_feeds
from indexer.cli.serving import keys, mcp, serve


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(package_name="newsarchive", message="%(prog)s %(version)s")
def cli() -> None:
    """Search a news archive by meaning, in English, Italian and about 100 other languages.

    Index article files once, then search them from here, from the web app, or in SQL.

    \b
    Example:
        newsarchive index seeds/
        newsarchive search "what happened to the MQ-9 drone"
    """


# Registered in this order, which docs/cli.md follows (--help sorts them).
cli.add_command(index)
cli.add_command(remove)
cli.add_command(optimize)
cli.add_command(check_index)
cli.add_command(search)
cli.add_command(coverage)
cli.add_command(ask)
cli.add_command(sql)
cli.add_command(evaluate)
cli.add_command(info)
cli.add_command(feeds)
cli.add_command(follow_feeds)
cli.add_command(alerts)
cli.add_command(serve)
cli.add_command(keys)
cli.add_command(mcp)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="newsarchive")


if __name__ == "__main__":
    main()
