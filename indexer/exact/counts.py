"""Every article an exact query matches, how many per period (and their share), and counts by source, language
and day -- each one DuckDB query over a snapshot's ``articles`` (:class:`indexer.exact.match.Condition`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ..storage import Snapshot
from ..tokens import tokenize
from .match import Condition
from .query import And, Node, Not, Or, Phrase, Word, parse

PERIODS = ("day", "week", "month", "year")
SORTS = ("date", "relevance")
MATCH_COLUMNS = ("article_id", "title", "source", "language", "published", "author", "url")


def _sources(sources: Sequence[str]) -> tuple[str, list[str]]:
    if not sources:
        return "true", []
    return "lower(a.source) IN (" + ", ".join("lower(?)" for _ in sources) + ")", list(sources)


def matches(snapshot: Snapshot, query: str, sort: str = "date", limit: int | None = None) -> pa.Table:
    """Every article ``query`` matches (:mod:`indexer.exact.query`), newest first (undated last) or by relevance
    (the best BM25 score of one of its passages for the query's words), with :data:`MATCH_COLUMNS`, ``score`` and
    the passage that scored it (``passage_id``, ``text``: the cited passage).

    Raises:
        QueryError: The query is malformed.
        NewsarchiveError: ``sort`` is unknown.
    """
    if sort not in SORTS:
        from ..errors import NewsarchiveError

        raise NewsarchiveError(f"sort {sort!r}: one of {', '.join(SORTS)}")
    condition = Condition(snapshot, query)
    condition.tables["_scores"] = _scores(snapshot, parse(query))
    columns = ", ".join(f"a.{column}" for column in MATCH_COLUMNS)
    order = "a.published DESC NULLS LAST, a.article_id" if sort == "date" else "score DESC, a.article_id"
    sql = (
        f"WITH best AS (SELECT p.article_id, arg_max(p.passage_id, s.score) AS passage_id, max(s.score) AS score "
        f"FROM _scores s JOIN passages p USING (passage_id) GROUP BY p.article_id) "
        f"SELECT {columns}, coalesce(best.score, 0)::FLOAT AS score, best.passage_id, p.text "
        f"FROM articles a LEFT JOIN best USING (article_id) LEFT JOIN passages p ON p.passage_id = best.passage_id "
        f"WHERE {condition.sql} ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit is not None else "")
    )
    with condition.registered() as db:
        return db.sql(sql, params=condition.params).to_arrow_table()


def coverage(
    snapshot: Snapshot, query: str, by: str = "day", sources: Sequence[str] = (), by_source: bool = False
) -> pa.Table:
    """Per period (and per source, with ``by_source``): ``matching`` articles, ``total`` articles of the same
    sources (``sources``, else all) in that period, and ``share``, their ratio. Undated articles are not counted.

    Raises:
        QueryError: The query is malformed.
        NewsarchiveError: ``by`` is not one of :data:`PERIODS`.
    """
    if by not in PERIODS:
        from ..errors import NewsarchiveError

        raise NewsarchiveError(f"--by {by!r}: one of {', '.join(PERIODS)}")
    condition = Condition(snapshot, query)
    where, params = _sources(sources)
    group = "period, source" if by_source else "period"
    sql = (
        f"WITH marked AS (SELECT CAST(date_trunc('{by}', a.published AT TIME ZONE 'UTC') AS DATE) AS period, "
        f"a.source, {condition.sql} AS hit FROM articles a WHERE a.published IS NOT NULL AND {where}) "
        f"SELECT {group}, count(*) FILTER (WHERE hit) AS matching, count(*) AS total, "
        f"round(matching / total, 6) AS share FROM marked GROUP BY {group} ORDER BY {group}"
    )
    with condition.registered() as db:
        return db.sql(sql, params=condition.params + params).to_arrow_table()


def facets(snapshot: Snapshot, query: str, top: int = 10) -> dict[str, pa.Table]:
    """The matches counted by ``source``, ``language`` (the ``top`` most, each) and ``day`` (every day)."""
    condition = Condition(snapshot, query)
    found = {}
    with condition.registered() as db:
        for name, column, limit in (
            ("source", "a.source", top),
            ("language", "a.language", top),
            ("day", "CAST(a.published AT TIME ZONE 'UTC' AS DATE)", None),
        ):
            order = "count DESC, value" if limit else "value"
            found[name] = db.sql(
                f"SELECT {column} AS value, count(*) AS count FROM articles a WHERE {condition.sql} "
                f"GROUP BY value ORDER BY {order}" + (f" LIMIT {limit}" if limit else ""),
                params=condition.params,
            ).to_arrow_table()
    return found


def _scores(snapshot: Snapshot, node: Node) -> pa.Table:
    """(passage_id, score): the BM25 score of each passage holding one of the query's wanted words."""
    words = sorted(set(_wanted(node)))
    languages = {lang for item in snapshot.loaded.values() for lang in item.lexical.languages}
    tokens = sorted({token for word in words for lang in languages for token in tokenize(word, lang)})
    lexical = snapshot.lexical
    scores = lexical.indexes["words"].scores(tokens) if tokens else np.zeros(len(lexical.ids), np.float32)
    rows = np.flatnonzero(scores)
    return pa.table({"passage_id": lexical.ids[rows], "score": scores[rows]})


def _wanted(node: Node) -> list[str]:
    """The words a match is wanted for (not those under NOT)."""
    if isinstance(node, (And, Or)):
        return [word for part in node.parts for word in _wanted(part)]
    if isinstance(node, Word):
        return [node.text]
    if isinstance(node, Phrase):
        return list(node.words)
    if isinstance(node, Not):
        return []
    return []
