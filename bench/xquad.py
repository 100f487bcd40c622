"""Retrieval across languages and scripts, on XQuAD: one language at a time, and an archive of mixed languages.

XQuAD (``bench/data/xquad/``) holds the same 240 Wikipedia paragraphs and 1,190 questions in six languages,
professionally translated. Two kinds of archive are built from it, each paragraph one article:

- one language: the paragraphs in L alone, asked in L (L → L) and in English (en → L);
- mixed: each paragraph once, paragraph *i* in ``[de, es, ru, zh, ar, en][i mod 6]``, asked in English, in the
  paragraph's own language, and in a third language (one of the other four, drawn with a fixed seed).

Every set is measured in the default (hybrid) and dense modes: R@1 and MRR@10 (with 240 paragraphs, R@10 is near
1 everywhere). In the mixed archive ``ask`` answers every question too: the share of answers with a sentence that
holds one of the question's answers (in the gold paragraph's language), and of answers whose first sentence does.
The figures go to a JSON file that the benchmarks page's tables are generated from.

    python bench/xquad.py --work /tmp/xquad --out bench/results/xquad.json --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import DATA, machine, replace_table  # noqa: E402

from indexer.answers.quotes import ask
from indexer.ingest.index import index_paths
from indexer.retrieval.archive import Archive
from indexer.retrieval.evaluate import Question, evaluate

XQUAD = DATA / "xquad"
MIXED = ("de", "es", "ru", "zh", "ar", "en")  # paragraph i is in MIXED[i % 6]
SINGLE = ("de", "es", "ru", "zh", "ar")
MODES = ("hybrid", "dense")
SEED = 7


def _lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (XQUAD / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _archive(work: Path, name: str, passages: list[dict], embedder=None) -> Path:
    """Index ``passages`` (one article each) into ``work/name`` unless it already holds them."""
    source = work / f"{name}.jsonl"
    source.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in passages) + "\n", encoding="utf-8")
    report = index_paths([source], work / name, embedder=embedder)
    if report.problems:
        raise SystemExit(f"{source}: {report.problems[0]}")
    return work / name


def _questions(rows: list[dict], gold=lambda row: row["gold"]) -> list[Question]:
    return [Question(row["id"], row["text"], frozenset(gold(row)), row["lang"]) for row in rows]


def question_sets(work: Path) -> list[tuple[str, Path, list[Question]]]:
    """(label, archive, questions) for every row of the table, building the archives as needed."""
    queries = {language: _lines(f"queries_{language}.jsonl") for language in MIXED}
    sets = []
    for language in SINGLE:
        passages = [{**p, "language": language} for p in _lines(f"passages_{language}.jsonl")]
        archive = _archive(work, language, passages)
        sets.append((f"{language} → {language}", archive, _questions(queries[language])))
        sets.append((f"en → {language}", archive, _questions(queries["en"])))
    return sets + mixed_sets(work)


def mixed_sets(work: Path, embedder=None) -> list[tuple[str, Path, list[Question]]]:
    """The mixed archive's three rows: English questions, a third language's, the paragraph's own language's."""
    queries = {language: _lines(f"queries_{language}.jsonl") for language in MIXED}
    by_id = {language: {p["id"]: p for p in _lines(f"passages_{language}.jsonl")} for language in MIXED}
    language_of = {pid: MIXED[i % len(MIXED)] for i, pid in enumerate(sorted(by_id["en"]))}
    mixed = [
        {**by_id[language][pid], "id": f"{pid}-{language}", "language": language}
        for pid, language in language_of.items()
    ]
    archive = _archive(work, "mixed", mixed, embedder)

    def in_mixed(row: dict) -> list[str]:
        return [f"{gold}-{language_of[gold]}" for gold in row["gold"]]

    rng = random.Random(SEED)
    own, third = [], []
    for index, english in enumerate(queries["en"]):
        language = language_of[english["gold"][0]]
        own.append(queries[language][index])
        others = [other for other in MIXED if other not in ("en", language)]
        third.append(queries[rng.choice(others)][index])
    return [
        ("mixed archive, English questions", archive, _questions(queries["en"], in_mixed)),
        ("mixed archive, questions in a third language", archive, _questions(third, in_mixed)),
        ("mixed archive, questions in the paragraph's own language", archive, _questions(own, in_mixed)),
    ]


def answer_quality(archive: Archive, questions: list[Question]) -> dict[str, float]:
    """Ask every question of the mixed archive; score its answer against the answers in the gold paragraph's
    language (line k of every ``queries_L.jsonl`` is the same question)."""
    answers = {}
    for language in MIXED:
        for row in _lines(f"queries_{language}.jsonl"):
            answers[(row["id"], language)] = row["answers"]
    held = first = 0
    for question in questions:
        gold = answers[(question.id, next(iter(question.gold)).rsplit("-", 1)[1])]
        sentences = [sentence.text for sentence in ask(archive, question.text).sentences]
        held += any(answer in sentence for sentence in sentences for answer in gold)
        first += bool(sentences) and any(answer in sentences[0] for answer in gold)
    return {
        "answer_holds_gold": round(held / len(questions), 4),
        "first_sentence_holds_gold": round(first / len(questions), 4),
    }


def answers_table(results: dict) -> str:
    """The benchmarks page's table of answers in the mixed archive."""
    lines = ["| questions → mixed archive | answer holds the answer | its first sentence does |", "|---|---|---|"]
    for row in results["rows"]:
        if "answers" in row:
            figures = row["answers"]
            label = row["label"].replace("mixed archive, ", "")
            lines.append(
                f"| {label} | {figures['answer_holds_gold']:.3f} | {figures['first_sentence_holds_gold']:.3f} |"
            )
    return "\n".join(lines)


def markdown_table(results: dict) -> str:
    """The benchmarks page's cross-language table, from this script's results file."""
    lines = [
        "| questions → archive | hybrid R@1 (default) | dense R@1 | hybrid − dense | hybrid MRR@10 | dense MRR@10 |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        hybrid, dense = row["hybrid"], row["dense"]
        difference = hybrid["recall@1"] - dense["recall@1"]
        cells = [f"{hybrid['recall@1']:.3f}", f"{dense['recall@1']:.3f}", f"{difference:+.3f}"]
        cells += [f"{hybrid['mrr@10']:.3f}", f"{dense['mrr@10']:.3f}"]
        lines.append(f"| {row['label']} ({row['questions']:,}) | {' | '.join(cells)} |")
    lines.append(f"\nMeasured {results['date']} on {results['machine']}, with `{results['command']}`.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="where the archives are built (and kept)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's cross-language table")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    rows = []
    for label, directory, questions in question_sets(args.work):
        with Archive(directory) as archive:
            figures = {mode: e.to_dict() for mode, e in evaluate(archive, questions, MODES).items()}
            if directory.name == "mixed":
                figures["answers"] = answer_quality(archive, questions)
            model = archive.manifest.model
        rows.append({"label": label, "questions": len(questions), **figures})
        print(f"{label}: hybrid R@1 {figures['hybrid']['recall@1']}, dense R@1 {figures['dense']['recall@1']}")
    results = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "model": model,
        "command": "python bench/xquad.py " + " ".join(sys.argv[1:]),
        "rows": rows,
    }
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown_table(results))
    print(answers_table(results))
    if args.doc:
        replace_table(args.doc, markdown_table(results), "xquad")
        replace_table(args.doc, answers_table(results), "xquad-answers")


if __name__ == "__main__":
    main()
