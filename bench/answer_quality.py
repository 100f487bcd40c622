"""Answer quality and the no-answer rule, measured on SQuAD-it.

For each question, ``ask`` chooses answer sentences; an answer counts as right when one of its sentences contains
one of the question's gold answer strings. The no-answer rule (:mod:`indexer.retrieval.relevance`) is checked both ways:
how many questions it answers, and how many off-topic questions it refuses -- the same question asked of the
archive without its gold Wikipedia article (every paragraph of that title left out of the search).

Usage (index the passages first; every passage is one article):

    newsarchive index bench/data/squad-it/passages.jsonl -d /tmp/squad-archive
    python bench/answer_quality.py -d /tmp/squad-archive --out bench/results/answer_quality.json \\
        --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from indexer.answers import quotes as answer_module
from indexer.retrieval import relevance
from indexer.retrieval.archive import Archive

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import EVAL, machine, replace_table  # noqa: E402


def load_queries(path: Path, limit: int | None) -> list[dict]:
    queries = [json.loads(line) for line in path.open(encoding="utf-8")]
    if limit and limit < len(queries):
        queries = [queries[int(i * len(queries) / limit)] for i in range(limit)]  # an even sample
    return queries


def contains_gold(text: str, answers: list[str]) -> bool:
    folded = text.casefold()
    return any(answer.strip() and answer.casefold() in folded for answer in answers)


def measure(archive: Archive, queries: list[dict], ids_by_title: dict[str, np.ndarray], title_of: dict[str, str]):
    """Per question: the answer's correctness, and the relevance margin on and off topic."""
    all_ids = archive.vectors.ids()
    embedder = archive.embedder
    vectors = embedder.embed_queries([q["text"].strip() for q in queries])
    rows = []
    for query, vector in zip(queries, vectors):
        result = answer_module.ask(archive, query["text"], k=8)  # the app's and the CLI's default
        excluded = np.concatenate([ids_by_title[title_of[gold]] for gold in query["gold"]])
        off_topic = archive.vectors.search(vector, 1, np.setdiff1d(all_ids, excluded))
        top = max((hit.similarity or 0.0 for hit in result.retrieved), default=0.0)  # as ask() judges
        rows.append(
            {
                "top_is_gold": bool(result.retrieved) and result.retrieved[0].article_id in query["gold"],
                "answer_right": contains_gold(result.text(), query["answers"]),
                "first_sentence_right": bool(result.sentences)
                and contains_gold(result.sentences[0].text, query["answers"]),
                "sentences": len(result.sentences),
                "margin": relevance.margin(embedder, vector, top),
                "off_topic_margin": relevance.margin(embedder, vector, off_topic[0][1]) if off_topic else -1.0,
            }
        )
    return rows


def summarize(rows: list[dict], min_margin: float) -> dict:
    n = len(rows)
    answered = [r for r in rows if r["margin"] >= min_margin]
    return {
        "questions": n,
        "top_passage_is_gold": round(sum(r["top_is_gold"] for r in rows) / n, 4),
        "answer_contains_gold": round(sum(r["answer_right"] for r in answered) / n, 4),
        "first_sentence_contains_gold": round(sum(r["first_sentence_right"] for r in answered) / n, 4),
        "mean_sentences": round(sum(r["sentences"] for r in answered) / max(len(answered), 1), 2),
        "answered": round(len(answered) / n, 4),
        "off_topic_refused": round(sum(r["off_topic_margin"] < min_margin for r in rows) / n, 4),
    }


def markdown_table(results: dict) -> str:
    """The benchmarks page's answer-quality table, from this script's results file."""
    run = results["runs"][0]
    lines = [
        "| questions | answered | answer contains a gold answer | first sentence does | top passage is gold "
        "| off-topic refused |",
        "|---|---|---|---|---|---|",
    ]
    for language, label in (("it", "Italian"), ("en", "English, over Italian passages")):
        r = run[language]
        shares = ("answered", "answer_contains_gold", "first_sentence_contains_gold", "top_passage_is_gold")
        cells = [f"{r[key]:.1%}" for key in (*shares, "off_topic_refused")]
        lines.append(f"| {label} ({r['questions']:,}) | {' | '.join(cells)} |")
    means = [run[language]["mean_sentences"] for language in ("it", "en")]
    lines.append(
        f"\nSettings: sentence weight {run['sentence_weight']}, sentences from the best {run['sentence_passages']} "
        f"of {results['k']} passages, relevance margin {results['min_margin']}; "
        f"{min(means):.1f}–{max(means):.1f} sentences per answer on average. "
        f"Measured {results['date']} on {results['machine']}, with `{results['command']}`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", "--index-dir", required=True, type=Path)
    parser.add_argument("--eval", type=Path, default=EVAL)
    parser.add_argument("--limit", type=int, help="questions per language (an even sample); default all")
    parser.add_argument("--sentence-weights", type=float, nargs="+", default=[answer_module.SENTENCE_WEIGHT])
    parser.add_argument("--sentence-passages", type=int, nargs="+", default=[answer_module.SENTENCE_PASSAGES])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's answer-quality table")
    args = parser.parse_args()

    min_margin = relevance.MIN_MARGIN
    relevance.MIN_MARGIN = -math.inf  # answer everything; the rule is applied afterwards, from the margins
    archive = Archive(args.index_dir)
    title_of = dict(archive.store.db.execute("SELECT article_id, title FROM articles").fetchall())
    grouped = archive.store.db.execute(
        "SELECT a.title, list(p.passage_id) FROM passages p JOIN articles a USING (article_id) GROUP BY a.title"
    ).fetchall()
    ids_by_title = {title: np.array(ids, dtype=np.int64) for title, ids in grouped}
    queries = {lang: load_queries(args.eval / f"queries_{lang}.jsonl", args.limit) for lang in ("it", "en")}

    results: dict = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "model": archive.manifest.model,
        "k": 8,
        "command": "python bench/answer_quality.py " + " ".join(sys.argv[1:]),
        "min_margin": min_margin,
        "runs": [],
    }
    settings = [(weight, passages) for passages in args.sentence_passages for weight in args.sentence_weights]
    for weight, passages in settings:
        answer_module.SENTENCE_WEIGHT, answer_module.SENTENCE_PASSAGES = weight, passages
        run: dict = {"sentence_weight": weight, "sentence_passages": passages}
        for language, language_queries in queries.items():
            started = time.perf_counter()
            rows = measure(archive, language_queries, ids_by_title, title_of)
            run[language] = summarize(rows, min_margin)
            print(f"{run} {language}: {len(rows)} questions in {time.perf_counter() - started:.0f} s")
        results["runs"].append(run)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.doc:
        replace_table(args.doc, markdown_table(results), "answer-quality")


if __name__ == "__main__":
    main()
