"""The exact query language, parsed into a tree of :class:`Node` s.

    drone* AND ("Black Sea" OR Crimea) -exercise source:ansa published:2025-01-01..2025-03-31

Words are matched as the lexical index reads them (stemmed in each passage's language, accents folded), a
``"quoted phrase"`` as those words in that order, ``drone*`` as any word beginning so. Terms side by side must all
match (``AND`` is the default operator); ``OR`` binds looser than ``AND``; ``NOT term`` or ``-term`` excludes;
parentheses group. Operators are written in capitals: a lowercase ``and`` is a word. Fields: ``source:``,
``language:``, ``author:`` (a name, any case), ``title:`` (a word, ``drone*`` or a phrase in the title) and
``published:`` (a day ``2025-01-31``, a month ``2025-01``, a year, or a range ``A..B`` with either end open).

A query is at most :data:`MAX_QUERY_CHARS` characters, :data:`MAX_TERMS` terms (words, phrases and fields) and
:data:`MAX_DEPTH` levels of parentheses and ``NOT``: the Explore page runs what a URL asks, and a query past these
is a mistake or an attack, never a question.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import lark

from indexer.errors import NewsarchiveError

FIELDS = ("source", "language", "author", "title", "published")
MAX_QUERY_CHARS = 2_000
MAX_TERMS = 100
MAX_DEPTH = 20  # nested groups: parentheses, NOT and the operators' own levels

_GRAMMAR = r"""
?start: or_
?or_: and_ (OR and_)*
?and_: unary (AND? unary)*
?unary: NOT unary -> not_
      | MINUS unary -> not_
      | atom
?atom: "(" or_ ")"
     | FIELD (PHRASE | VALUE) -> field
     | PHRASE -> phrase
     | WORD -> word

OR.3: /OR(?![^\s()])/
AND.3: /AND(?![^\s()])/
NOT.3: /NOT(?![^\s()])/
FIELD.2: /(source|language|author|title|published):/i
MINUS: /-(?=[^\s-])/
PHRASE: /"[^"]*"/
VALUE: /[^\s()"]+/
WORD: /[^\s()"\-][^\s()"]*/
%ignore /\s+/
"""
_PARSER = lark.Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)
_DAY = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class QueryError(NewsarchiveError):
    """A query that cannot be read: the message says where (a 1-based character) and what is wrong."""

    def __init__(self, query: str, column: int | None, reason: str) -> None:
        self.query, self.column, self.reason = query, column, reason
        where = f" at character {column}" if column else ""
        shown = repr(query) if len(query) <= 100 else repr(query[:80]) + f"… ({len(query):,} characters)"
        super().__init__(f"query {shown}{where}: {reason}")


@dataclasses.dataclass(frozen=True)
class Node:
    """A part of a query."""


@dataclasses.dataclass(frozen=True)
class Word(Node):
    text: str
    prefix: bool = False  # ``drone*``: any word beginning with ``text``


@dataclasses.dataclass(frozen=True)
class Phrase(Node):
    words: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Field(Node):
    """``source:``, ``language:`` or ``author:`` equal to ``value``, any case."""

    name: str
    value: str


@dataclasses.dataclass(frozen=True)
class Title(Node):
    term: Word | Phrase


@dataclasses.dataclass(frozen=True)
class Published(Node):
    """Published on or after ``start`` and before ``end`` (days; ``None`` is open: both, any dated article)."""

    start: date | None
    end: date | None


@dataclasses.dataclass(frozen=True)
class And(Node):
    parts: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Or(Node):
    parts: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Not(Node):
    part: Node


def parse(query: str) -> Node:
    """The tree of ``query``; see the module docstring for the language.

    Raises:
        QueryError: The query is empty, malformed or past a limit (:data:`MAX_QUERY_CHARS`, :data:`MAX_TERMS`,
            :data:`MAX_DEPTH`); the message names the character where it goes wrong, or the limit.
    """
    if not query.strip():
        raise QueryError(query, None, "empty query")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(query, None, f"too long: the limit is {MAX_QUERY_CHARS:,} characters")
    try:
        tree = _PARSER.parse(query)
    except lark.exceptions.UnexpectedCharacters as error:
        raise QueryError(query, error.column, f"unexpected {query[error.pos_in_stream]!r}") from None
    except lark.exceptions.UnexpectedEOF:
        raise QueryError(query, len(query), _unclosed(query) or "the query ends too early") from None
    except lark.exceptions.UnexpectedToken as error:
        if error.token.type == "$END":
            raise QueryError(query, len(query), _unclosed(query) or "the query ends too early") from None
        raise QueryError(query, error.column, f"unexpected {str(error.token)!r}") from None
    _check_size(query, tree)
    return _node(query, tree)


def _check_size(query: str, tree: lark.Tree | lark.Token) -> None:
    """Refuse a tree of more than :data:`MAX_TERMS` terms or :data:`MAX_DEPTH` levels, before anything recurses
    over it (the parser itself does not)."""
    terms, deepest, stack = 0, 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, lark.Token) or node.data in ("word", "phrase", "field"):
            terms += not _is_operator(node)
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in node.children)
    if terms > MAX_TERMS:
        raise QueryError(query, None, f"{terms} terms: the limit is {MAX_TERMS}")
    if deepest > MAX_DEPTH:
        raise QueryError(query, None, f"nested {deepest} levels deep (parentheses, NOT): the limit is {MAX_DEPTH}")


def _unclosed(query: str) -> str | None:
    return '"(" is never closed' if query.count("(") > query.count(")") else None


def _node(query: str, tree: lark.Tree | lark.Token) -> Node:
    if isinstance(tree, lark.Token):  # a bare WORD is its own tree when it is the whole query
        return _word(query, tree)
    kind, children = tree.data, [c for c in tree.children if not _is_operator(c)]
    if kind == "or_":
        return Or(_flat(Or, (_node(query, c) for c in children)))
    if kind == "and_":
        return And(_flat(And, (_node(query, c) for c in children)))
    if kind == "not_":
        return Not(_node(query, children[0]))
    if kind == "phrase":
        return _phrase(query, children[0])
    if kind == "word":
        return _word(query, children[0])
    if kind == "field":
        return _field(query, children[0], children[1])
    raise AssertionError(kind)  # pragma: no cover -- every rule of the grammar is handled above


def _flat(kind: type[And] | type[Or], parts: Iterable[Node]) -> tuple[Node, ...]:
    """``parts`` with those of the same kind opened: ``(a OR b) OR c`` is ``a OR b OR c``, compiled as one."""
    return tuple(inner for part in parts for inner in (part.parts if isinstance(part, kind) else (part,)))


def _is_operator(child: object) -> bool:
    return isinstance(child, lark.Token) and child.type in ("AND", "OR", "NOT", "MINUS")


def _word(query: str, token: lark.Token) -> Word:
    text = str(token)
    prefix = text.endswith("*")
    text = text.rstrip("*")
    if "*" in text or not text:
        raise QueryError(query, token.column, f"{str(token)!r}: a wildcard goes at the end of a word (drone*)")
    if ":" in text:
        name = text.split(":")[0]
        raise QueryError(query, token.column, f"unknown field {name!r}: the fields are {', '.join(FIELDS)}")
    return Word(text, prefix)


def _phrase(query: str, token: lark.Token) -> Phrase:
    words = tuple(re.findall(r"[^\W_]+(?:[-./,][^\W_]+)*", str(token)[1:-1]))
    if not words:
        raise QueryError(query, token.column, "an empty phrase")
    return Phrase(words)


def _field(query: str, name_token: lark.Token, value: lark.Token) -> Node:
    name = str(name_token)[:-1].lower()
    text = str(value)[1:-1] if value.type == "PHRASE" else str(value)
    if name == "title":
        return Title(_phrase(query, value) if value.type == "PHRASE" else _word(query, value))
    if name == "published":
        return _published(query, value.column, text)
    if not text.strip():
        raise QueryError(query, value.column, f"{name}: needs a value")
    return Field(name, text.strip())


def _published(query: str, column: int, text: str) -> Published:
    start_text, dots, end_text = text.partition("..")
    start = _day(query, column, start_text, end=False) if start_text else None
    if not dots:
        if start is None:
            raise QueryError(query, column, "published: needs a date (2025-01-31, 2025-01, 2025) or a range A..B")
        return Published(start, _day(query, column, start_text, end=True))
    if not start_text and not end_text:
        raise QueryError(query, column, "published: a range needs a start or an end (2025-01-01..2025-03-31)")
    end = _day(query, column, end_text, end=True) if end_text else None
    if start and end and end <= start:
        raise QueryError(query, column, f"published:{text}: the range ends before it starts")
    return Published(start, end)


def _day(query: str, column: int, text: str, end: bool) -> date | None:
    """The first day of ``text`` (a year, month or day), or the day after its last when ``end`` (``None`` after
    9999-12-31: open)."""
    found = _DAY.match(text)
    try:
        if not found:
            raise ValueError
        year, month, day = int(found[1]), int(found[2] or 1), int(found[3] or 1)
        first = date(year, month, day)
    except ValueError:
        raise QueryError(query, column, f"published: {text!r} is not a date (2025-01-31, 2025-01 or 2025)") from None
    if not end:
        return first
    try:
        if found[3]:
            return first + timedelta(days=1)
        if found[2]:
            return date(year + month // 12, month % 12 + 1, 1)
        return date(year + 1, 1, 1)
    except (ValueError, OverflowError):  # the end of the year 9999, after which no day can be written
        return None


def with_filters(
    query: str,
    sources: tuple[str, ...] = (),
    languages: tuple[str, ...] = (),
    since: object = None,
    until: object = None,
) -> str:
    """``query`` narrowed by the search filters' options (--source, --language, --since, --until), as fields."""
    parts = [f"({query})"] if (sources or languages or since or until) else [query]
    for name, values in (("source", sources), ("language", languages)):
        if values:
            parts.append("(" + " OR ".join(f'{name}:"{value}"' for value in values) + ")")
    if since or until:
        start, end = _iso_day(since), _iso_day(until)
        parts.append(f"published:{start}..{end}" if start != end else f"published:{start}")
    return " ".join(parts)


def _iso_day(value: object) -> str:
    """A date or datetime as its ISO day; "" for ``None``."""
    if value is None:
        return ""
    return (value.date() if isinstance(value, datetime) else value).isoformat()  # type: ignore[union-attr]
