"""What the API's endpoints and the MCP server's tools both answer, as JSON-ready objects, from one commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from indexer.retrieval.archive import Archive

MAX_K = 1000  # as `search -k`


def search(
    archive: Archive,
    query: str,
    k: int = 5,
    mode: str = "hybrid",
    sources: Sequence[str] = (),
    languages: Sequence[str] = (),
    since: date | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    """``search --json``'s object, with the commit."""
    from indexer.retrieval.search import Filters
    from indexer.retrieval.search import search as run_search

    filters = Filters(tuple(sources), tuple(languages), since, until)
    hits = run_search(archive, query, k=k, filters=filters, mode=mode)
    return {"query": query, "mode": mode, "commit": archive.commit, "hits": [hit.to_dict() for hit in hits]}


def match(archive: Archive, query: str, command: str, *args: Any, **options: Any) -> dict[str, Any]:
    """``search --match --json``'s object (:func:`indexer.exact.reports.match_report`, which takes the same
    arguments), but the index's path."""
    from indexer.exact.reports import match_report

    return _served(match_report(archive, query, command, *args, **options))


def coverage(archive: Archive, query: str, command: str, by: str = "day", **options: Any) -> dict[str, Any]:
    """``coverage --json``'s object (:func:`indexer.exact.reports.coverage_report`), but the index's path."""
    from indexer.exact.reports import coverage_report

    return _served(coverage_report(archive, query, command, by, **options))


def _served(report: dict[str, Any]) -> dict[str, Any]:
    """A report without the ``index`` directory it names for the CLI: where a server keeps it is its own business."""
    return {key: value for key, value in report.items() if key != "index"}


def article(archive: Archive, article_id: str) -> dict[str, Any]:
    """The article, its passages and its story (:func:`indexer.retrieval.info.article_of`), with the commit.

    Raises:
        NotFound: No article has that id in this commit.
    """
    from indexer.errors import NotFound
    from indexer.retrieval.info import article_of

    found = article_of(archive, article_id)
    if found is None:
        raise NotFound(f"no article {article_id!r} in commit {archive.commit}")
    return {**found, "commit": archive.commit}


def ask(
    archive: Archive,
    question: str,
    generator: Any = None,
    mode: str = "hybrid",
    sources: Sequence[str] = (),
    languages: Sequence[str] = (),
    since: date | None = None,
    until: date | None = None,
    answer_language: str | None = None,
    translate: bool = False,
) -> dict[str, Any]:
    """``ask --json``'s object, with the commit: written by ``generator`` if given, else quoted.

    Raises:
        NewsarchiveError: ``translate`` or ``answer_language`` without a generator, or a question that is empty
            or too long.
    """
    from indexer.answers import generate, quotes
    from indexer.errors import NewsarchiveError
    from indexer.retrieval.search import Filters

    if (translate or answer_language) and generator is None:
        raise NewsarchiveError("translating and answer_language need a language model, and this server has none")
    filters = Filters(tuple(sources), tuple(languages), since, until)
    if generator is None:
        answer = quotes.ask(archive, question, filters=filters, mode=mode)
    else:
        answer = generate.ask(archive, question, generator, filters=filters, mode=mode, language=answer_language)
    data = {**answer.to_dict(), "commit": archive.commit}
    if translate:
        translated, _ = generate.translations(generator, answer)
        data["translations"] = {str(number): text for number, text in translated.items()}
    return data
