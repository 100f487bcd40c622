"""What every command group shares: how to print, the group class that turns failures into one line, and the
options several commands take."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from indexer import config
from indexer.errors import NewsarchiveError
from indexer.terminal import inert

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


class Group(click.Group):
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


MODES = ("hybrid", "dense", "lexical")  # indexer.retrieval.search.MODES, repeated so that --help needs no numpy
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


def filters(sources: tuple[str, ...], languages: tuple[str, ...], since: Any, until: Any) -> Any:
    from indexer.retrieval.search import Filters

    return Filters(sources, languages, since.date() if since else None, until.date() if until else None)


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


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
