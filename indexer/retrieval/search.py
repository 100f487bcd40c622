"""The search API shared by the CLI and the app: a query in, ranked passages (:class:`Hit`) out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from typing import Any

import numpy as np

from indexer.errors import NewsarchiveError
from indexer.models import centering
from indexer.retrieval.archive import Archive
from indexer.storage.duplicates import story_order
from indexer.text.language import detect

MODES = ("hybrid", "dense", "lexical")
CANDIDATES = 100  # hybrid search fuses the best this many passages of each kind; also re-scored, dense
# The vector index ranks by the uncentered similarity, which favours the question's language: in an archive of
# several languages it gives this many times CANDIDATES (at most), for centering to re-rank.
LANGUAGE_WIDENING = 3
# A translation of a story's best passage scores this close to it (centered similarities, hybrid evidence).
STORY_LANGUAGE_MARGIN = 0.05
# A question or keywords; the model reads about 500 words of it, and a longer text costs tokenizing and lexical
# lookups for nothing.
MAX_QUESTION_CHARS = 4_000


@dataclass(frozen=True)
class Duplicate:
    """Another article of a hit's story: the same report in another outlet or language."""

    article_id: str
    title: str
    source: str | None
    url: str | None
    published: datetime | None
    language: str | None


_DUPLICATE_FIELDS = [field.name for field in fields(Duplicate)]


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with what a citation needs.

    ``score`` ranks the hits: in ``dense`` mode the cosine similarity (in an archive of several languages, with
    each language's mean taken out: :mod:`indexer.models.centering`), in ``lexical`` mode the weighted BM25 evidence
    (:mod:`indexer.indexes.lexical`), in ``hybrid`` mode the first plus lexical evidence. ``similarity`` is the plain
    cosine similarity to the query whenever the query was embedded (``None`` in lexical search).
    ``char_start``/``char_end`` locate ``text`` in the article's body (``articles.body`` in DuckDB). Of a story run by
    several outlets, only the article that ranks best gives hits; ``also_in`` lists the story's other articles
    (``articles.story_id``).
    """

    rank: int
    score: float
    similarity: float | None
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
    story_id: str
    also_in: tuple[Duplicate, ...] = ()

    def place(self, title_chars: int = 80) -> list[str]:
        """Where the passage comes from, for a citation line: title (shortened), section, ¶ n, source, date."""
        title = self.title if len(self.title) <= title_chars else self.title[: title_chars - 1] + "…"
        return [
            part for part in (title, self.heading, f"¶ {self.paragraph}", self.source, _day(self.published)) if part
        ]

    def elsewhere(self) -> list[str]:
        """The story's other articles for an "also in" line: source (else title), language, date."""
        return [
            " ".join(filter(None, (d.source or d.title, f"({d.language})" if d.language else None, _day(d.published))))
            for d in self.also_in
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; dates become ISO 8601 strings."""
        data = asdict(self)
        for item in (data, *data["also_in"]):
            item["published"] = item["published"].isoformat() if item["published"] else None
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


def search(
    archive: Archive, query: str, k: int = 10, filters: Filters | None = None, mode: str = "hybrid"
) -> list[Hit]:
    """Rank the archive's passages against ``query``, in any language the model knows.

    Args:
        archive: An opened index.
        query: The question or keywords.
        k: How many passages to return at most (a story run by several outlets is read in one of them).
        filters: Restrict the hits to some sources, languages or dates.
        mode: ``hybrid`` (meaning and words, the default), ``dense`` (meaning only) or ``lexical`` (words only).

    Returns:
        Up to ``k`` hits, best first.

    Raises:
        NewsarchiveError: The query is empty, ``k`` is not positive or ``mode`` is unknown.
    """
    vector = embed_query(archive, query) if _check_mode(mode) != "lexical" else None
    return search_embedded(archive, query, vector, k, filters, mode)


def embed_query(archive: Archive, query: str) -> np.ndarray:
    """The query's vector, as the archive's model computes it; an empty query is an error."""
    return archive.embedder.embed_queries([check_question(query)])[0]


def search_embedded(
    archive: Archive,
    query: str,
    vector: np.ndarray | None,
    k: int = 10,
    filters: Filters | None = None,
    mode: str = "hybrid",
) -> list[Hit]:
    """:func:`search` for a query whose vector the caller already has (``None`` is enough for lexical search)."""
    query = check_question(query)
    if k < 1:
        raise NewsarchiveError(f"k must be at least 1, not {k}")
    if _check_mode(mode) != "lexical" and vector is None:
        raise NewsarchiveError(f"{mode} search needs the query's vector")
    language = detect(query)
    ranked, similarities = _rank(archive, query, vector, max(k, CANDIDATES), filters, mode, language)
    rows = _one_article_per_story(archive, ranked, k, language)
    ids = list(rows)
    if vector is not None:
        similarities = _similarities(archive, vector, ids, similarities)
    # Most hits belong to no story of several articles: their articles are read only when some do.
    stories = {row["story_id"]: archive.stories.get(row["story_id"], ()) for row in rows.values()}
    members: dict[str, dict[str, Any]] = {}
    if any(stories.values()):
        wanted = {a for story in stories.values() for a in story}
        members = {found["article_id"]: found for found in archive.articles(wanted, _DUPLICATE_FIELDS[1:])}
    scores = dict(ranked)
    return [
        Hit(
            rank=rank,
            score=scores[passage_id],
            similarity=similarities.get(passage_id),
            **row,
            also_in=tuple(
                Duplicate(**members[a])
                for a in _earliest_first(stories[row["story_id"]], members)
                if a != row["article_id"]
            ),
        )
        for rank, (passage_id, row) in enumerate(rows.items(), start=1)
    ]


def _earliest_first(article_ids: tuple[str, ...], members: dict[str, dict[str, Any]]) -> list[str]:
    """A story's live articles in their story's order (:func:`indexer.storage.duplicates.story_order`)."""
    live = [a for a in article_ids if a in members]
    return sorted(live, key=lambda a: story_order(members[a]["published"], a))


def _one_article_per_story(
    archive: Archive, ranked: list[tuple[int, float]], k: int, language: str | None = None
) -> dict[int, dict[str, Any]]:
    """The rows of the best ``k`` passages, in rank order, skipping those of a story's other articles.

    A story's article that ranks first speaks for it, its other passages stay -- unless it is in another language
    than the question's (``language``) and the story's article in that one has a passage among the candidates
    scoring within :data:`STORY_LANGUAGE_MARGIN` of it: then that passage takes its place, the same report in the
    reader's language (across languages translations score alike, and which one ranks first is chance). Rows are
    fetched ``k`` at a time: without duplicates among them, one fetch is all it takes.
    """
    ids = [passage_id for passage_id, _ in ranked]
    rows: dict[int, dict[str, Any]] = {}
    fetched = 0

    def row(index: int) -> dict[str, Any] | None:
        nonlocal fetched
        while index >= fetched:
            batch = ids[fetched : fetched + k]
            rows.update(archive.hits(batch))
            fetched += len(batch)
        return rows.get(ids[index])

    chosen: dict[int, dict[str, Any]] = {}
    speaker: dict[str, str] = {}  # story_id -> the article that speaks for it
    for index, passage_id in enumerate(ids):
        if len(chosen) == k:
            break
        found = row(index)
        if found is None or passage_id in chosen:
            continue
        story = found["story_id"]
        if story not in speaker:
            speaker[story] = found["article_id"]
            if language and found["language"] != language and archive.stories.get(story):
                for later in range(index + 1, len(ids)):
                    if ranked[later][1] < ranked[index][1] - STORY_LANGUAGE_MARGIN:
                        break
                    other = row(later)
                    if other is not None and other["story_id"] == story and other["language"] == language:
                        speaker[story] = other["article_id"]
                        chosen[ids[later]] = other
                        break
        if speaker[story] == found["article_id"] and len(chosen) < k:
            chosen[passage_id] = found
    return chosen


def rank(
    archive: Archive,
    query: str,
    vector: np.ndarray | None,
    k: int = 10,
    filters: Filters | None = None,
    mode: str = "hybrid",
) -> list[tuple[int, float]]:
    """The ranking behind :func:`search`: (passage id, score) pairs, best first, without fetching the passages."""
    return _rank(archive, query, vector, k, filters, mode, detect(query))[0]


def _rank(
    archive: Archive,
    query: str,
    vector: np.ndarray | None,
    k: int,
    filters: Filters | None,
    mode: str,
    language: str | None,
) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """:func:`rank`'s ranking of ``query`` (in ``language``), and the exact cosine similarities it computed on the
    way, by passage id.

    Passages are ranked by their centered similarity (:mod:`indexer.models.centering`: in an archive of several
    languages, each language's mean passage vector and the question mean taken out), computed from the segments'
    exact vectors for the vector index's best candidates, and in hybrid search for the best lexical ones too, plus
    their lexical evidence (:meth:`indexer.indexes.lexical.LexicalIndex.evidence`). The similarities returned are the
    plain cosines.
    """
    allowed = archive.store.passage_ids_where(**asdict(filters)) if filters else None
    if mode == "lexical":
        return archive.lexical.search(query, language, k, allowed), {}
    means = archive.language_means
    centers = means.centers(language)
    centered = centering.centered_query(archive.embedder, vector, language) if centers else vector
    wide = max(k, CANDIDATES) * (min(len(means.languages), LANGUAGE_WIDENING) if means.dominant is None else 1)
    candidates = [passage_id for passage_id, _ in archive.vectors.search(centered, wide, allowed)]
    evidence: dict[int, float] = {}
    if mode == "hybrid":
        among = np.asarray(candidates)
        found = archive.lexical.evidence(query, language, max(k, CANDIDATES), among, allowed, centers)
        evidence = dict(found)
        seen = set(candidates)
        candidates += [passage_id for passage_id, _ in found if passage_id not in seen]
    vectors = archive.vectors.vectors(candidates)
    if centers:
        scores = means.similarities(centered, vectors, archive.lexical.languages_of(candidates))
    else:
        scores = vectors @ vector
    ranked = [
        (passage_id, float(score) + evidence.get(passage_id, 0.0)) for passage_id, score in zip(candidates, scores)
    ]
    ranked.sort(key=lambda item: -item[1])
    similarities = dict(zip(candidates, (vectors @ vector).tolist()))
    return ranked[:k], similarities


def _similarities(
    archive: Archive, vector: np.ndarray, passage_ids: list[int], known: dict[int, float]
) -> dict[int, float]:
    """Exact cosine similarities of ``passage_ids``, by id, beside those already ``known``: the missing ones from
    the segments' stored vectors."""
    missing = [passage_id for passage_id in passage_ids if passage_id not in known]
    if not missing:
        return known
    return known | dict(zip(missing, (archive.vectors.vectors(missing) @ vector).tolist()))


def _day(moment: datetime | None) -> str | None:
    return moment.date().isoformat() if moment else None


def check_question(query: str) -> str:
    """``query`` without surrounding blanks, if it is a question or keywords (:func:`search`, ``ask``, coverage by
    meaning): not empty, nor longer than :data:`MAX_QUESTION_CHARS`.

    Raises:
        NewsarchiveError: The query is empty or too long.
    """
    if not query or not query.strip():
        raise NewsarchiveError("the query is empty: type a question or some keywords")
    if len(query.strip()) > MAX_QUESTION_CHARS:
        raise NewsarchiveError(
            f"the query is {len(query.strip()):,} characters long; the limit is {MAX_QUESTION_CHARS:,}: ask a "
            "question, not a document (the model reads only its first few hundred words)"
        )
    return query.strip()


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise NewsarchiveError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    return mode
