"""Where people's SQL runs -- ``newsarchive sql`` and ``sql --write`` -- so that no query can change, leak or stall
more than its own answer.

Three guards, each closing what the others leave open:

- **Statements, read by DuckDB's own parser** (:func:`check_statements`) before anything runs: ``sql`` runs only
  reading statements (:data:`READING`: SELECT and its kin -- WITH, FROM-first, VALUES, DESCRIBE, SHOW, SUMMARIZE,
  PIVOT with an IN list -- and EXPLAIN of one), ``sql --write`` those and INSERT, UPDATE and DELETE
  (:data:`EDITING`). COPY, EXPORT, ATTACH, INSTALL, LOAD, CREATE, DROP, ALTER, SET, PRAGMA, CALL and the rest are
  refused, naming the statement. This is the guard that stops a COPY: the files a query may read, it could write.
- **The connection** (:func:`confine`): no file access (``enable_external_access=false``) but reading the exact files
  the commit names (``allowed_paths``, not a directory: a new file beside them cannot be read) and spilling to a
  private temporary directory; no extension installed or loaded on demand; a memory limit; then the configuration
  locked, so no statement can undo any of it (``SET``, ``RESET`` and ``PRAGMA`` fail).
- **Time** (:func:`running`): DuckDB has no statement timeout, so a timer interrupts the connection after the limit,
  and the query fails with "stopped after N s".

Tested by ``tests/test_hostile_sql.py``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb

from indexer.errors import NewsarchiveError, QueryRefused

TIMEOUT = 60.0  # seconds a query of people's may run (`sql --timeout`); 0 is no limit
MEMORY = "1GB"  # DuckDB's memory for people's SQL; it spills what does not fit to a temporary directory
READING = frozenset({"SELECT", "EXPLAIN"})  # statement types (duckdb.StatementType) of `newsarchive sql`
CHANGING = frozenset({"INSERT", "UPDATE", "DELETE"})
EDITING = READING | CHANGING  # of `newsarchive sql --write`
_LIMIT_HINT = "narrow it, or give it longer (sql --timeout; the API's timeout, up to its limit)"

_SPACE = r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)"  # blanks and comments between keywords
_FIRST_WORD = re.compile(rf"(?s)^{_SPACE}*(\w+)")
_EXPLAIN = re.compile(rf"(?is)^{_SPACE}*explain\b{_SPACE}*(analy[sz]e\b{_SPACE}*)?")
_OPTIONS = re.compile(rf"(?s)^\([^)]*\){_SPACE}*")  # EXPLAIN (FORMAT json) ...


def check_statements(query: str, allowed: frozenset[str] = READING) -> None:
    """Refuse ``query`` unless each of its statements is of a type in ``allowed`` (by DuckDB's parser).

    Raises:
        QueryRefused: The query is empty or does not parse, or a statement is of another type.
    """
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as error:
        raise QueryRefused(first_line(error)) from None
    if not statements:
        raise QueryRefused("the query is empty: give a SQL statement")
    for statement in statements:
        name = _first_word(statement.query)
        try:
            kind = statement.type.name
        except ValueError:  # a type DuckDB's Python API does not name (UPDATE EXTENSIONS)
            raise QueryRefused(_refusal(name, "", allowed)) from None
        if kind == "EXPLAIN":  # EXPLAIN ANALYZE runs what it explains: it is what is explained that counts
            kind = _explained(statement.query)
            name = f"EXPLAIN {kind}" if kind != "EXPLAIN" else "EXPLAIN of what is not a SELECT"
        if kind not in allowed or kind == "EXPLAIN":
            raise QueryRefused(_refusal(name, kind, allowed))


def _first_word(text: str) -> str:
    found = _FIRST_WORD.match(text)
    return found.group(1).upper() if found else ""


def _refusal(name: str, kind: str, allowed: frozenset[str]) -> str:
    """Why a statement ``name`` (its first word) of type ``kind`` is not run, in one line."""
    if kind and name != kind and not name.startswith("EXPLAIN"):
        name = f"{name} (a {kind} statement)"
    if kind in CHANGING:
        return f"{name} changes the tables, and `newsarchive sql` is read-only: add --write"
    also = ", and INSERT, UPDATE or DELETE on articles, passages and duplicates" if "UPDATE" in allowed else ""
    return f"{name} is not allowed here: newsarchive runs SELECT (WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN){also}"


def _explained(text: str) -> str:
    """The type of the one statement an EXPLAIN shows, or "EXPLAIN" when that cannot be told for sure."""
    found = _EXPLAIN.match(text)
    if not found:
        return "EXPLAIN"
    rest = text[found.end() :]
    kinds = set()
    for inner in (rest, _OPTIONS.sub("", rest, count=1)):  # "EXPLAIN (SELECT 1)" has no options
        with contextlib.suppress(duckdb.Error, ValueError):
            statements = duckdb.extract_statements(inner)
            if len(statements) == 1:
                kinds.add(statements[0].type.name)
    return kinds.pop() if len(kinds) == 1 else "EXPLAIN"


def confine(db: duckdb.DuckDBPyConnection, readable: Iterable[Path], memory_limit: str) -> None:
    """Sandbox ``db`` for people's SQL: it reads only the files ``readable``, writes none, loads no extension, uses
    at most ``memory_limit`` (spilling the rest to a temporary directory of its own), and cannot change that."""
    spill = tempfile.mkdtemp(prefix="newsarchive-sql-")
    weakref.finalize(db, shutil.rmtree, spill, True)
    settings = (
        ("memory_limit", memory_limit),
        ("temp_directory", spill),
        ("allowed_paths", sorted({str(Path(path).resolve()) for path in readable})),
        ("enable_external_access", False),
        ("autoinstall_known_extensions", False),
        ("autoload_known_extensions", False),
        ("lock_configuration", True),  # last: from here on, SET, RESET and PRAGMA fail
    )
    for name, value in settings:
        db.execute(f"SET {name} = ?", [value])


@contextlib.contextmanager
def running(db: duckdb.DuckDBPyConnection, timeout: float | None = TIMEOUT) -> Iterator[None]:
    """Run people's SQL on ``db`` for at most ``timeout`` seconds (``None`` or 0: no limit); a DuckDB error is
    one line.

    Raises:
        QueryRefused: The time limit was reached (the statement was interrupted).
        NewsarchiveError: DuckDB refused or failed the statement.
    """
    lock, state = threading.Lock(), {"inside": True, "stopped": False}

    def stop() -> None:
        with lock:
            if state["inside"]:
                state["stopped"] = True
                db.interrupt()

    timer = threading.Timer(timeout, stop) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    except duckdb.Error as error:
        if state["stopped"]:
            raise QueryRefused(f"the query was stopped after {timeout:g} s: {_LIMIT_HINT}") from None
        if isinstance(error, duckdb.PermissionException):
            raise QueryRefused(f"{first_line(error)}: newsarchive's SQL reads the archive's tables only") from None
        raise NewsarchiveError(first_line(error)) from None
    finally:
        with lock:
            state["inside"] = False
        if timer is not None:
            timer.cancel()


def first_line(error: BaseException) -> str:
    """The first line of DuckDB's message: the rest is a caret under the query, or context for its developers."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
