"""Splitting articles into passages: one per paragraph, long paragraphs cut at sentence boundaries."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from indexer.reading.article import Article
from indexer.text.language import detect
from indexer.text.sentences import sentence_spans

TokenCounter = Callable[[list[str]], list[int]]
"""Counts the model tokens of each text (no special tokens)."""

DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True)
class Passage:
    """A span of an article that is embedded and retrieved as one unit.

    Attributes:
        article_id: The article it belongs to.
        seq: Its 0-based position among the article's passages.
        paragraph: The 1-based number of the paragraph it comes from (headings are not counted).
        heading: The section heading above it, if any.
        char_start: Where it starts in the article's text.
        char_end: Where it ends (exclusive): ``article.text[char_start:char_end] == text``.
        text: The passage itself.
        tokens: Its length in model tokens.
        language: Its language (ISO 639-1), set when it is indexed.
    """

    article_id: str
    seq: int
    paragraph: int
    heading: str | None
    char_start: int
    char_end: int
    text: str
    tokens: int
    language: str | None = None


def embedding_text(title: str, heading: str | None, text: str) -> str:
    """What the model reads for a passage: the passage with its article title and section heading as context."""
    return "\n".join(part for part in (title, heading, text) if part)


def split_article(article: Article, count_tokens: TokenCounter, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[Passage]:
    """Cut ``article`` into passages of at most ``max_tokens`` model tokens (title and heading not counted).

    A paragraph that fits is one passage. A longer one is cut at sentence boundaries into as few passages as fit;
    a single sentence longer than the budget is cut between words.
    """
    text = article.text
    pieces: list[tuple[int, int, int, str | None]] = []  # (paragraph number, start, end, heading)
    counts = count_tokens([text[p.start : p.end] for p in article.paragraphs])
    for number, (paragraph, count) in enumerate(zip(article.paragraphs, counts), start=1):
        spans = [(paragraph.start, paragraph.end)]
        if count > max_tokens:
            language = article.language or detect(text[paragraph.start : paragraph.end])  # for its abbreviations
            units = _units(text, paragraph.start, paragraph.end, count_tokens, max_tokens, language)
            spans = _pack(text, units, max_tokens)
        pieces.extend((number, start, end, paragraph.heading) for start, end in spans)
    texts = [text[start:end] for _, start, end, _ in pieces]
    return [
        Passage(article.article_id, seq, number, heading, start, end, passage_text, tokens)
        for seq, ((number, start, end, heading), passage_text, tokens) in enumerate(
            zip(pieces, texts, count_tokens(texts))
        )
    ]


def _units(
    text: str, start: int, end: int, count_tokens: TokenCounter, max_tokens: int, language: str | None
) -> list[tuple[int, int, int]]:
    """Sentences of ``text[start:end]`` with their token counts; over-long sentences broken into words."""
    sentences = [(start + s, start + e) for s, e in sentence_spans(text[start:end], language)]
    units = []
    for (s, e), count in zip(sentences, count_tokens([text[s:e] for s, e in sentences])):
        if count <= max_tokens:
            units.append((s, e, count))
            continue
        words = [(s + m.start(), s + m.end()) for m in re.finditer(r"\S+", text[s:e])]
        units.extend((ws, we, c) for (ws, we), c in zip(words, count_tokens([text[ws:we] for ws, we in words])))
    return units


def _pack(text: str, units: list[tuple[int, int, int]], max_tokens: int) -> list[tuple[int, int]]:
    """Greedily join consecutive units into spans whose token counts add up to at most ``max_tokens``."""
    spans: list[tuple[int, int]] = []
    first, last, total = units[0][0], units[0][1], units[0][2]
    for start, end, count in units[1:]:
        if total + count > max_tokens:
            spans.append((first, last))
            first, total = start, 0
        last, total = end, total + count
    spans.append((first, last))
    return spans
