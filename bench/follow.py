"""Rounds of `newsarchive follow` against 20 feeds on a local HTTP server, 3 of them broken, with the real model.

The feeds: 17 that work (10 entries each, full text), one that hangs past the timeout, one that answers 500 and one
that is not a feed. Timed: the first round (every entry new: fetched, read, embedded, committed), a round where
nothing changed (the 17 answer 304), a round where one entry of each changed, and the 304 round without the broken
three (what an unchanged round costs by itself). Each round fetches every feed (``follow --once``).

    python bench/follow.py --out bench/results/follow.json --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import http.server
import json
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import machine, replace_table  # noqa: E402

from indexer.live.feeds import add_feed, remove_feed  # noqa: E402
from indexer.live.follow import run_round  # noqa: E402
from indexer.reading import fetching  # noqa: E402

GOOD, ENTRIES = 17, 10
SENTENCES = (
    "The harbour authority published the new ferry timetable for the winter season on Monday.",
    "Dock workers met the terminal operators to discuss the plan to automate two container quays.",
    "The city council approved funds to repair the old pier after the storm damaged its supports.",
    "Fishing boats stayed in port for a third day as strong winds kept the sea too rough to sail.",
)
VERSION = {"round": 0}


def entry(feed: int, number: int) -> str:
    text = " ".join(f"{SENTENCES[(feed + number + i) % 4]} (Feed {feed}, story {number}.)" for i in range(8))
    if number == 0:
        text += f" Update {VERSION['round']}."  # the first entry of each feed changes when the round number does
    return (
        f"<item><guid>feed{feed}-{number}</guid><title>Feed {feed} story {number}</title>"
        f"<link>http://127.0.0.1/feed{feed}/{number}</link><description>{text}</description></item>"
    )


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        if self.path == "/hang.xml":
            time.sleep(fetching.TIMEOUT + 5)
            return
        if self.path == "/error.xml":
            self.send_response(500)
            self.end_headers()
            return
        if self.path == "/broken.xml":
            body = b"<html><body>No feed here</body></html>"
        else:
            feed = int(self.path.removeprefix("/feed").removesuffix(".xml"))
            items = "".join(entry(feed, number) for number in range(ENTRIES))
            body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>{items}</channel></rss>'
            body = body.encode()
        tag = f'"{hash(body) & 0xFFFFFFFF:x}"'
        if self.headers.get("If-None-Match") == tag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", tag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def measure(directory: Path) -> dict:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    broken = [f"{base}/{name}.xml" for name in ("hang", "error", "broken")]
    for url in [f"{base}/feed{n}.xml" for n in range(GOOD)] + broken:
        add_feed(url, directory)
    rounds, embedder = {}, None
    for name in ("first", "unchanged", "one_changed_each", "unchanged_without_broken"):
        if name == "one_changed_each":
            VERSION["round"] += 1
        if name == "unchanged_without_broken":
            for url in broken:
                remove_feed(url, directory)
        result = run_round(directory, everything=True, embedder=embedder)
        embedder = result.embedder
        report = result.index
        failed = sum(bool(item.feed.last_error) for item in result.fetched)
        unchanged = sum(item.feed.last_status == 304 for item in result.fetched)
        rounds[name] = {"seconds": round(result.seconds, 2), "feeds": len(result.fetched), "failed": failed,
                        "unchanged": unchanged, "added": report.added, "updated": report.updated,
                        "embedded_passages": report.embedded}  # fmt: skip
        print(name, rounds[name], file=sys.stderr)
    server.shutdown()
    return rounds


def markdown_table(results: dict) -> str:
    labels = {
        "first": "first round: every entry new",
        "unchanged": "nothing changed (304s)",
        "one_changed_each": "one entry of each feed changed",
        "unchanged_without_broken": "nothing changed, the broken three removed",
    }
    lines = [
        "| round | feeds (304 / failed) | articles added / updated | passages embedded | time |",
        "|---|---|---|---|---|",
    ]
    for name, label in labels.items():
        r = results["rounds"][name]
        lines.append(
            f"| {label} | {r['feeds']} ({r['unchanged']} / {r['failed']}) | {r['added']} / {r['updated']} "
            f"| {r['embedded_passages']} | {r['seconds']:.1f} s |"
        )
    lines.append(
        f"\n{GOOD} feeds of {ENTRIES} entries and 3 broken ones (one hangs past the {fetching.TIMEOUT:g} s timeout, "
        f"one answers 500, one is not a feed) on a local server; every feed fetched each round. Measured "
        f"{results['date']} on {results['machine']} with `{results['command']}`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doc", type=Path, help="rewrite this docs page's follow table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        rounds = measure(Path(work) / "archive")
    results = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "command": "python bench/follow.py " + " ".join(sys.argv[1:]),
        "rounds": rounds,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(results))
    if args.doc:
        replace_table(args.doc, markdown_table(results), marker="follow")


if __name__ == "__main__":
    main()
