"""Every article an exact query matches, how many per period (and their share), and counts by source, language
and day -- each one DuckDB query over a snapshot's live articles (its ``_articles`` view: ``articles`` without the
join that adds ``story_id``), with the condition of :class:`indexer.exact.match.Condition`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from indexer.exact.match import CANDIDATE_COLUMNS, Condition, distinct
from indexer.exact.query import And, Node, Or, Phrase, Word
from indexer.models.embedder import Embedder
from indexer.storage import Snapshot, segment
from indexer.text.tokens import tokenize

PERIODS = ("day", "week", "month", "year")
SORTS = ("date", "relevance")
MATCH_COLUMNS = CANDIDATE_COLUMNS  # what a match list shows is what its candidates are read with


def _sources(sources: Sequence[str]) -> tuple[str, list[str]]:
    if not sources:
        return "true", []
    return "lower(a.source) IN (" + ", ".join("lower(?)" for _ in sources) + ")", list(sources)


def matches(snapshot: Snapshot, query: str | Condition, sort: str = "date", limit: int | None = None) -> pa.Table:
    """Every article ``query`` matches (:mod:`indexer.exact.query`), newest first (undated last) or by relevance
    (the best BM25 score of one of its passages for the query's words), with :data:`MATCH_COLUMNS`, ``score`` and
    the passage that scored it (``passage_id``, ``text``: the cited passage).

    Raises:
        QueryError: The query is malformed.
        NewsarchiveError: ``sort`` is unknown.
    """
    if sort not in SORTS:
        from indexer.errors import NewsarchiveError

        raise NewsarchiveError(f"sort {sort!r}: one of {', '.join(SORTS)}")
    condition = _condition(snapshot, query)
    source, tables = _articles(condition)
    columns = ", ".join(f"a.{column}" for column in MATCH_COLUMNS)
    order = "a.published DESC NULLS LAST, a.article_id" if sort == "date" else "score DESC, a.article_id"
    sql = (
        "WITH best AS (SELECT article_id, arg_max(passage_id, score) AS passage_id, max(score) AS score "
        "FROM _scores GROUP BY article_id) "
        f"SELECT {columns}, coalesce(best.score, 0)::FLOAT AS score, best.passage_id "
        f"FROM {source} a LEFT JOIN best USING (article_id) WHERE {condition.sql} ORDER BY {order}"
        + (f" LIMIT {int(limit)}" if limit is not None else "")
    )
    with condition.registered(_scores=_scores(snapshot, condition.node), **tables) as db:
        found = db.sql(sql).to_arrow_table()
    cited = found.column("passage_id").drop_null().to_numpy()
    hits = snapshot.hits(cited) if len(cited) else {}
    texts = [hits[p]["text"] if p in hits else None for p in found.column("passage_id").to_pylist()]
    return found.append_column("text", pa.array(texts, pa.string()))


def coverage(
    snapshot: Snapshot, query: str | Condition, by: str = "day", sources: Sequence[str] = (), by_source: bool = False
) -> pa.Table:
    """Per period (and per source, with ``by_source``): ``matching`` articles, ``total`` articles of the same
    sources (``sources``, else all) in that period, and ``share``, their ratio. Undated articles are not counted.

    Raises:
        QueryError: The query is malformed.
        NewsarchiveError: ``by`` is not one of :data:`PERIODS`.
    """
    if by not in PERIODS:
        from indexer.errors import NewsarchiveError

        raise NewsarchiveError(f"--by {by!r}: one of {', '.join(PERIODS)}")
    condition = _condition(snapshot, query)
    where, params = _sources(sources)
    group = "period, source" if by_source else "period"
    sql = (
        f"WITH marked AS (SELECT CAST(date_trunc('{by}', a.published AT TIME ZONE 'UTC') AS DATE) AS period, "
        f"a.source, {condition.sql} AS hit FROM _articles a WHERE a.published IS NOT NULL AND {where}) "
        f"SELECT {group}, count(*) FILTER (WHERE hit) AS matching, count(*) AS total, "
        f"round(matching / total, 6) AS share FROM marked GROUP BY {group} ORDER BY {group}"
    )
    with condition.registered() as db:
        return db.sql(sql, params=params).to_arrow_table()


def facets(snapshot: Snapshot, query: str | Condition, top: int = 10) -> dict[str, pa.Table]:
    """The matches counted by ``source``, ``language`` (the ``top`` most, each) and ``day`` (every day)."""
    condition = _condition(snapshot, query)
    source, tables = _articles(condition)
    found = {}
    with condition.registered(**tables) as db:
        for name, column, limit in (
            ("source", "a.source", top),
            ("language", "a.language", top),
            ("day", "CAST(a.published AT TIME ZONE 'UTC' AS DATE)", None),
        ):
            order = "count DESC, value" if limit else "value"
            found[name] = db.sql(
                f"SELECT {column} AS value, count(*) AS count FROM {source} a WHERE {condition.sql} "
                f"GROUP BY value ORDER BY {order}" + (f" LIMIT {limit}" if limit else "")
            ).to_arrow_table()
    return found


def _articles(condition: Condition) -> tuple[str, dict[str, pa.Table]]:
    """What a query over the matches reads as ``a``: the few articles the condition bounds them to, when it
    does, else the whole ``_articles`` view; and the table to register for it."""
    candidates = condition.candidates
    return ("_articles", {}) if candidates is None else ("_candidates", {"_candidates": candidates})


def _condition(snapshot: Snapshot, query: str | Condition) -> Condition:
    return query if isinstance(query, Condition) else Condition(snapshot, query)


def by_meaning(snapshot: Snapshot, embedder: Embedder, question: str, threshold: float) -> Condition:
    """The articles with a passage close enough in meaning to ``question``: its cosine similarity, minus the
    question's mean similarity to its five closest neutral sentences (what an unrelated passage scores, as for
    ``ask`` and alerts), is at least ``threshold``. Every passage's stored vector is scored, so the count is
    exact for that rule; what the rule counts is approximate."""
    from indexer.retrieval.relevance import neutral_similarity
    from indexer.retrieval.search import check_question

    vector = embedder.embed_queries([check_question(question)])[0]
    floor = neutral_similarity(embedder, vector) + threshold
    found = []
    for name, item in snapshot.loaded.items():
        # A block at a time: float16 vectors become float32 to be scored.
        blocks = range(0, len(item.stored), segment.READ_ROWS)
        scores = [item.stored[start : start + segment.READ_ROWS] @ vector for start in blocks]
        rows = np.flatnonzero(np.concatenate(scores or [np.zeros(0)]) >= floor)
        rows = rows[~np.isin(item.ids[rows], snapshot.deleted[name])]
        found.append(item.passage_articles.take(pa.array(rows)))
    return Condition.of_articles(snapshot, distinct(found), f"meaning: {question} (margin {threshold:g})")


def _scores(snapshot: Snapshot, node: Node | None) -> pa.Table:
    """(article_id, passage_id, score): the BM25 score of each live passage holding one of the query's wanted
    words, with the whole archive's statistics."""
    words = sorted(set(_wanted(node))) if node is not None else []
    languages = {lang for item in snapshot.loaded.values() for lang in item.lexical.present_languages}
    tokens = sorted({token for word in words for lang in languages for token in tokenize(word, lang)})
    lexical = snapshot.lexical
    scores = lexical.indexes["words"].scores(tokens) if tokens else np.zeros(len(lexical.ids), np.float32)
    parts, start = [], 0
    for name, item in snapshot.loaded.items():  # the combined index's rows are the segments' one after another
        end = start + len(item.lexical.ids)
        rows = np.flatnonzero(scores[start:end])
        ids = item.lexical.ids[rows]
        alive = ~np.isin(ids, snapshot.deleted[name])
        ids, rows = ids[alive], rows[alive]
        parts.append(
            pa.table(
                {
                    "article_id": item.passage_articles.take(pa.array(np.searchsorted(item.ids, ids))),
                    "passage_id": pa.array(ids, pa.int64()),
                    "score": pa.array(scores[start:end][rows], pa.float32()),
                }
            )
        )
        start = end
    schema = pa.schema([("article_id", pa.string()), ("passage_id", pa.int64()), ("score", pa.float32())])
    return pa.concat_tables([part.cast(schema) for part in parts]) if parts else schema.empty_table()


def _wanted(node: Node) -> list[str]:
    """The words a match is wanted for (not those under NOT)."""
    if isinstance(node, (And, Or)):
        return [word for part in node.parts for word in _wanted(part)]
    if isinstance(node, Word):
        return [node.text]
    if isinstance(node, Phrase):
        return list(node.words)
    return []  # NOT, and the fields
