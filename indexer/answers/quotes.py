"""Answers with citations: the sentences of the best passages that best answer a question.

No language model writes anything: every answer sentence is quoted from a passage, and cites it. This is the
answer when no generator is configured, and the one a generated answer falls back to
(:mod:`indexer.answers.generate`), which returns the same :class:`Answer`.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from indexer.answers.verify import Citation, Rejected
from indexer.models import centering
from indexer.retrieval import relevance
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import Filters, Hit, embed_query, search_embedded
from indexer.text.language import detect
from indexer.text.sentences import sentence_spans

# Tuned on SQuAD-it with the default model (bench/answer_quality.py; docs/benchmarks.md).
SENTENCE_WEIGHT = 0.5
SENTENCE_PASSAGES = 6  # answer sentences come from this many of the best passages
SECOND_SENTENCE_MARGIN = 0.02
CENTERED_SPREAD = 4  # centered similarities spread about four times wider than plain ones: the margin grows with them
MAX_SENTENCES = 3


@dataclass(frozen=True)
class Source:
    """A cited passage, numbered in order of first use; ``highlights`` are spans of ``hit.text`` to mark."""

    number: int
    hit: Hit
    highlights: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, **self.hit.to_dict(), "highlights": [list(span) for span in self.highlights]}

    def in_another_language(self, language: str | None) -> bool:
        """Whether the passage is known to be in another language than ``language`` (one to translate)."""
        return bool(language and self.hit.language and self.hit.language != language)


@dataclass(frozen=True)
class AnswerSentence:
    """A sentence of the answer. Quoted, it is source ``source``'s text at ``start:end``; generated, it is the
    model's, and ``source``, ``start`` and ``end`` are its first citation's. ``citations`` are its verified quotes
    (a quoted sentence's is itself); ``score`` ranks a quoted sentence, and is a generated one's similarity to
    what it quotes."""

    text: str
    source: int
    score: float
    start: int
    end: int
    citations: tuple[Citation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "citations": [asdict(citation) for citation in self.citations]}

    def markers(self) -> str:
        """``[1][2]``: the sources it cites."""
        numbers = dict.fromkeys(citation.source for citation in self.citations) or {self.source: None}
        return "".join(f"[{number}]" for number in numbers)


@dataclass(frozen=True)
class Answer:
    """The answer to one question.

    Attributes:
        question: As asked.
        sentences: One to three quoted sentences, best first; empty when nothing is relevant enough.
        sources: The cited passages, numbered from 1 in order of first use.
        retrieved: Every passage retrieved for the question, best first (cited or not).
        timings: Seconds spent retrieving and choosing sentences.
        generated: Written by a language model, every sentence on verified quotes; else quoted.
        fallback: Why a generated answer was asked for and this is the quoted one (``None`` otherwise).
        generator: The model that wrote it, and the seconds it took.
        removed: What the verifier took out: sentences, and citations of sentences that stand.
        language: The language the answer was asked in (an ISO 639-1 code), for a generated answer.
    """

    question: str
    sentences: tuple[AnswerSentence, ...]
    sources: tuple[Source, ...]
    retrieved: tuple[Hit, ...]
    timings: dict[str, float] = field(default_factory=dict)
    generated: bool = False
    fallback: str | None = None
    generator: dict[str, Any] | None = None
    removed: tuple[Rejected, ...] = ()
    language: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.sentences)

    @property
    def removed_sentences(self) -> tuple[Rejected, ...]:
        """The sentences the verifier removed whole (``removed`` also holds citations dropped from others)."""
        return tuple(rejected for rejected in self.removed if rejected.citation is None)

    def text(self) -> str:
        """The answer as prose with ``[n]`` citation markers."""
        return " ".join(f"{sentence.text} {sentence.markers()}" for sentence in self.sentences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "found": self.found,
            "answer": self.text(),
            "generated": self.generated,
            "fallback": self.fallback,
            "generator": self.generator,
            "sentences": [sentence.to_dict() for sentence in self.sentences],
            "sources": [source.to_dict() for source in self.sources],
            "removed": [asdict(rejected) for rejected in self.removed],
            "timings": self.timings,
        }


def ask(archive: Archive, question: str, k: int = 8, filters: Filters | None = None, mode: str = "hybrid") -> Answer:
    """Answer ``question`` from the archive with quoted, cited sentences.

    The ``k`` best passages are retrieved; each of their sentences is scored by its own similarity to the
    question blended with its passage's, and the best one to three sentences are the answer. When even the best
    passage is below the calibrated relevance threshold, the answer is empty rather than a citation of noise.

    Args:
        archive: An opened index.
        question: In any language the model knows; the passages may be in another.
        k: Passages to consider.
        filters: Restrict the passages to some sources, languages or dates.
        mode: How passages are retrieved: ``hybrid``, ``dense`` or ``lexical`` (see
            :func:`indexer.retrieval.search.search`).

    Example:
        >>> answer = ask(Archive("archive"), "what happened to the MQ-9 drone")
        >>> print(answer.text())
    """
    started = time.perf_counter()
    query = embed_query(archive, question)
    hits = _unique(search_embedded(archive, question, query, k, filters, mode))
    retrieved_at = time.perf_counter()
    timings = {"retrieve": retrieved_at - started}
    closest = max((hit.similarity for hit in hits if hit.similarity is not None), default=None)
    if closest is None or not relevance.is_relevant(archive.embedder, query, closest):
        return Answer(question, (), (), tuple(hits), {**timings, "answer": time.perf_counter() - retrieved_at})
    candidates = []  # (score, hit index, span, vector)
    scorers, spread = _scorers(archive, question, query, hits)
    for index, (hit, passage_score, score_sentences) in enumerate(scorers):
        spans, vectors = _embedded_sentences(archive, hit.passage_id, hit.text, hit.language)
        for span, vector, sentence_score in zip(spans, vectors, score_sentences(vectors)):
            blended = SENTENCE_WEIGHT * float(sentence_score) + (1 - SENTENCE_WEIGHT) * passage_score
            candidates.append((blended, index, span, vector))
    candidates.sort(key=lambda candidate: -candidate[0])
    chosen = [candidates[0]]
    margin = SECOND_SENTENCE_MARGIN * spread
    for candidate in candidates[1:]:
        if len(chosen) == MAX_SENTENCES or candidate[0] < chosen[0][0] - margin:
            break
        if all(float(candidate[3] @ other[3]) < 0.95 for other in chosen):  # skip near-repeats
            chosen.append(candidate)
    numbers: dict[int, int] = {}
    sentences = []
    for score, index, (start, end), _ in chosen:
        number = numbers.setdefault(index, len(numbers) + 1)
        quote = hits[index].text[start:end]
        sentences.append(AnswerSentence(quote, number, score, start, end, (Citation(number, quote, start, end),)))
    sources = cited_sources({number: hits[index] for index, number in numbers.items()}, sentences)
    timings["answer"] = time.perf_counter() - retrieved_at
    return Answer(question, tuple(sentences), sources, tuple(hits), timings)


def cited_sources(hits: dict[int, Hit], sentences: list[AnswerSentence]) -> tuple[Source, ...]:
    """The sources numbered ``hits``' keys, each with its citations' spans to highlight."""
    return tuple(
        Source(
            number,
            hit,
            tuple(sorted({(c.start, c.end) for s in sentences for c in s.citations if c.source == number})),
        )
        for number, hit in hits.items()
    )


def _scorers(
    archive: Archive, question: str, query: np.ndarray, hits: list[Hit]
) -> tuple[list[tuple[Hit, float, Any]], float]:
    """For each of the passages answer sentences come from: the passage, its similarity to the question, and what
    scores its sentences' vectors; and how wide those scores spread beside plain cosines.

    When the passages are in several languages and search centers the question (:mod:`indexer.models.centering`), the
    scores are centered similarities, so that a sentence in the question's language does not win for its language
    alone. Otherwise plain cosines: among sentences of one language centering only added noise (SQuAD-it's English
    questions, bench/answer_quality.py).
    """
    hits = hits[:SENTENCE_PASSAGES]
    language = detect(question)
    means = archive.language_means
    ids = [hit.passage_id for hit in hits]
    languages = archive.lexical.languages_of(ids) if means.centers(language) else []
    if len(set(languages)) < 2:
        return [(hit, hit.similarity or 0.0, lambda vectors: vectors @ query) for hit in hits], 1.0
    centered = centering.centered_query(archive.embedder, query, language)
    passage_scores = means.similarities(centered, archive.vectors.vectors(ids), languages)

    def scorer(passage_language: str | None) -> Any:
        return lambda vectors: means.similarities(centered, vectors, [passage_language] * len(vectors))

    scorers = [(hit, float(score), scorer(lang)) for hit, score, lang in zip(hits, passage_scores, languages)]
    return scorers, CENTERED_SPREAD


def _unique(hits: list[Hit]) -> list[Hit]:
    """Drop passages whose text repeats a better-ranked one (the same wire copy in two articles)."""
    seen: set[str] = set()
    unique = []
    for hit in hits:
        key = " ".join(hit.text.split()).casefold()
        if key not in seen:
            seen.add(key)
            unique.append(hit)
    return unique


@functools.lru_cache(maxsize=8192)
def _embedded_sentences(
    archive: Archive, passage_id: int, text: str, language: str | None
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """A passage's sentence spans and their embeddings, kept for the passages asked about most recently."""
    spans = sentence_spans(text, language) or [(0, len(text))]
    return spans, archive.embedder.embed_passages([text[start:end] for start, end in spans])
