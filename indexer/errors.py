"""Expected failures. Each carries a one-line message for people; the CLI prints it without a traceback."""

from __future__ import annotations


class NewsarchiveError(Exception):
    """Base class for every failure that newsarchive expects and explains."""


class IndexNotFound(NewsarchiveError):
    """There is no index where one was asked for."""


class NotFound(NewsarchiveError):
    """What was asked for by name is not there: an article, an alert."""


class IndexMismatch(NewsarchiveError):
    """The index was built with another model, other settings, or another schema version."""


class IndexBusy(NewsarchiveError):
    """Another process is writing the index."""


class NotAnIndex(NewsarchiveError):
    """A folder asked to hold an index holds something else, which a writer must not touch."""


class QueryRefused(NewsarchiveError):
    """People's SQL that is not run, or was stopped: a statement of a kind not allowed, or a time limit reached."""


class EditRefused(NewsarchiveError):
    """A change by ``sql --write`` that would leave the index unsound; nothing was written."""


class InputProblem(NewsarchiveError):
    """An input file (or one line of it) cannot be indexed.

    Attributes:
        path: The file.
        line: The 1-based line, for JSONL files; ``None`` for whole files.
        reason: What is wrong, in words.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path, self.reason, self.line = path, reason, line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class Note(InputProblem):
    """Something a run passed over without failing, and why: a file in a folder that is not an article, a link
    whose page was not fetched (its entry's summary was indexed instead). Shown to people; the exit code stays 0.
    ``label`` is the word the command line puts before it."""

    label = "note"


def unforeseen(error: Exception) -> str:
    """Why an input could not be read, for a failure nobody foresaw (a parser that breaks on it): the last-resort
    guards that keep one input's fault from stopping the others say this in its problem line.

    Raises:
        ImportError: ``error`` itself when it is one: a broken install is no input's fault, and the command line
            says how to repair it.
    """
    if isinstance(error, ImportError):
        raise error
    return f"could not be read ({type(error).__name__}: {error})"
