"""Which articles an exact query matches, as one DuckDB condition over the live articles of a snapshot.

Words, prefixes and phrases are looked up in each segment's lexical postings (the word tokens BM25 scores), never
by scanning text: a word's passages are those whose tokens, read in the passage's own language, hold it. A phrase's
candidates are the passages holding all its words, and only their text (from the segments' lookup files) is read to
check the words' order. The articles found are handed to DuckDB as a table, so counting and grouping happen there,
never row by row in Python. Fields are conditions on the article's columns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from indexer.exact.query import And, Field, Node, Not, Or, Phrase, Published, QueryError, Title, Word, parse
from indexer.storage import Snapshot
from indexer.storage.segment import ARTICLE_SCHEMA
from indexer.text.tokens import fold, tokenize

_RE2 = (r"[\pL\pN]", r"[^\pL\pN]")
CANDIDATES = 20_000  # articles: up to this many, a query's are read from the lookup files (Condition.candidates)
CANDIDATE_COLUMNS = ("article_id", "title", "source", "language", "published", "author", "url")
_PYTHON = (r"[^\W_]", r"[\W_]")


class Condition:
    """A query evaluated on one snapshot: ``sql`` is a condition on its articles (as ``a``), true for the articles
    the query matches; use it inside :meth:`registered`, which hands DuckDB the tables it names.

    The query is evaluated here, as sets of article ids: a word's or phrase's articles come from the lexical
    postings, the fields' and titles' from one DuckDB query over the articles the query can match (its
    :attr:`candidates`, else all), and ``AND``, ``OR`` and ``NOT`` combine the sets. DuckDB then sees one set, never
    the query's shape: a condition of a hundred parts, each its own join and regular expression there, took it
    seconds to plan and run.
    """

    def __init__(self, snapshot: Snapshot, query: str) -> None:
        self.snapshot, self.query = snapshot, query
        self.tables: dict[str, pa.Table] = {}
        self.node: Node | None = None  # the parsed query, when there is one
        if not query:  # :meth:`of_articles`
            self.sql = "false"
            return
        self._languages = sorted(
            {lang for item in snapshot.loaded.values() for lang in item.lexical.present_languages}, key=str
        )
        self._found: dict[int, dict[str, pa.Array]] = {}  # id of a word or phrase node -> segment -> its articles
        self.node = parse(query)
        for term in _nodes(self.node, (Word, Phrase)):
            self._term(term)
        leaves = self._leaves(list(_nodes(self.node, (Title, Field, Published))))
        ids, negated = self._evaluate(self.node, leaves)
        self.sql = f"(NOT {self._among(ids)})" if negated else self._among(ids)

    @classmethod
    def of_articles(cls, snapshot: Snapshot, article_ids: pa.Array, description: str) -> Condition:
        """The condition of being one of these articles (found some other way, say by meaning)."""
        condition = cls(snapshot, "")
        condition.query = description
        condition.sql = condition._among(article_ids)
        return condition

    @contextmanager
    def registered(self, **more: pa.Table) -> Iterator[Any]:
        """A cursor of the snapshot's DuckDB connection (a session's own: the app's sessions share a snapshot)
        with this condition's tables registered, and ``more`` tables under their names."""
        with self.snapshot.store.db.cursor() as cursor:
            for name, table in {**self.tables, **more}.items():
                cursor.register(name, table)
            yield cursor

    def _evaluate(self, node: Node, leaves: dict[int, pa.Array]) -> tuple[pa.Array, bool]:
        """The articles ``node`` matches as (ids, negated): negated, it matches every live article but those.
        Outside the candidates, a field is false; the query cannot match there anyway (:meth:`_bound`)."""
        if isinstance(node, Not):
            ids, negated = self._evaluate(node.part, leaves)
            return ids, not negated
        if isinstance(node, (And, Or)):
            parts = [self._evaluate(part, leaves) for part in node.parts]
            plain = [ids for ids, negated in parts if not negated]
            negated = [ids for ids, negated in parts if negated]
            if isinstance(node, Or):  # a OR NOT b is NOT (b AND NOT a)
                if not negated:
                    return distinct(plain), False
                return _without(_shared(negated), distinct(plain)), True
            if not plain:  # NOT a AND NOT b is NOT (a OR b)
                return distinct(negated), True
            return _without(_shared(plain), distinct(negated)), False
        if isinstance(node, (Word, Phrase)):
            return distinct(list(self._found[id(node)].values())), False
        return leaves[id(node)], False

    def _leaves(self, nodes: list[Node]) -> dict[int, pa.Array]:
        """id of each title, field and date of the query -> the articles it holds for, among the candidates."""
        if not nodes:
            return {}
        columns, params = [], []
        for number, node in enumerate(nodes):
            sql, value = _leaf(node, self._languages)
            columns.append(f"{sql} AS _{number}")
            params += value
        candidates = self.candidates
        with self.snapshot.store.db.cursor() as cursor:
            if candidates is not None:
                cursor.register("_candidates", candidates)
            source = "_articles" if candidates is None else "_candidates"
            found = cursor.sql(f"SELECT article_id, {', '.join(columns)} FROM {source} a", params=params)
            found = found.to_arrow_table()
        ids = found.column("article_id")
        return {
            id(node): ids.filter(pc.fill_null(found.column(f"_{number}"), False)).combine_chunks()
            for number, node in enumerate(nodes)
        }

    def _term(self, node: Word | Phrase) -> dict[str, pa.Array]:
        """segment -> the live articles there that a word or phrase matches (kept for :meth:`_bound`)."""
        found = self._articles(self._word_rows(node)) if isinstance(node, Word) else self._phrase_articles(node)
        self._found[id(node)] = found
        return found

    def _among(self, article_ids: pa.Array) -> str:
        name = f"_match_{len(self.tables)}"
        self.tables[name] = pa.table({"article_id": article_ids})
        return f"a.article_id IN (SELECT article_id FROM {name})"

    def _word_rows(self, word: Word) -> dict[str, np.ndarray]:
        """segment -> sorted rows of the live passages holding ``word`` there."""
        if word.prefix:
            beginning = fold(word.text.lower())

            def tokens_of(language: str | None) -> list[str]:
                return [beginning, *tokenize(word.text, language)]
        else:

            def tokens_of(language: str | None) -> list[str]:
                return tokenize(word.text, language)

        rows = {
            name: item.lexical.rows_holding(tokens_of, prefix=word.prefix)
            for name, item in self.snapshot.loaded.items()
        }
        stopword_in = [str(language) for language in self._languages if language and not tokenize(word.text, language)]
        if stopword_in and not any(len(found) for found in rows.values()):
            raise QueryError(
                self.query,
                None,
                f"{word.text!r} is a stopword ({', '.join(stopword_in)}), which is not indexed: put it in a phrase",
            )
        return rows

    @functools.cached_property
    def candidates(self) -> pa.Table | None:
        """The articles the query can match at most, with the columns its condition and a list of matches read,
        when the query bounds them (a word or phrase it needs) to :data:`CANDIDATES` or fewer; else ``None``, and
        the condition is for the whole ``_articles`` view. Read from the segments' lookup files, once per
        condition: for a few articles, a scan of every segment's Parquet file is what would cost most."""
        bound = self._bound(self.node) if self.node is not None else None
        if bound is None or sum(len(ids) for ids in bound.values()) > CANDIDATES:
            return None
        tables = []
        for name, ids in bound.items():
            rows, lookup = self.snapshot.loaded[name].articles
            if not set(CANDIDATE_COLUMNS) <= set(lookup.names):
                return None  # a segment written before its lookup held them all
            tables.append(lookup.table(sorted(rows[article_id] for article_id in ids.to_pylist())))
        schema = pa.schema([ARTICLE_SCHEMA.field(name) for name in CANDIDATE_COLUMNS])
        return pa.concat_tables([table.select(CANDIDATE_COLUMNS).cast(schema) for table in tables])

    def _bound(self, node: Node) -> dict[str, pa.Array] | None:
        """segment -> the articles there that ``node`` may match, when it bounds them (``None``: any article)."""
        if isinstance(node, (Word, Phrase)):
            return self._found[id(node)]
        if isinstance(node, (And, Or)):
            parts = [self._bound(part) for part in node.parts]
            if isinstance(node, Or) and any(part is None for part in parts):
                return None
            parts = [part for part in parts if part is not None]
            if not parts:
                return None
            names = set.intersection(*map(set, parts)) if isinstance(node, And) else set.union(*map(set, parts))
            if isinstance(node, Or):
                return {name: distinct([part[name] for part in parts if name in part]) for name in names}
            combined = {}
            for name in names:
                ids = parts[0][name]
                for part in parts[1:]:
                    ids = ids.filter(pc.is_in(ids, value_set=part[name]))
                combined[name] = ids
            return combined
        return None  # NOT and the fields: any article

    def _articles(self, rows_by_segment: dict[str, np.ndarray]) -> dict[str, pa.Array]:
        """segment -> the live articles there holding these rows of passages."""
        found = {}
        for name, rows in rows_by_segment.items():
            item = self.snapshot.loaded[name]
            ids = item.lexical.ids[rows]
            ids = ids[~np.isin(ids, self.snapshot.deleted[name])]
            found[name] = distinct([item.passage_articles.take(pa.array(np.searchsorted(item.ids, ids)))])
        return found

    def _phrase_articles(self, phrase: Phrase) -> dict[str, pa.Array]:
        """Candidates hold every word of the phrase that is not a stopword everywhere; their text, read from the
        segments' lookup files, is checked for the words in order."""
        searched = [Word(text) for text in phrase.words if any(tokenize(text, lang) for lang in self._languages)]
        if not searched:
            raise QueryError(self.query, None, f'"{" ".join(phrase.words)}" is only stopwords: it matches nothing')
        candidates: dict[str, np.ndarray] = {}
        for word in searched:
            for name, rows in self._word_rows(word).items():
                candidates[name] = np.intersect1d(candidates[name], rows) if name in candidates else rows
        pattern = re.compile(_pattern(phrase, self._languages, _PYTHON))
        found = {}
        for name, rows in candidates.items():
            item = self.snapshot.loaded[name]
            ids = item.lexical.ids[rows]
            ids = ids[~np.isin(ids, self.snapshot.deleted[name])]
            passages = item.passages.table(np.searchsorted(item.ids, ids))
            article_rows, lookup = item.articles
            articles = passages.column("article_id").to_pylist()
            titles = lookup.table([article_rows[article_id] for article_id in articles]).column("title").to_pylist()
            texts = zip(titles, passages.column("heading").to_pylist(), passages.column("text").to_pylist())
            held = {article_id for article_id, text in zip(articles, texts) if _holds(pattern, *text)}
            found[name] = pa.array(sorted(held), pa.string())
        return found


def distinct(article_ids: list[pa.Array | pa.ChunkedArray]) -> pa.Array:
    """The distinct article ids of these arrays."""
    chunks = [chunk for part in article_ids for chunk in getattr(part, "chunks", [part])]
    return pc.unique(pa.chunked_array(chunks, pa.string()).combine_chunks()) if chunks else pa.array([], pa.string())


def _leaf(node: Node, languages: list[str | None]) -> tuple[str, list[Any]]:
    """A condition on an article (as ``a``) for a title, field or date, and the values of its ``?``."""
    if isinstance(node, Title):
        return "regexp_matches(strip_accents(lower(coalesce(a.title, ''))), ?)", [_pattern(node.term, languages)]
    if isinstance(node, Field):
        if node.name == "author":
            return "coalesce(a.author ILIKE ('%' || ? || '%'), false)", [node.value]
        return f"coalesce(lower(a.{node.name}) = lower(?), false)", [node.value]
    if isinstance(node, Published):
        parts, values = ["a.published IS NOT NULL"], []
        for sql, day in (("a.published >= ?", node.start), ("a.published < ?", node.end)):
            if day:
                parts.append(sql)
                values.append(_utc(day))
        return "coalesce(" + " AND ".join(parts) + ", false)", values
    raise AssertionError(node)  # pragma: no cover -- every node the parser makes is handled


def _nodes(node: Node, kinds: tuple[type, ...]) -> Iterator[Node]:
    """The nodes of these kinds in the tree of ``node``."""
    if isinstance(node, kinds):
        yield node
    for part in node.parts if isinstance(node, (And, Or)) else (node.part,) if isinstance(node, Not) else ():
        yield from _nodes(part, kinds)


def _without(article_ids: pa.Array, removed: pa.Array) -> pa.Array:
    """``article_ids`` but those in ``removed``."""
    return article_ids.filter(pc.invert(pc.is_in(article_ids, value_set=removed))) if len(removed) else article_ids


def _shared(article_ids: list[pa.Array]) -> pa.Array:
    """The article ids in every one of these arrays."""
    shared = article_ids[0]
    for ids in article_ids[1:]:
        shared = shared.filter(pc.is_in(shared, value_set=ids))
    return shared


def _pattern(term: Word | Phrase, languages: list[str | None], dialect: tuple[str, str] = _RE2) -> str:
    """A pattern for ``term`` in lowercased, accent-free text: each word as itself or as a continuation of its
    stem in one of ``languages``, the words apart by anything but letters and digits. ``dialect``: the classes of
    a letter or digit and of anything else, in RE2 (DuckDB's) or Python's regular expressions."""
    letter, other = dialect
    words = term.words if isinstance(term, Phrase) else (term.text,)
    parts = []
    for text in words:
        forms = {fold(text.lower())} | {token for lang in languages for token in tokenize(text, lang)}
        parts.append("(?:" + "|".join(sorted(map(_escape, forms))) + f"){letter}*")
    return f"(?:^|{other})" + f"{other}+".join(parts)


def _holds(pattern: re.Pattern, title: str | None, heading: str | None, text: str) -> bool:
    """Whether a passage as its lexical row reads it (title, heading, text), lowercased and accent-free, holds
    ``pattern``. Folding is what costs: a match in the plain lowercased text that is all ASCII is one folding
    cannot change, so only the other passages are folded."""
    plain = "\n".join(part for part in (title, heading, text) if part).lower()
    found = pattern.search(plain)
    return bool(found and found.group().isascii()) or bool(pattern.search(fold(plain)))


def _escape(text: str) -> str:
    return re.sub(r"([\\.^$|?*+()\[\]{}-])", r"\\\1", text)


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)
