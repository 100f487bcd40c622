"""Indexing on Ray against indexing locally, on this machine: passages per second and Ray's fixed start-up cost.

Each run is a whole ``newsarchive index --rebuild`` process (model load, and Ray's start, included), one after
the other: locally; on a local Ray with one actor of every core; with one actor per core. Each runs twice, on
SQuAD-it's first ``--passages`` paragraphs as articles and on one article, so that the difference of the two
gives the rate of the steady pipeline (passages per second once started) and the one-article run the fixed
cost of starting (for Ray: the cluster, the actors, their model loads). Medians of ``--runs`` runs.

    python bench/cluster.py --passages 600 --out bench/results/cluster.json --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import EVAL, machine, replace_table  # noqa: E402

CORES = os.cpu_count() or 1
RUNS = {
    "local": [],
    f"Ray, 1 actor × {CORES} CPUs": ["--ray", "--ray-actors", "1", "--ray-cpus-per-actor", str(CORES)],
    f"Ray, {CORES} actors × 1 CPU": ["--ray", "--ray-actors", str(CORES), "--ray-cpus-per-actor", "1"],
}


def write_inputs(folder: Path, passages: int) -> tuple[Path, Path]:
    """SQuAD-it paragraphs, one article each, and a file of the first one alone."""
    with (EVAL / "passages.jsonl").open(encoding="utf-8") as lines:
        records = [json.loads(line) for _, line in zip(range(passages), lines)]
    many, one = folder / "many.jsonl", folder / "one.jsonl"
    for path, chosen in ((many, records), (one, records[:1])):
        with path.open("w", encoding="utf-8") as out:
            for record in chosen:
                out.write(json.dumps({"id": record["id"], "title": record["title"], "text": record["text"]}) + "\n")
    return many, one


def timed_index(inputs: Path, archive: Path, extra: list[str]) -> tuple[float, int]:
    """Seconds of one whole ``newsarchive index`` process, and the passages it indexed."""
    newsarchive = str(Path(sys.executable).parent / "newsarchive")
    command = [newsarchive, "index", str(inputs), "--index-dir", str(archive), "--rebuild"]
    started = time.perf_counter()
    subprocess.run(command + extra, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    manifest = json.loads((archive / "manifest.json").read_text())
    return seconds, int(manifest["passages"])


def measure(passages: int, runs: int) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        many, one = write_inputs(Path(folder), passages)
        timed_index(one, Path(folder) / "warm-up", [])  # the model's first-use export and backend choice
        for label, extra in RUNS.items():
            small, large, count = [], [], 0
            for run in range(runs):
                small.append(timed_index(one, Path(folder) / f"one-{run}", extra)[0])
                seconds, count = timed_index(many, Path(folder) / f"many-{run}", extra)
                large.append(seconds)
            fixed, whole = statistics.median(small), statistics.median(large)
            results[label] = {
                "passages": count,
                "whole_seconds": round(whole, 2),
                "one_article_seconds": round(fixed, 2),
                "passages_per_second": round(count / whole, 1),
                "steady_passages_per_second": round((count - 1) / (whole - fixed), 1),
            }
            print(label, results[label], flush=True)
    local = results["local"]
    for figure in results.values():
        figure["vs_local"] = round(figure["passages_per_second"] / local["passages_per_second"], 2)
        figure["steady_vs_local"] = round(figure["steady_passages_per_second"] / local["steady_passages_per_second"], 2)
        figure["start_up_over_local_seconds"] = round(figure["one_article_seconds"] - local["one_article_seconds"], 2)
    return {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "command": "python bench/cluster.py " + " ".join(sys.argv[1:]),
        "runs": runs,
        "results": results,
    }


def markdown_table(results: dict) -> str:
    lines = [
        "| run | passages/s (whole run) | vs local | steady passages/s | vs local | start-up beyond local |",
        "|---|---|---|---|---|---|",
    ]
    for label, figure in results["results"].items():
        lines.append(
            f"| {label} | {figure['passages_per_second']} | {figure['vs_local']}× | "
            f"{figure['steady_passages_per_second']} | {figure['steady_vs_local']}× | "
            f"{figure['start_up_over_local_seconds']} s |"
        )
    count = next(iter(results["results"].values()))["passages"]
    lines.append(
        f"\nWhole `newsarchive index --rebuild` processes of {count:,} SQuAD-it passages; steady: the rate once "
        f"started (the run of one article subtracted). Medians of {results['runs']} runs, measured "
        f"{results['date']} on {results['machine']} with `{results['command']}`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=600)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's cluster table")
    args = parser.parse_args()
    results = measure(args.passages, args.runs)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown_table(results))
    if args.doc:
        replace_table(args.doc, markdown_table(results), marker="cluster")


if __name__ == "__main__":
    main()
