"""Lexical search over passages (BM25, with bm25s), knowing which language each passage and the query are in.

Two BM25 indexes share the passages' row order:

- ``words``: stemmed words and whole codes (:func:`indexer.tokens.tokenize`). A query searches the passages in its
  own language with all its words, and passages in other languages only with its codes, numbers and names, the
  words that survive translation.
- ``grams``: character 4-grams of words (:func:`indexer.tokens.grams`), which let cognates meet across languages.

Each one's scores are divided by their best and weighted by :data:`WEIGHTS`, so that a lexical score of 1 is a
modest nudge beside a cosine similarity: the dense ranking decides, lexical evidence breaks near-ties.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import bm25s
import numpy as np

from .tokens import grams, names_and_codes, tokenize

# Weight of each index's normalized score, for passages in the query's language and in another one. Measured on
# SQuAD-it (Italian passages, Italian and English questions) with multilingual-e5-small: see bench/retrieval.py.
WEIGHTS = {"same": {"words": 0.04, "grams": 0.03}, "other": {"words": 0.01, "grams": 0.03}}
ROWS = "rows.json"

logging.getLogger("bm25s").setLevel(logging.WARNING)


class LexicalIndex:
    """BM25 over passages, by passage id; see the module docstring.

    Args:
        ids: Passage ids, in row order.
        languages: Each passage's language (ISO 639-1) or None.
        words: The BM25 index of :func:`tokenize` tokens.
        grams: The BM25 index of :func:`grams` tokens.
    """

    def __init__(
        self, ids: np.ndarray, languages: list[str | None], words: bm25s.BM25 | None, grams: bm25s.BM25 | None
    ) -> None:
        self.ids = ids
        self.languages = list(languages)
        # Rows per language, computed once: a query scores each language's passages in its own way.
        codes = np.asarray([language or "" for language in languages], dtype=object)
        self._rows_by_language = {language or None: codes == (language or "") for language in set(languages)}
        self.words = words
        self.grams = grams

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str, str | None]]) -> LexicalIndex:
        """Index ``(passage_id, text, language)`` rows; the text should carry the title, as embeddings do."""
        ids, languages, word_tokens, gram_tokens = [], [], [], []
        for passage_id, text, language in rows:
            ids.append(passage_id)
            languages.append(language)
            word_tokens.append(tokenize(text, language))
            gram_tokens.append(grams(text, language))
        return cls(np.asarray(ids, dtype=np.int64), languages, _bm25(word_tokens), _bm25(gram_tokens))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        rows = {"ids": self.ids.tolist(), "languages": self.languages}
        (directory / ROWS).write_text(json.dumps(rows), encoding="utf-8")
        for name in ("words", "grams"):
            retriever = getattr(self, name)
            if retriever is not None:
                retriever.save(str(directory / name), show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        rows = json.loads((directory / ROWS).read_text(encoding="utf-8"))
        retrievers = {
            name: bm25s.BM25.load(str(directory / name), mmap=True, show_progress=False, verbosity=0)
            if (directory / name).exists()
            else None
            for name in ("words", "grams")
        }
        return cls(np.asarray(rows["ids"], dtype=np.int64), rows["languages"], **retrievers)

    def __len__(self) -> int:
        return len(self.ids)

    def search(
        self, query: str, language: str | None, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` passages with the most lexical evidence for ``query`` (in ``language``), best first.

        Scores are the weighted sum of each index's BM25 score divided by its best; passages without a single
        matching token are left out. ``allowed``, when given, limits the search to those passage ids.
        """
        if not len(self):
            return []
        mask = np.isin(self.ids, allowed) if allowed is not None else np.ones(len(self), dtype=bool)
        total = np.zeros(len(self), dtype=np.float32)
        for passage_language, in_language in self._rows_by_language.items():
            rows = mask & in_language
            if not rows.any():
                continue
            same = language is None or passage_language == language
            weights = WEIGHTS["same" if same else "other"]
            word_tokens = tokenize(query, language) if same else names_and_codes(query, language, passage_language)
            if self.words is not None:
                total += weights["words"] * _normalized(self.words, word_tokens, rows)
            if self.grams is not None:
                total += weights["grams"] * _normalized(self.grams, grams(query, language), rows)
        found = np.flatnonzero(total > 0)
        best = found[np.argsort(-total[found], kind="stable")[:k]]
        return [(int(self.ids[row]), float(total[row])) for row in best]


def _bm25(corpus: list[list[str]]) -> bm25s.BM25 | None:
    if not any(corpus):  # bm25s cannot index a corpus without a single token
        return None
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    return retriever


def _normalized(retriever: bm25s.BM25, tokens: list[str], rows: np.ndarray) -> np.ndarray:
    """BM25 scores of ``tokens`` on ``rows`` (zero elsewhere), divided by the best among them."""
    token_ids = retriever.get_tokens_ids(tokens)
    if not token_ids:
        return np.zeros(len(rows), dtype=np.float32)
    scores = np.where(rows, retriever.get_scores_from_ids(token_ids), 0).astype(np.float32)
    best = scores.max()
    return scores / best if best > 0 else scores
