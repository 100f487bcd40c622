"""Retrieval quality on a set of questions with known answers: recall@k, MRR@10, nDCG@10 and queries per second.

Ranking is by article: passages are retrieved, and each article counts at the rank of its best passage. The
figures can also be split by question language and the language of the article that answers it
(:func:`evaluate_by_language`), which is where a multilingual archive's weaknesses show.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.errors import InputProblem
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import MODES, rank
from indexer.text.language import detect

CUTOFFS = (1, 5, 10, 100)
# Passages fetched per question, so that the deepest cutoff still sees 100 distinct articles in practice.
_DEPTH = 200


@dataclass(frozen=True)
class Question:
    """A question, the ids of the articles that answer it, and its language (``lang``, else detected)."""

    id: str
    text: str
    gold: frozenset[str]
    language: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """Averages over all questions; ``recall`` maps each cutoff k to the share answered in the top k."""

    questions: int
    recall: dict[int, float]
    mrr_at_10: float
    ndcg_at_10: float
    queries_per_second: float

    def to_dict(self) -> dict[str, float]:
        return {
            "questions": self.questions,
            **{f"recall@{k}": round(v, 4) for k, v in self.recall.items()},
            "mrr@10": round(self.mrr_at_10, 4),
            "ndcg@10": round(self.ndcg_at_10, 4),
            "queries_per_second": round(self.queries_per_second, 1),
        }


def load_questions(path: Path, limit: int | None = None, sample: bool = False, seed: int = 0) -> list[Question]:
    """Read ``{"id", "text", "gold": [article ids]}`` lines, with an optional ``"lang"`` (ISO 639-1).

    ``limit`` keeps the first N questions, or N drawn at random (with a fixed ``seed``) when ``sample`` is set.
    """
    questions = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputProblem(str(path), f"cannot read: {error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            gold = frozenset(map(str, record["gold"]))
            questions.append(Question(str(record["id"]), str(record["text"]), gold, record.get("lang")))
        except (ValueError, KeyError, TypeError):
            raise InputProblem(str(path), 'expected {"id", "text", "gold": [article ids]}', number) from None
    if limit is not None and limit < len(questions):
        questions = random.Random(seed).sample(questions, limit) if sample else questions[:limit]
    return questions


def evaluate(archive: Archive, questions: list[Question], modes: Sequence[str] = MODES) -> dict[str, Evaluation]:
    """Ask every question of the archive in each search mode and score where its gold articles come.

    The questions are embedded once, in batches, and every mode reuses the vectors; each mode's queries per
    second count the embedding time too, except in lexical mode, which needs none.
    """
    return {
        mode: _score(questions, rankings, seconds)
        for mode, (rankings, seconds) in _rank(archive, questions, modes).items()
    }


def evaluate_by_language(
    archive: Archive, questions: list[Question], modes: Sequence[str] = MODES
) -> dict[str, dict[str, Evaluation]]:
    """:func:`evaluate` for all questions (``"all"``) and split by language pair: ``{mode: {"all": ..., "en→ru":
    Evaluation, ...}}``.

    A pair is the question's language (its ``lang``, else detected from its text) and the language of the
    article that answers it (``articles.language``; ``mixed`` when its gold articles differ). Queries per second
    are those of all questions.
    """
    ranked = _rank(archive, questions, modes)
    language_of = dict(archive.store.db.execute("SELECT article_id, language FROM articles").fetchall())
    groups: dict[str, list[int]] = {"all": list(range(len(questions)))}
    for index, question in enumerate(questions):
        asked = question.language or detect(question.text) or "unknown"
        answered = {language_of.get(article) or "unknown" for article in question.gold}
        pair = f"{asked}→{answered.pop() if len(answered) == 1 else 'mixed'}"
        groups.setdefault(pair, []).append(index)
    groups = {"all": groups.pop("all"), **dict(sorted(groups.items()))}
    results: dict[str, dict[str, Evaluation]] = {}
    for mode, (rankings, seconds) in ranked.items():
        results[mode] = {  # each group's share of the time, so that its queries per second are all questions'
            pair: _score(
                [questions[i] for i in members], [rankings[i] for i in members], seconds * len(members) / len(questions)
            )
            for pair, members in groups.items()
        }
    return results


def _rank(
    archive: Archive, questions: list[Question], modes: Sequence[str]
) -> dict[str, tuple[list[list[str]], float]]:
    """Each mode's article ranking for every question, and the seconds it took (embedding included)."""
    if not questions:
        raise InputProblem("questions", "no questions to evaluate")
    vectors: np.ndarray | None = None
    embedding_seconds = 0.0
    if any(mode != "lexical" for mode in modes):
        started = time.perf_counter()
        vectors = archive.embedder.embed_queries([question.text for question in questions])
        embedding_seconds = time.perf_counter() - started
    article_of = dict(archive.store.db.execute("SELECT passage_id, article_id FROM passages").fetchall())
    ranked = {}
    for mode in modes:
        started = time.perf_counter()
        rankings = [
            [article_of[passage_id] for passage_id, _ in rank(archive, q.text, vector, _DEPTH, mode=mode)]
            for q, vector in zip(questions, vectors if vectors is not None else [None] * len(questions))
        ]
        ranked[mode] = (rankings, time.perf_counter() - started + (embedding_seconds if mode != "lexical" else 0.0))
    return ranked


def _score(questions: list[Question], rankings: list[list[str]], seconds: float) -> Evaluation:
    found = {k: 0 for k in CUTOFFS}
    reciprocal_ranks = ndcg = 0.0
    for question, passages in zip(questions, rankings):
        ranking = list(dict.fromkeys(passages))
        ranks = [rank for rank, article in enumerate(ranking, start=1) if article in question.gold]
        for k in CUTOFFS:
            found[k] += bool(ranks and ranks[0] <= k)
        if ranks and ranks[0] <= 10:
            reciprocal_ranks += 1 / ranks[0]
        ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(question.gold), 10) + 1))
        ndcg += sum(1 / math.log2(rank + 1) for rank in ranks if rank <= 10) / ideal
    n = len(questions)
    return Evaluation(n, {k: found[k] / n for k in CUTOFFS}, reciprocal_ranks / n, ndcg / n, n / seconds)
