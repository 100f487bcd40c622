"""Checking a generated answer against its sources: a quote counts only where the source it cites says it.

Matching forgives only what encodings and typing change without changing the words: Unicode compatibility forms
(NFKC), case, runs of white space, and which quotation mark or dash was typed. Nothing fuzzier. A quote the model
reworded, translated, or spliced from two places is not found; one found only in another source than the one it
cites is not moved there. A sentence keeps the citations that are found, and is dropped when none is left, or when
it is too far in meaning from what it quotes: a true quote under a claim it does not support.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.models.embedder import Embedder

# The lowest cosine similarity, with the default model's query prompt on both sides, between a sentence and what
# it quotes (in any language pair) for the quote to count as support: measured on XQuAD's parallel sentences by
# bench/support.py (docs/benchmarks.md "Checking generated answers").
SUPPORT = 0.82
MIN_QUOTE_CHARS = 10  # normalized, spaces aside: "MQ-9" names a subject, it supports no claim
_QUOTE_MARKS = str.maketrans(dict.fromkeys('"“”„‟«»〝〞＂', '"') | dict.fromkeys("'‘’‚‛‹›`´′", "'"))
_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_DECORATION = " \t\n\"'“”„«»‘’‹›…"  # around a quote, not part of it: the marks a model wraps it in


KINDS = ("no citation", "source out of range", "quote too short", "quote in another source", "quote not in source",
         "too far in meaning")  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """A sentence as the model wrote it, with the citations it gave: (source number, quote)."""

    text: str
    citations: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Citation:
    """A verified quote: source ``source``'s text at ``start:end`` (``quote`` is that text, as the source has it)."""

    source: int
    quote: str
    start: int
    end: int


@dataclass(frozen=True)
class Supported:
    """A sentence that stands, with its verified citations and its similarity to what they quote."""

    text: str
    citations: tuple[Citation, ...]
    support: float


@dataclass(frozen=True)
class Rejected:
    """What the verifier took out and why: a whole sentence (``citation`` None), or one citation of a sentence
    that stands."""

    sentence: str
    reason: str
    citation: tuple[int, str] | None = None
    kind: str = ""  # one of KINDS: what a bench counts, where ``reason`` is for a reader


def verify(
    claims: Sequence[Claim], sources: Sequence[str], embedder: Embedder | None
) -> tuple[list[Supported], list[Rejected]]:
    """Keep the claims whose quotes are in the sources they cite, with those quotes' offsets.

    Args:
        claims: The model's sentences, in order.
        sources: The passages' texts; source ``n`` is ``sources[n - 1]``.
        embedder: The model that tells whether a sentence is close enough in meaning to its quotes
            (:data:`SUPPORT`); ``None`` skips that check.
    """
    indexed = [_normalized(text) for text in sources]
    kept: list[Supported] = []
    rejected: list[Rejected] = []
    for claim in claims:
        found: list[Citation] = []
        failed: list[tuple[tuple[int, str], str, str]] = []  # (citation, kind, reason)
        for source, quote in claim.citations:
            citation, kind, reason = _locate(source, quote, sources, indexed)
            if citation is None:
                failed.append(((source, quote), kind, reason))
            elif citation not in found:
                found.append(citation)
        if not found:
            why = "; ".join(reason for _, _, reason in failed) or "it cites no source"
            rejected.append(Rejected(claim.text, why, kind=failed[0][1] if failed else "no citation"))
            continue
        support = _support(embedder, claim.text, [citation.quote for citation in found])
        if support < SUPPORT:
            why = f"too far in meaning from what it quotes ({support:.2f} < {SUPPORT})"
            rejected.append(Rejected(claim.text, why, kind="too far in meaning"))
            continue
        kept.append(Supported(claim.text, tuple(found), support))
        rejected.extend(Rejected(claim.text, reason, cited, kind) for cited, kind, reason in failed)
    return kept, rejected


def _locate(
    source: int, quote: str, sources: Sequence[str], indexed: list[tuple[str, list[tuple[int, int]]]]
) -> tuple[Citation | None, str, str]:
    """The citation found, or None with its kind (of :data:`KINDS`) and the reason."""
    if not 1 <= source <= len(sources):
        return None, "source out of range", f"it cites source {source}, and there are {len(sources)}"
    wanted, _ = _normalized(quote.strip(_DECORATION).removesuffix("..."))
    if len(wanted.replace(" ", "")) < MIN_QUOTE_CHARS:
        return None, "quote too short", f"its quote {quote!r} is too short to support a claim"
    text, spans = indexed[source - 1]
    at = text.find(wanted)
    if at < 0 and wanted.endswith("."):  # a full stop the model ended the quote with, where the source goes on
        wanted = wanted[:-1]
        at = text.find(wanted)
    if at < 0:
        elsewhere = [number for number, (other, _) in enumerate(indexed, start=1) if wanted in other]
        if elsewhere:
            reason = f"its quote is in source {elsewhere[0]}, not in source {source} it cites"
            return None, "quote in another source", reason
        return None, "quote not in source", f"its quote is not in source {source}"
    start, end = spans[at][0], spans[at + len(wanted) - 1][1]
    return Citation(source, sources[source - 1][start:end], start, end), "", ""


def _normalized(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` as matching compares it, and for each of its characters the span of ``text`` it came from.

    Each base character is normalized with the combining marks that follow it, so that a precomposed "é" and
    "e" with a combining accent are the same; white space runs become one space, trimmed at both ends.
    """
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = start + 1
        while end < len(text) and unicodedata.combining(text[end]):
            end += 1
        cluster = unicodedata.normalize("NFKC", text[start:end]).casefold().translate(_QUOTE_MARKS)
        for char in _DASHES.sub("-", cluster):
            if char.isspace():
                if out and out[-1] != " ":
                    out.append(" ")
                    spans.append((start, end))
                continue
            out.append(char)
            spans.append((start, end))
        start = end
    if out and out[-1] == " ":
        out.pop()
        spans.pop()
    return "".join(out), spans


def _support(embedder: Embedder | None, sentence: str, quotes: list[str]) -> float:
    """Cosine similarity between a sentence and what it quotes, joined; 1.0 without a model to ask."""
    if embedder is None:
        return 1.0
    vectors = embedder.embed_queries([sentence, " ".join(quotes)])
    return float(np.dot(vectors[0], vectors[1]))
