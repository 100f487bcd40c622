"""The archive's tools for AI assistants, over MCP (the official SDK): ``newsarchive mcp`` on stdio, and ``/mcp``
on ``newsarchive serve`` (streamable HTTP, behind the same keys as the API).

Each tool returns what the matching endpoint of the API returns: cited passages with their article, source, date
and URL, from the commit current when it was called.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import date
from importlib.metadata import version
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from indexer.errors import NewsarchiveError
from indexer.retrieval.archive import Served
from indexer.service import queries
from indexer.terminal import inert_json

INSTRUCTIONS = (
    "A news archive, searchable in any language. search finds passages by meaning and words; ask answers a question "
    "with sentences cited from the passages; match and coverage count articles with an exact query language "
    '("quoted phrases", drone*, AND, OR, NOT, source:, language:, published:2025-03); get_article reads one article '
    "whole. Cite passages with their source, date and URL."
)
Mode = Literal["hybrid", "dense", "lexical"]
_READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)


def create_mcp(served: Served, generator: Any = None) -> MCPServer:
    """The MCP server over ``served``; ``generator`` writes ``ask``'s answers, as for the API."""
    server = MCPServer(name="newsarchive", version=version("newsarchive"), instructions=INSTRUCTIONS)

    @server.tool(annotations=_READ_ONLY)
    @_explained
    def search(
        query: str,
        k: int = 5,
        mode: Mode = "hybrid",
        source: list[str] | None = None,
        language: list[str] | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> dict[str, Any]:
        """The k passages (at most 1,000) that best match a question or keywords, in any language: each with its
        article's id, title, source, date, URL and language, and the other articles of its story. mode: hybrid
        (meaning and words), dense (meaning only) or lexical (words only); source, language, since and until
        (YYYY-MM-DD) narrow the articles."""
        k = max(1, min(k, queries.MAX_K))
        return _plain(queries.search(served.latest(), query, k, mode, source or (), language or (), since, until))

    @server.tool(annotations=_READ_ONLY)
    @_explained
    def ask(
        question: str,
        mode: Mode = "hybrid",
        source: list[str] | None = None,
        language: list[str] | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> dict[str, Any]:
        """An answer to the question from the archive: "answer" is its prose with [n] markers, each sentence a
        quote of (or, when the server has a language model, a sentence verified against quotes of) the numbered
        "sources", which carry their article, source, date and URL. "found" is false when nothing in the archive
        is relevant enough."""
        archive = served.latest()
        options = {"sources": source or (), "languages": language or (), "since": since, "until": until}
        return _plain(queries.ask(archive, question, generator, mode, **options))

    @server.tool(annotations=_READ_ONLY)
    @_explained
    def get_article(article_id: str) -> dict[str, Any]:
        """One article whole: its columns (title, body, source, URL, date, language, author), its passages in
        order with their offsets in the body, and the articles of its story (copies, edits and translations)."""
        return _plain(queries.article(served.latest(), article_id))

    @server.tool(annotations=_READ_ONLY)
    @_explained
    def match(
        query: str,
        sort: Literal["date", "relevance"] = "date",
        limit: int = 100,
        source: list[str] | None = None,
        language: list[str] | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> dict[str, Any]:
        """Every article an exact query matches (the first limit, at most 10,000), each with its cited passage,
        and the matches counted by source, language and day. The query language: words (stemmed), "quoted
        phrases", drone* (prefixes), AND (the default), OR, NOT or -word, parentheses, and the fields source:,
        language:, author:, title: and published:2025-01-01..2025-03-31."""
        limit = max(1, min(limit, 10_000))
        report = queries.match(
            served.latest(), query, "MCP match", sort, source or (), language or (), since, until, limit
        )
        return _plain(report)

    @server.tool(annotations=_READ_ONLY)
    @_explained
    def coverage(
        query: str,
        by: Literal["day", "week", "month", "year"] = "day",
        source: list[str] | None = None,
        by_source: bool = False,
    ) -> dict[str, Any]:
        """How many articles an exact query (as match's) matches per period, beside all articles of the same
        sources in that period, and the share; by_source gives a row per source and period."""
        options = {"sources": source or (), "by_source": by_source}
        return _plain(queries.coverage(served.latest(), query, "MCP coverage", by, **options))

    return server


def _explained(tool: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """The tool, whose expected failures (a malformed query, an unknown article, no index) reach the assistant
    as their one line, where the SDK would say only that the tool failed."""

    @functools.wraps(tool)
    def explained(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return tool(*args, **kwargs)
        except NewsarchiveError as error:
            raise ToolError(str(error)) from None

    return explained


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """JSON types only (dates as ISO text), as the API sends them."""
    return json.loads(inert_json(data, default=str))
