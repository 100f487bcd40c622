"""Alert precision and recall on a labelled set, with the real default model.

The set (``tests/fixtures/alerts/labels.json``) holds sixteen alerts in six languages -- some about the fixtures'
stories, some about nothing in them -- and, for each, the fixture articles that report on what it asks. Every alert
is saved with no threshold, so that it records each new article with its margin (``indexer.live.alerts``); then
the fixtures are indexed, and each (alert, article) pair is judged at each threshold. The threshold is chosen on
the odd-numbered alerts (the best F1), is the default (``THRESHOLD``), and is reported on the even-numbered ones,
which it never saw.

    python bench/alerts.py --out bench/results/alerts.json --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import machine, replace_table  # noqa: E402

from indexer.ingest.index import index_paths  # noqa: E402
from indexer.live.alerts import THRESHOLD, add_alert  # noqa: E402
from indexer.storage import Snapshot  # noqa: E402

LABELS = ROOT / "tests" / "fixtures" / "alerts" / "labels.json"
FIXTURES = [
    *sorted((ROOT / "tests" / "fixtures" / "stories").glob("*.md")),
    *sorted((ROOT / "tests" / "fixtures" / "stories-heldout").glob("*.md")),
    ROOT / "tests" / "fixtures" / "web" / "corriere-drone.html",
    ROOT / "tests" / "fixtures" / "web" / "harbour-times-drone.html",
    ROOT / "seeds",
]
THRESHOLDS = [round(0.005 * step, 3) for step in range(0, 21)]


def margins(directory: Path) -> tuple[dict[tuple[str, str], float], list[str]]:
    """(alert, article) -> margin of every pair, and the articles, from an archive built as the module says."""
    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    for alert in labels["alerts"]:
        add_alert(alert["name"], alert["query"], directory, threshold=-10.0)
    index_paths(FIXTURES, directory)
    with Snapshot(directory) as snapshot:
        rows = snapshot.table("alert_matches").to_pylist()
        articles = snapshot.store.db.execute("SELECT article_id FROM articles ORDER BY 1").fetchall()
    return {(row["alert"], row["article_id"]): row["margin"] for row in rows}, [row[0] for row in articles]


def judged(found: dict[tuple[str, str], float], alerts: list[dict], topics: dict, threshold: float) -> dict:
    """Precision, recall and F1 of these alerts' matches at ``threshold``, over their (alert, article) pairs."""
    tp = fp = fn = 0
    for alert in alerts:
        relevant = set(topics[alert["topic"]])
        matched = {
            article for (name, article), margin in found.items() if name == alert["name"] and margin >= threshold
        }
        tp, fp, fn = tp + len(matched & relevant), fp + len(matched - relevant), fn + len(relevant - matched)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def measure(directory: Path) -> dict:
    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    found, articles = margins(directory)
    missing = {a for topic in labels["topics"].values() for a in topic} - set(articles)
    if missing:
        raise SystemExit(f"labelled articles not indexed: {sorted(missing)}")
    alerts = labels["alerts"]
    calibration, held_out = alerts[0::2], alerts[1::2]
    sweep = {str(t): judged(found, calibration, labels["topics"], t) for t in THRESHOLDS}
    chosen = max(THRESHOLDS, key=lambda t: (sweep[str(t)]["f1"], sweep[str(t)]["precision"]))
    results = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "command": "python bench/alerts.py " + " ".join(sys.argv[1:]),
        "alerts": len(alerts),
        "articles": len(articles),
        "chosen_threshold": chosen,
        "default_threshold": THRESHOLD,
        "calibration_sweep": sweep,
    }
    for name, subset in (("calibration", calibration), ("held_out", held_out), ("all", alerts)):
        results[name] = judged(found, subset, labels["topics"], chosen)
    if chosen != THRESHOLD:
        print(f"set indexer.live.alerts.THRESHOLD to {chosen} (it is {THRESHOLD})", file=sys.stderr)
    return results


def markdown_table(results: dict) -> str:
    lines = ["| alerts | precision | recall | F1 | matches right / wrong / missed |", "|---|---|---|---|---|"]
    for name, label in (("calibration", "the 8 that chose the threshold"), ("held_out", "the 8 held out"),
                        ("all", "all 16")):  # fmt: skip
        r = results[name]
        counts = f"{r['tp']} / {r['fp']} / {r['fn']}"
        lines.append(f"| {label} | {r['precision']:.2f} | {r['recall']:.2f} | {r['f1']:.2f} | {counts} |")
    lines.append(
        f"\nAt margin {results['chosen_threshold']}, the best F1 on the 8 calibration alerts and the default "
        f"threshold, over {results['articles']} fixture articles; measured {results['date']} "
        f"on {results['machine']} with `{results['command']}`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's alerts table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = measure(Path(work) / "archive")
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(results))
    if args.doc:
        replace_table(args.doc, markdown_table(results), marker="alerts")


if __name__ == "__main__":
    main()
