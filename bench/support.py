"""Where the verifier draws the line: how close in meaning a generated sentence must be to what it quotes.

A generated answer's sentence is in the asker's language; its quotes are in the source's. XQuAD's passages are
professional translations of the same English paragraphs, sentence by sentence, so a passage's English sentence
and the same sentence in another language stand for a claim and the quote that supports it. Two kinds of pairs
stand for a true quote under a claim it does not support: the English sentence with another sentence of the same
passage (same subject, another fact: the hard case), and with a sentence of another article.

Each pair's similarity is the cosine between the two sentences' vectors, the query prompt on both sides, as
:func:`indexer.answers.verify.verify` computes it. Only passages whose sentence counts agree in both languages are
used, so that sentences pair by position.

Usage:

    python bench/support.py --out bench/results/support.json --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from indexer.models.embedder import load_embedder, model_name
from indexer.text.sentences import sentence_spans

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import machine, replace_table  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "xquad"
LANGUAGES = ("ar", "de", "es", "ru", "zh")
KEEP = 0.99  # of true quotes: the line is drawn where this many still stand (rounded down to 0.01)
SHOWN = (0.70, 0.75, 0.78, 0.80, 0.82, 0.85)  # other lines, for the table


def sentences(language: str) -> dict[str, tuple[str, list[str]]]:
    """Passage id -> (title, its sentences) in ``language``."""
    found = {}
    for line in (DATA / f"passages_{language}.jsonl").open(encoding="utf-8"):
        passage = json.loads(line)
        text = passage["text"]
        found[passage["id"]] = (passage["title"], [text[s:e] for s, e in sentence_spans(text, language)])
    return found


def pairs(seed: int) -> dict[str, list[tuple[str, str, str]]]:
    """(kind -> [(language, English sentence, other sentence)]) for every language."""
    rng = random.Random(seed)
    english = sentences("en")
    out: dict[str, list[tuple[str, str, str]]] = {"translation": [], "same passage": [], "other article": []}
    for language in LANGUAGES:
        other = sentences(language)
        ids = [i for i in english if i in other and len(english[i][1]) == len(other[i][1]) > 1]
        for passage_id in ids:
            title, mine = english[passage_id]
            theirs = other[passage_id][1]
            for index, sentence in enumerate(mine):
                out["translation"].append((language, sentence, theirs[index]))
                out["same passage"].append(
                    (language, sentence, theirs[rng.choice([j for j in range(len(theirs)) if j != index])])
                )
                elsewhere = rng.choice([i for i in ids if english[i][0] != title])
                out["other article"].append((language, sentence, rng.choice(other[elsewhere][1])))
    return out


def similarities(embedder, rows: list[tuple[str, str, str]]) -> np.ndarray:
    left = embedder.embed_queries([claim for _, claim, _ in rows])
    right = embedder.embed_queries([quote for _, _, quote in rows])
    return (left * right).sum(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--doc", type=Path, help="replace the table in this docs page")
    args = parser.parse_args()
    embedder = load_embedder(model_name())
    found = {kind: similarities(embedder, rows) for kind, rows in pairs(args.seed).items()}
    true = found["translation"]
    chosen = math.floor(float(np.quantile(true, 1 - KEEP)) * 100) / 100
    lines = sorted({*SHOWN, chosen})
    results = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "model": embedder.name,
        "command": "python bench/support.py " + " ".join(sys.argv[1:]),
        "pairs": {kind: len(values) for kind, values in found.items()},
        "quantiles_5_50_95": {
            kind: np.quantile(values, [0.05, 0.5, 0.95]).round(4).tolist() for kind, values in found.items()
        },
        "chosen_threshold": chosen,
        "kept": {
            f"{line:.2f}": {kind: round(float((values >= line).mean()), 4) for kind, values in found.items()}
            for line in lines
        },
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.doc:
        replace_table(args.doc, markdown_table(results), "support")


def markdown_table(results: dict) -> str:
    rows = [
        "| Threshold | True quotes kept | Same passage, another sentence, kept | Another article's sentence, kept |",
        "|---|---|---|---|",
    ]
    for line, kept in results["kept"].items():
        cells = [f"{kept[kind]:.1%}" for kind in ("translation", "same passage", "other article")]
        mark = "**" if float(line) == results["chosen_threshold"] else ""
        rows.append(f"| {mark}{line}{mark} | " + " | ".join(f"{mark}{cell}{mark}" for cell in cells) + " |")
    pairs = results["pairs"]["translation"]
    rows.append(
        f"\n{pairs:,} sentence pairs of each kind, English against Arabic, German, Spanish, Russian and Chinese; "
        f"model {results['model']}. Measured {results['date']} on {results['machine']}, with "
        f"`{results['command']}`."
    )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
