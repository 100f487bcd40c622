"""Counting speed: ``coverage`` of a common word and ``search --match`` of a rare phrase, on a large archive.

The archive is ``bench/search.py``'s synthetic one (real SQuAD-it sentences recombined into articles, each
passage's vector the mean of its sentences' real ones), each article also given one of 20 sources and a
publication time over two years, at random. Counting needs no model. Each figure is the median (and 95th
percentile) of 21 runs in one process after one warm-up run, which reads the postings and the Parquet footers a
process reads once; the warm-up's own time is reported too.

    python bench/counting.py --work /tmp/counting-bench --passages 1000000 --out bench/results/counting.json \\
        --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import machine, replace_table  # noqa: E402
from search import SyntheticEmbedder, embed_sentences, sentences_by_title, write_corpus  # noqa: E402

from indexer.exact.counts import coverage, matches
from indexer.ingest.index import index_paths
from indexer.storage import Snapshot

SOURCES = [f"Source {number:02d}" for number in range(20)]
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAYS = 730
RUNS = 21
COMMON = ("anni", "stato", "parte", "città", "guerra")  # the most frequent of these is the common word


def dated_corpus(passages: int, path: Path) -> None:
    """``bench/search.py``'s corpus, each article given a source and a publication time."""
    plain = path.with_suffix(".plain.jsonl")
    write_corpus(passages, plain)
    rng = random.Random(1)
    with plain.open(encoding="utf-8") as lines, path.open("w", encoding="utf-8") as out:
        for line in lines:
            published = START + timedelta(seconds=rng.randrange(DAYS * 86_400))
            article = {**json.loads(line), "source": rng.choice(SOURCES), "published": published.isoformat()}
            out.write(json.dumps(article, ensure_ascii=False) + "\n")
    plain.unlink()


def rare_phrase(seed: int = 7) -> str:
    """Three words in a row of one SQuAD-it sentence: in the few hundred articles that drew that sentence."""
    sentences = sorted({s for group in sentences_by_title().values() for s in group})
    rng = random.Random(seed)
    while True:
        words = rng.choice(sentences).split()
        for start in range(len(words) - 2):
            window = words[start : start + 3]
            if all(word.isalpha() and len(word) > 3 for word in window):
                return '"' + " ".join(window) + '"'


def timed(run) -> dict:
    started = time.perf_counter()
    result = run()
    first = time.perf_counter() - started
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(times[int(0.95 * (RUNS - 1))] * 1000, 1),
        "first_ms": round(first * 1000, 1),
        "rows": result.num_rows,
    }


def measure(work: Path, passages: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    vectors = work / "sentence-vectors.npz"
    if not vectors.exists():
        embed_sentences(vectors)
    directory = work / f"archive-{passages}"
    built: dict = {}
    if not directory.exists():
        corpus = work / f"corpus-{passages}.jsonl"
        dated_corpus(passages, corpus)
        report = index_paths([corpus], directory, embedder=SyntheticEmbedder(vectors), parallel=True)
        built = {"build_seconds": round(report.seconds, 1)}
    phrase = rare_phrase()
    with Snapshot(directory) as snapshot:
        counts = {word: sum(coverage(snapshot, word, by="year").column("matching").to_pylist()) for word in COMMON}
        common = max(counts, key=counts.get)
        figures = {
            "coverage of a common word, by month": timed(lambda: coverage(snapshot, common, by="month")),
            "coverage of a common word, by day": timed(lambda: coverage(snapshot, common, by="day")),
            "coverage of a common word, by source and week": timed(
                lambda: coverage(snapshot, common, by="week", by_source=True)
            ),
            "match of a rare phrase": timed(lambda: matches(snapshot, phrase)),
            "match of a rare phrase, by relevance": timed(lambda: matches(snapshot, phrase, sort="relevance")),
        }
        articles, passages_in = snapshot.manifest.articles, snapshot.manifest.passages
        segments = len(snapshot.manifest.segments)
    return {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "command": "python bench/counting.py " + " ".join(sys.argv[1:]),
        "articles": articles,
        "passages": passages_in,
        "segments": segments,
        "common_word": common,
        "common_word_articles": counts[common],
        "rare_phrase": phrase,
        "rare_phrase_articles": figures["match of a rare phrase"]["rows"],
        "runs": RUNS,
        **built,
        "figures": figures,
    }


def markdown_table(results: dict) -> str:
    lines = ["| query | rows | p50 | p95 | first run |", "|---|---|---|---|---|"]
    for name, figure in results["figures"].items():
        lines.append(
            f"| {name} | {figure['rows']:,} | {figure['p50_ms']} ms | {figure['p95_ms']} ms | {figure['first_ms']} ms |"
        )
    lines.append(
        f"\nThe common word: `{results['common_word']}`, in {results['common_word_articles']:,} of "
        f"{results['articles']:,} articles; the rare phrase: `{results['rare_phrase']}`, in "
        f"{results['rare_phrase_articles']:,}. {results['passages']:,} passages in {results['segments']} segments, "
        f"dated over two years, 20 sources. Medians of {results['runs']} runs after a first; measured "
        f"{results['date']} on {results['machine']} with `{results['command']}`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="where the corpus and the archive go")
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's counting table")
    args = parser.parse_args()
    results = measure(args.work, args.passages)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown_table(results))
    if args.doc:
        replace_table(args.doc, markdown_table(results), marker="counting")


if __name__ == "__main__":
    main()
