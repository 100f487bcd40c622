"""Taking the language out of the vectors: a passage is found for what it says, not for the language it is in.

Multilingual models give every text of one language a shared component: a question in Russian then scores an
off-topic Russian passage above the right Chinese one (the "language bias" of LAReQA and of Libovický et al.,
2020). Two means remove it:

- each language's **mean passage vector**, taken from the archive itself: every segment stores the sum and count
  of its passages' vectors by language (:func:`indexer.storage.segment.write_language_sums`), and a snapshot adds
  them up, so the means follow the archive as it grows. A language with few passages is drawn towards the mean of
  all passages, lest centering erase the passages themselves.
- each language's **mean question vector**, from a fixed set of everyday questions in 22 languages
  (:data:`indexer.models.questions.QUESTIONS`), drawn towards the mean of all of them, which is also what a question in
  a language the set lacks gets. It depends on the model alone, so it is computed once and kept in the model cache.

A passage's centered similarity is the cosine between the question minus its language's question mean and the
passage minus its language's mean: in an archive of several languages (:data:`ONE_LANGUAGE_FROM`), or for a
question in another language than the archive's; else the plain cosine. Nothing here is tuned per language: the
same rule serves Greek or Thai.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence

import numpy as np

from indexer import config
from indexer.models.embedder import Embedder
from indexer.models.questions import QUESTIONS

# Passages a language's own mean counts as: with fewer, its mean leans towards all passages' (XQuAD's mixed
# archive has 40 passages a language: more prior costs it a point of R@1 for every 5 passages).
PRIOR_PASSAGES = 1
# An archive where one language holds this share of the passages is of that language: a question in it is compared
# by plain cosines (there is no other language to be biased against, and centering cost SQuAD-it's Italian questions
# 1.4 points of dense R@10); a question in another language still is centered.
ONE_LANGUAGE_FROM = 0.95

QUESTION_PRIOR = 5  # questions a language's own question mean counts as, beside the mean of all languages'


class QuestionMeans:
    """Each language's mean question vector, from :data:`indexer.models.questions.QUESTIONS`.

    A language's mean is drawn towards the mean of all languages' (:data:`QUESTION_PRIOR`); a language the set
    lacks gets that mean of all.

    Args:
        vectors: Per language, its questions' vectors (a row each).
    """

    def __init__(self, vectors: Mapping[str, np.ndarray]) -> None:
        self.overall = np.mean([rows.mean(axis=0) for rows in vectors.values()], axis=0).astype(np.float32)
        self._means = {
            language: ((rows.sum(axis=0) + QUESTION_PRIOR * self.overall) / (len(rows) + QUESTION_PRIOR)).astype(
                np.float32
            )
            for language, rows in vectors.items()
        }

    def of(self, language: str | None) -> np.ndarray:
        """The mean question vector of ``language`` (or of all, for a language the set lacks or None)."""
        return self._means.get(language or "", self.overall)


def question_means(embedder: Embedder) -> QuestionMeans:
    """:class:`QuestionMeans` as ``embedder`` embeds questions: computed once per model, kept in the model cache."""
    return _question_means(embedder.name, embedder.query_prompt, embedder.precision, embedder)


@functools.lru_cache(maxsize=8)
def _question_means(name: str, prompt: str, precision: str, embedder: Embedder) -> QuestionMeans:
    texts = [text for questions in QUESTIONS.values() for text in questions]
    key = hashlib.sha256(repr((name, prompt, precision, QUESTIONS)).encode()).hexdigest()[:16]
    cached = config.cache_dir() / f"question-vectors-{key}.npy"
    vectors = None
    with contextlib.suppress(OSError, ValueError):  # not computed yet on this machine, or unreadable: computed again
        vectors = np.load(cached)
    if vectors is None or vectors.shape != (len(texts), embedder.dimension):
        vectors = embedder.embed_queries(texts).astype(np.float32)
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".partial", delete=False) as file:
                np.save(file, vectors)
            os.replace(file.name, cached)
        except OSError:
            pass  # a cache that cannot be written: computed again by the next process
    by_language, start = {}, 0
    for language, questions in QUESTIONS.items():
        by_language[language], start = vectors[start : start + len(questions)], start + len(questions)
    return QuestionMeans(by_language)


class LanguageMeans:
    """Each language's mean passage vector, from the sums and counts of every segment.

    Args:
        sums: Per segment, language (``""`` for unknown) -> (sum of its passages' vectors, how many).
        dimension: Vector size.
    """

    def __init__(self, sums: Sequence[Mapping[str, tuple[np.ndarray, int]]], dimension: int) -> None:
        totals: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        for part in sums:
            for language, (total, count) in part.items():
                totals[language] = totals.get(language, np.zeros(dimension)) + total
                counts[language] = counts.get(language, 0) + count
        overall = sum(totals.values(), np.zeros(dimension)) / max(sum(counts.values()), 1)
        self.languages = sorted(totals)
        passages = sum(counts.values())
        largest = max(counts, key=counts.__getitem__) if counts else None
        # The language of an archive of one language (ONE_LANGUAGE_FROM), else None.
        self.dominant = largest if largest is not None and counts[largest] >= ONE_LANGUAGE_FROM * passages else None
        self._row = {language: row for row, language in enumerate(self.languages)}
        means = [(totals[lang] + PRIOR_PASSAGES * overall) / (counts[lang] + PRIOR_PASSAGES) for lang in self.languages]
        # A last row of zeros for a language no segment has counted: such a passage is left as it is.
        self.means = np.vstack([*means, np.zeros(dimension)]).astype(np.float32)

    def centers(self, language: str | None) -> bool:
        """Whether a question in ``language`` is compared by centered similarities: in an archive of several
        languages always; in one of one language, when the question is in another (known) one."""
        return self.dominant is None or (language is not None and language != self.dominant)

    def similarities(self, query: np.ndarray, vectors: np.ndarray, languages: Sequence[str | None]) -> np.ndarray:
        """Centered similarities of ``vectors`` (a row each, of passages in ``languages``) to a centered ``query``
        (:func:`centered_query`)."""
        if not len(vectors):
            return np.zeros(0, dtype=np.float32)
        rows = [self._row.get(language or "", len(self.languages)) for language in languages]
        centered = vectors - self.means[rows]
        lengths = np.linalg.norm(centered, axis=1)
        return (centered @ query) / np.maximum(lengths, 1e-6)


def centered_query(embedder: Embedder, query: np.ndarray, language: str | None) -> np.ndarray:
    """The question's vector without the mean question vector of its ``language``, normalized again."""
    centered = query - question_means(embedder).of(language)
    return (centered / max(float(np.linalg.norm(centered)), 1e-6)).astype(np.float32)
