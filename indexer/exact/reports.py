"""The JSON objects of exact counting, as ``search --match --json`` and ``coverage --json`` print them and the API
returns them: what was asked of which commit, then the matches and their facets, or the periods."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pyarrow as pa

from indexer.exact.counts import by_meaning, coverage, facets, matches
from indexer.exact.export import about
from indexer.exact.match import Condition
from indexer.exact.query import with_filters
from indexer.storage import Snapshot

THRESHOLD_NOTE = (
    "articles with a passage whose cosine similarity to the question exceeds its similarity to everyday news by at "
    "least {margin:g}"
)


def match_report(
    snapshot: Snapshot,
    text: str,
    command: str,
    sort: str = "date",
    sources: Sequence[str] = (),
    languages: Sequence[str] = (),
    since: date | None = None,
    until: date | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Every article the exact query ``text`` matches, narrowed by the filters, with its cited passage, and the
    matches counted by source, language and day; with ``limit``, the first ``limit`` and ``truncated``.

    Raises:
        QueryError: The query is malformed; the message names the character.
    """
    query = with_filters(text, tuple(sources), tuple(languages), since, until)
    condition = Condition(snapshot, query)
    rows = matches(snapshot, condition, sort=sort, limit=None if limit is None else limit + 1).to_pylist()
    counted = {name: table.to_pylist() for name, table in facets(snapshot, condition).items()}
    report = {**about(command, query, snapshot.directory, snapshot.commit), "facets": counted}
    if limit is not None:
        report["truncated"] = len(rows) > limit
        rows = rows[:limit]
    return {**report, "matches": rows}


def coverage_counts(
    snapshot: Any,
    text: str,
    command: str,
    by: str = "day",
    sources: Sequence[str] = (),
    by_source: bool = False,
    semantic: bool = False,
    threshold: float | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Matching articles per period beside all articles of the same sources, and what was asked of which commit
    (with ``approximate``, the rule, when counting by meaning).

    ``semantic`` counts by meaning, with the margin ``threshold`` (the alerts' calibrated
    :data:`indexer.live.alerts.THRESHOLD`, as callers pass it); ``snapshot`` must then be an
    :class:`indexer.retrieval.archive.Archive`, with its model.

    Raises:
        QueryError: The exact query is malformed.
        NewsarchiveError: ``by`` is not a period, or ``semantic`` without a threshold.
    """
    counted: Any = text
    described: dict[str, Any] = about(
        command + (" --semantic" if semantic else ""), text, snapshot.directory, snapshot.commit
    )
    if semantic:
        if threshold is None:
            from indexer.errors import NewsarchiveError

            raise NewsarchiveError("counting by meaning needs a threshold")
        counted = by_meaning(snapshot, snapshot.embedder, text, threshold)
        described["approximate"] = THRESHOLD_NOTE.format(margin=threshold)
    return coverage(snapshot, counted, by=by, sources=sources, by_source=by_source), described


def coverage_report(snapshot: Any, text: str, command: str, by: str = "day", **options: Any) -> dict[str, Any]:
    """:func:`coverage_counts` as one JSON-ready object: what was asked, ``by``, and the ``periods``."""
    table, described = coverage_counts(snapshot, text, command, by, **options)
    return {**described, "by": by, "periods": table.to_pylist()}
