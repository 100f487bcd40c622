"""The search API shared by the CLI and the app: a query in, ranked passages (:class:`Hit`) out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from .archive import Archive
from .errors import NewsarchiveError


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with what a citation needs.

    ``char_start``/``char_end`` locate ``text`` in the article's text (``articles.text`` in DuckDB).
    """

    rank: int
    score: float
    passage_id: int
    article_id: str
    title: str
    heading: str | None
    text: str
    char_start: int
    char_end: int
    paragraph: int
    source: str | None
    published: datetime | None
    url: str | None
    language: str | None

    def place(self, title_chars: int = 80) -> list[str]:
        """Where the passage comes from, for a citation line: title (shortened), section, ¶ n, source, date."""
        title = self.title if len(self.title) <= title_chars else self.title[: title_chars - 1] + "…"
        published = self.published.date().isoformat() if self.published else None
        return [part for part in (title, self.heading, f"¶ {self.paragraph}", self.source, published) if part]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the date becomes an ISO 8601 string."""
        data = asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        return data


@dataclass(frozen=True)
class Filters:
    """Which articles a search may return; empty means no restriction.

    ``since`` and ``until`` bound the publication date, both inclusive; articles without a date are then left out.
    """

    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None

    def __bool__(self) -> bool:
        return bool(self.sources or self.languages or self.since or self.until)


def search(archive: Archive, query: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
    """Rank the archive's passages by meaning against ``query``, in any language the model knows.

    Args:
        archive: An opened index.
        query: The question or keywords.
        k: How many passages to return at most.
        filters: Restrict the hits to some sources, languages or dates.

    Returns:
        Up to ``k`` hits, best first; ``score`` is the cosine similarity between query and passage.

    Raises:
        NewsarchiveError: The query is empty or ``k`` is not positive.
    """
    return search_vector(archive, embed_query(archive, query), k, filters)


def embed_query(archive: Archive, query: str) -> np.ndarray:
    """The query's vector, as the archive's model computes it; an empty query is an error."""
    if not query or not query.strip():
        raise NewsarchiveError("the query is empty: type a question or some keywords")
    return archive.embedder.embed_queries([query.strip()])[0]


def search_vector(archive: Archive, vector: np.ndarray, k: int = 10, filters: Filters | None = None) -> list[Hit]:
    """:func:`search` for a query that is already embedded (callers that need the vector too embed it once)."""
    if k < 1:
        raise NewsarchiveError(f"k must be at least 1, not {k}")
    allowed = archive.store.passage_ids_where(**asdict(filters)) if filters else None
    ranked = archive.vectors.search(vector, k, allowed)
    rows = archive.store.hits([passage_id for passage_id, _ in ranked])
    return [
        Hit(rank=rank, score=score, **rows[passage_id])
        for rank, (passage_id, score) in enumerate(ranked, start=1)
        if passage_id in rows
    ]
