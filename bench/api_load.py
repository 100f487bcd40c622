"""The HTTP API under load: ``GET /v1/search`` from 1, 4 and 20 concurrent clients over a synthetic 100k-passage
archive (bench/search.py's), dense and hybrid, beside ``search`` called in one process on the one-client run's
questions; and, with 20 clients, while a writer commits new articles (to a copy of the archive, made afresh each
time).

``newsarchive serve`` runs in a process of its own with the real default model (one worker, no keys, no rate
limit); the clients are threads of this process, each on a keep-alive connection of its own (the standard
library's: httpx's own time, about a millisecond a request, would count as the API's), each taking the next
question. Every question is new to the server's process within a run (a repeated question would come from a
cache), but in the run beside the writer, which asks them again until the writer is done. A response other than a
200 naming its commit is an error.

    python bench/api_load.py --work /tmp/api-load --out bench/results/api_load.json --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import EVAL, machine, replace_table  # noqa: E402
from search import SyntheticEmbedder, embed_sentences, write_corpus  # noqa: E402

from indexer.ingest.index import index_paths  # noqa: E402
from indexer.retrieval.evaluate import load_questions  # noqa: E402

CLIENTS = (1, 4, 20)
MODES = ("dense", "hybrid")
COMMITS = 10  # made by the writer while 20 clients search
READY_WITHIN = 600.0


def archive(work: Path, passages: int) -> Path:
    directory = work / f"archive-{passages}"
    if not (directory / "manifest.json").exists():
        vectors = work / "sentence_vectors.npz"
        if not vectors.exists():
            embed_sentences(vectors)
        corpus = work / f"corpus-{passages}.jsonl"
        write_corpus(passages, corpus)
        index_paths([corpus], directory, embedder=SyntheticEmbedder(vectors), parallel=True)
    return directory


def questions() -> list[str]:
    """SQuAD-it's Italian and English questions, each once."""
    seen = dict.fromkeys(q.text for lang in ("it", "en") for q in load_questions(EVAL / f"queries_{lang}.jsonl"))
    return list(seen)


def in_process(directory: Path, asked: list[str], mode: str) -> list[float]:
    """Seconds of each ``search`` called in this process: the API's baseline."""
    from indexer.retrieval.archive import Archive
    from indexer.retrieval.memory import keep_freed_memory
    from indexer.retrieval.search import search

    keep_freed_memory()  # as a server does (indexer.retrieval.archive.Served)

    with Archive(directory) as opened:
        search(opened, "warm up", k=5, mode=mode)
        seconds = []
        for question in asked:
            started = time.perf_counter()
            search(opened, question, k=5, mode=mode)
            seconds.append(time.perf_counter() - started)
    return seconds


def load(url: str, asked: list[str], mode: str, clients: int, until: threading.Event | None = None) -> dict:
    """``clients`` concurrent clients asking every question once between them; with ``until``, asking them over
    again until it is set."""
    pending = iter(asked) if until is None else _until(asked, until)
    taking = threading.Lock()  # one iterator for all the clients
    seconds: list[float] = []
    server: list[float] = []  # the server's own time (Server-Timing)
    errors: list[str] = []
    commits: set[int] = set()
    host, port = url.removeprefix("http://").split(":")

    def client() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        while True:
            with taking:
                question = next(pending, None)
            if question is None:
                break
            target = "/v1/search?" + urllib.parse.urlencode({"q": question, "k": 5, "mode": mode})
            started = time.perf_counter()
            try:
                connection.request("GET", target)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                errors.append(f"{type(error).__name__}: {error}")
                connection.close()  # the next request opens a new connection
                continue
            seconds.append(time.perf_counter() - started)
            if response.status != 200:
                errors.append(f"{response.status}: {body[:200].decode('utf-8', 'replace')}")
            else:
                commits.add(json.loads(body)["commit"])
                server.append(float(response.getheader("server-timing", "").removeprefix("app;dur=")) / 1000)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    figures = _figures(seconds, elapsed)
    figures["server_p50_ms"] = _figures(server)["p50_ms"]
    return {"requests": len(seconds), "errors": errors, "commits": sorted(commits), **figures}


def _until(asked: list[str], done: threading.Event) -> Iterator[str]:
    for number, question in enumerate(itertools.cycle(asked)):
        if number >= len(asked) and done.is_set():
            return
        yield question


def _figures(seconds: list[float], elapsed: float | None = None) -> dict:
    ordered = sorted(seconds)
    figures = {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
    }
    if elapsed:
        figures["per_second"] = round(len(seconds) / elapsed, 1)
    return figures


def writer(directory: Path, work: Path, done: threading.Event, made: list[int]) -> None:
    """Commit ``COMMITS`` times, an article each, through the writer `index` uses (with the synthetic vectors),
    then set ``done``."""
    embedder = SyntheticEmbedder(work / "sentence_vectors.npz")
    try:
        for number in range(COMMITS):
            article = work / f"new-{number}.jsonl"
            text = f"Nuovo articolo {number} sul drone MQ-9 caduto nel Mar Nero, con altri dettagli e fonti."
            row = {"id": f"new-{time.time_ns()}", "title": f"Nuovo {number}", "text": text}
            article.write_text(json.dumps(row), encoding="utf-8")
            index_paths([article], directory, embedder=embedder)
            made.append(number)
    finally:
        done.set()


def serve(directory: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "indexer.cli.main", "serve", "-d", str(directory), "--port", str(port)]
    server = subprocess.Popen([*command, "--rate", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("newsarchive serve did not start")
        time.sleep(0.5)


def markdown_table(results: dict) -> str:
    lines = [
        "| Mode | Clients | Requests/s | p50 ms | p95 ms | Errors | Server's own p50 ms | In one process, p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, runs in results["modes"].items():
        for run in runs["api"]:
            busy = " (a writer committing)" if run.get("commits_made") else ""
            lines.append(
                f"| {mode} | {run['clients']}{busy} | {run['per_second']} | {run['p50_ms']} | {run['p95_ms']} "
                f"| {len(run['errors'])} | {run['server_p50_ms']} "
                f"| {runs['in_process']['p50_ms'] if run['clients'] == 1 else ''} |"
            )
    lines.append(
        f"\n{results['passages']:,} passages (bench/search.py's synthetic archive), {results['questions']} questions "
        f"per run, k=5. Measured {results['date']} on {results['machine']}, with `{results['command']}`."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=1000, help="per run (each new to the server within it)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--doc", type=Path)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    directory = args.work / "serving"  # the writer's commits go to a copy: each run starts from the same archive
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(archive(args.work, args.passages), directory)
    pool = questions()
    results = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": machine(),
        "command": "python bench/api_load.py " + shlex.join(sys.argv[1:]),
        "passages": args.passages,
        "questions": args.questions,
        "modes": {},
    }
    runs = [(mode, clients) for mode in MODES for clients in CLIENTS]
    need = args.questions * len(runs)
    if need > len(pool):
        raise SystemExit(f"{len(pool)} distinct questions; {need} are needed: ask for fewer --questions")
    batches = [pool[i * args.questions : (i + 1) * args.questions] for i in range(len(runs))]
    for mode in MODES:  # the one-client run's questions, which the server's process has not seen (a vector is cached)
        asked = batches[runs.index((mode, 1))]
        results["modes"][mode] = {"in_process": _figures(in_process(directory, asked, mode)), "api": []}
    server, url = serve(directory)
    try:
        for (mode, clients), asked in zip(runs, batches):
            done, made = threading.Event(), []
            busy = clients == max(CLIENTS) and mode == "hybrid"
            if busy:
                threading.Thread(target=writer, args=(directory, args.work, done, made)).start()
            run = load(url, asked, mode, clients, done if busy else None)
            run.update(clients=clients, commits_made=len(made))
            results["modes"][mode]["api"].append(run)
            print(mode, clients, {k: v for k, v in run.items() if k != "errors"}, len(run["errors"]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.doc:
        replace_table(args.doc, markdown_table(results), "api-load")
    print(markdown_table(results))


if __name__ == "__main__":
    main()
