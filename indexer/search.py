"""The search API shared by the CLI and the app: a query in, ranked passages (:class:`Hit`) out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the date becomes an ISO 8601 string."""
        data = asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        return data


def search(archive: Archive, query: str, k: int = 10) -> list[Hit]:
    """Rank the archive's passages by meaning against ``query``, in any language the model knows.

    Args:
        archive: An opened index.
        query: The question or keywords.
        k: How many passages to return at most.

    Returns:
        Up to ``k`` hits, best first; ``score`` is the cosine similarity between query and passage.

    Raises:
        NewsarchiveError: The query is empty or ``k`` is not positive.
    """
    if not query or not query.strip():
        raise NewsarchiveError("the query is empty: type a question or some keywords")
    if k < 1:
        raise NewsarchiveError(f"k must be at least 1, not {k}")
    vector = archive.embedder.embed_queries([query.strip()])[0]
    ranked = archive.vectors.search(vector, k)
    rows = archive.store.hits([passage_id for passage_id, _ in ranked])
    return [
        Hit(rank=rank, score=score, **rows[passage_id])
        for rank, (passage_id, score) in enumerate(ranked, start=1)
        if passage_id in rows
    ]
