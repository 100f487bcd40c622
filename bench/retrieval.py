"""Retrieval quality on SQuAD-it, for every search mode, Italian and English questions over Italian passages.

Indexes the benchmark's 2,010 passages (each one an article) unless the index directory already holds them, runs
``newsarchive eval``'s measurement for hybrid, dense and lexical search, and writes the figures to a JSON file that
the benchmarks page's table is generated from (``--doc`` rewrites that table in place).

It also measures the fixed sample that ``tests/test_retrieval_quality.py`` checks in ``make test`` (a few hundred
questions over the paragraphs of a few whole Wikipedia articles), so that test knows what to expect.

Usage:

    python bench/retrieval.py -d /tmp/squad-archive --out bench/results/retrieval.json --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from indexer.ingest.index import index_paths
from indexer.models.backends import cpu_name
from indexer.retrieval.archive import Archive
from indexer.retrieval.evaluate import Question, evaluate, load_questions
from indexer.retrieval.search import MODES

DATA = Path(__file__).resolve().parent / "data"  # the benchmarks, carried in the repo (CC BY-SA 4.0, see their READMEs)
EVAL = DATA / "squad-it"
LANGUAGES = {"it": "Italian questions", "en": "English questions, Italian passages"}
SAMPLE_PASSAGES = 300  # at least: whole Wikipedia articles are drawn until the sample has this many paragraphs
SAMPLE_QUESTIONS = 200  # Italian questions about them; their English originals come along
SEED = 7


def regression_sample(eval_dir: Path = EVAL) -> tuple[list[str], dict[str, list[Question]]]:
    """The fixed sample the quality test runs: passage lines (JSONL) and questions per language.

    Whole Wikipedia articles (every paragraph of a title) are drawn, so that each question competes with the
    paragraphs most like its answer, as in the full benchmark.
    """
    lines = (eval_dir / "passages.jsonl").read_text(encoding="utf-8").splitlines()
    by_title: dict[str, list[str]] = {}
    for line in lines:
        by_title.setdefault(json.loads(line)["title"], []).append(line)
    titles = sorted(by_title)
    random.Random(SEED).shuffle(titles)
    kept: list[str] = []
    for title in titles:
        if len(kept) >= SAMPLE_PASSAGES:
            break
        kept += by_title[title]
    ids = {json.loads(line)["id"] for line in kept}
    italian = [q for q in load_questions(eval_dir / "queries_it.jsonl") if q.gold <= ids]
    italian = random.Random(SEED).sample(italian, min(SAMPLE_QUESTIONS, len(italian)))
    chosen = {q.id for q in italian}
    english = [q for q in load_questions(eval_dir / "queries_en.jsonl") if q.id in chosen]
    return kept, {"it": italian, "en": english}


def machine() -> str:
    """The CPU model and core count, for the record: figures from different machines do not compare."""
    return f"{cpu_name()}, {os.cpu_count()} cores, no GPU, Python {platform.python_version()}"


def measure(archive: Archive, questions: dict[str, list[Question]]) -> dict:
    return {
        language: {mode: result.to_dict() for mode, result in evaluate(archive, qs, MODES).items()}
        for language, qs in questions.items()
    }


def markdown_table(results: dict) -> str:
    """The benchmarks page's retrieval table, from this script's results file."""
    lines = [
        "| questions | mode | R@1 | R@5 | R@10 | R@100 | MRR@10 | nDCG@10 | queries/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for language, label in LANGUAGES.items():
        for mode in MODES:
            r = results["full"][language][mode]
            cells = [
                f"{r[key]:.3f}" for key in ("recall@1", "recall@5", "recall@10", "recall@100", "mrr@10", "ndcg@10")
            ]
            name = f"**{mode}**" if mode == "hybrid" else mode
            lines.append(
                f"| {label} ({r['questions']:,}) | {name} | {' | '.join(cells)} | {r['queries_per_second']:,.0f} |"
            )
    lines.append(f"\nMeasured {results['date']} on {results['machine']}, with `{results['command']}`.")
    return "\n".join(lines)


def replace_table(page: Path, table: str, marker: str = "retrieval") -> None:
    """Put ``table`` between the docs page's ``<!-- marker:start -->`` and ``<!-- marker:end -->`` lines."""
    text = page.read_text(encoding="utf-8")
    pattern = re.compile(rf"(<!-- {marker}:start -->\n)(?:.*?\n)?(<!-- {marker}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{page}: no <!-- {marker}:start --> ... <!-- {marker}:end --> markers")
    page.write_text(pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", "--index-dir", required=True, type=Path, help="where the SQuAD-it index is (or goes)")
    parser.add_argument("--eval", type=Path, default=EVAL)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's retrieval table")
    parser.add_argument(
        "--sample-only", action="store_true", help="measure only the test's sample; keep --out's other figures"
    )
    args = parser.parse_args()

    if args.sample_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        report = index_paths([args.eval / "passages.jsonl"], args.index_dir)
        print(f"index: {report.added} added, {report.unchanged} unchanged, {report.seconds:.0f} s", file=sys.stderr)
        questions = {lang: load_questions(args.eval / f"queries_{lang}.jsonl") for lang in LANGUAGES}
        with Archive(args.index_dir) as archive:
            results = {
                "date": datetime.now(timezone.utc).date().isoformat(),
                "machine": machine(),
                "model": archive.manifest.model,
                "command": "python bench/retrieval.py " + " ".join(sys.argv[1:]),
                "full": measure(archive, questions),
            }
    lines, sample_questions = regression_sample(args.eval)
    with tempfile.TemporaryDirectory() as tmp:
        sample_file = Path(tmp) / "passages.jsonl"
        sample_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        index_paths([sample_file], Path(tmp) / "index")
        with Archive(Path(tmp) / "index") as archive:
            results["regression_sample"] = {"articles": len(lines), **measure(archive, sample_questions)}
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(results))
    if args.doc:
        replace_table(args.doc, markdown_table(results))


if __name__ == "__main__":
    main()
