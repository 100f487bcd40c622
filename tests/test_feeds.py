"""Followed feeds against a real HTTP server on 127.0.0.1: conditional requests, entries seen before, broken feeds.

The server's feeds change between rounds; it counts the requests it gets, and the conditional ones it answers 304.
"""

from __future__ import annotations

import http.server
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.live.feeds import add_feed, every, listed, remove_feed
from indexer.live.follow import follow, run_round
from indexer.reading import fetching
from indexer.storage import Manifest
from indexer.storage.check import check
from tests.conftest import ROOT, FakeEmbedder

WORDS = "the harbour council met on tuesday to discuss the new ferry timetable and the repairs to the old pier"


def _text(n: int, version: int = 1) -> str:
    """An entry's full text: long enough that its page is not fetched."""
    return f"Report {n}, version {version}. " + " ".join([WORDS] * 8)


class _Feeds:
    """What the server serves: ``news`` holds (guid, version) of the news feed's entries; summary entries link to
    pages on the server."""

    def __init__(self) -> None:
        self.news = [("n1", 1), ("n2", 1), ("n3", 1)]
        self.rotating = False  # every fetch of the news feed finds each entry changed
        self.requests: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        self.base = ""

    def rss(self, items: list[tuple[str, int]], summary: bool = False) -> bytes:
        entries = []
        for guid, version in items:
            link = f"{self.base}/page/{guid}.html"
            body = f"Short summary of {guid}." if summary else _text(int(guid[1:]), version)
            entries.append(
                f"<item><guid>{guid}</guid><title>Story {guid}</title><link>{link}</link>"
                f"<pubDate>{format_datetime(datetime(2026, 11, 30, 8, tzinfo=timezone.utc))}</pubDate>"
                f"<description>{body}</description></item>"
            )
        channel = f"<channel><title>Harbour News</title><language>en</language>{''.join(entries)}</channel>"
        return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


FEEDS = _Feeds()
RELEASED = threading.Event()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        FEEDS.requests[self.path] += 1
        if self.path == "/news.xml":
            if FEEDS.rotating:
                FEEDS.news = [(guid, version + 1) for guid, version in FEEDS.news]
            body = FEEDS.rss(FEEDS.news)
            tag = f'"{hash(body) & 0xFFFFFFFF:x}"'
            if self.headers.get("If-None-Match") == tag:
                FEEDS.not_modified[self.path] += 1
                self.send_response(304)
                self.end_headers()
                return
            self._send(200, body, "application/rss+xml", {"ETag": tag})
        elif self.path == "/summaries.xml":
            self._send(200, FEEDS.rss([("s7", 1), ("s8", 1)], summary=True), "application/rss+xml")
        elif self.path.startswith("/page/"):
            guid = self.path.removeprefix("/page/").removesuffix(".html")
            page = f"<html lang='en'><body><article><h1>Story {guid}</h1><p>{_text(int(guid[1:]))}</p></article>"
            self._send(200, page.encode(), "text/html")
        elif self.path == "/old.xml":
            self._send(301, b"", "text/plain", {"Location": "/moved.xml"})
        elif self.path == "/moved.xml":
            self._send(200, FEEDS.rss([("m4", 1)]), "application/rss+xml")
        elif self.path == "/hang.xml":
            RELEASED.wait(30)  # past the client's timeout: until the test is over
        elif self.path == "/error.xml":
            self._send(500, b"oops", "text/plain")
        elif self.path == "/malformed.xml":
            good = f"<item><title>K9</title><link>{FEEDS.base}/page/k9.html</link><description>{_text(9)}</description>"
            body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>M</title>{good}</item><item><title>x</ti'
            self._send(200, body.encode(), "application/rss+xml")
        elif self.path == "/broken.xml":
            self._send(200, b"<html><body>Not a feed at all</body></html>", "text/html")
        elif self.path in ("/loop-a.xml", "/loop-b.xml"):
            self._send(302, b"", "text/plain", {"Location": "/loop-b.xml" if "a" in self.path else "/loop-a.xml"})
        elif self.path == "/huge.xml":
            self._send(200, b"<rss>" + b" " * 9000 + b"</rss>", "application/rss+xml")
        else:
            self._send(404, b"", "text/plain")

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    FEEDS.__init__()
    FEEDS.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RELEASED.clear()
    # Generous: the server shares this process (and its GIL) with the fetching and reading it answers.
    monkeypatch.setattr(fetching, "TIMEOUT", 2.0)
    monkeypatch.setattr(fetching, "MAX_BYTES", 8000)
    yield FEEDS.base
    RELEASED.set()
    httpd.shutdown()


def _articles(index: Path) -> dict[str, str]:
    with duckdb.connect(str(index / "archive.duckdb"), read_only=True) as db:
        return dict(db.execute("SELECT article_id, body FROM articles").fetchall())


def test_rounds_index_exactly_what_is_new_and_report_each_broken_feed(
    server: str, tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    index = tmp_path / "archive"
    names = ["news", "summaries", "old", "hang", "error", "broken", "loop-a", "huge", "malformed"]
    for name in names:
        add_feed(f"{server}/{name}.xml", index)
    start = datetime.now(timezone.utc)

    first = run_round(index, everything=True, embedder=use_fake_model, now=start)
    assert (first.index.added, first.index.updated) == (7, 0)  # n1-n3, s7, s8, m4, and k9 of the malformed feed
    articles = _articles(index)
    host = server.removeprefix("http://")
    assert set(articles) == {f"{host}-page-{guid}.html" for guid in ("n1", "n2", "n3", "s7", "s8", "m4", "k9")}
    assert all("Report" in body for body in articles.values())  # the summaries' pages were fetched
    feeds = {feed.url.rsplit("/", 1)[1]: feed for feed in listed(index)}
    assert {name: feeds[name + ".xml"].last_error for name in names if feeds[name + ".xml"].last_error} == {
        "hang": "no answer within 2 s",
        "error": "the server answered HTTP 500 (Internal Server Error)",
        "broken": feeds["broken.xml"].last_error,
        "loop-a": f"redirects in a loop ({server}/loop-a.xml -> {server}/loop-b.xml -> {server}/loop-a.xml)",
        "huge": "the answer is 9,011 bytes, more than the 8,000 read",
        "malformed": "malformed XML (<unknown>:1:" + feeds["malformed.xml"].last_error.split(":1:")[-1],
    }
    assert feeds["malformed.xml"].failures == 0 and "unclosed token" in feeds["malformed.xml"].last_error
    assert feeds["broken.xml"].last_error.startswith("not a feed, or a feed without entries")
    assert feeds["error.xml"].last_status == 500 and feeds["hang.xml"].last_status is None
    for name in ("hang", "error", "broken", "loop-a", "huge"):
        assert feeds[name + ".xml"].failures == 1
        assert feeds[name + ".xml"].next_due == start + timedelta(minutes=30)  # twice the period
    assert feeds["news.xml"].next_due == start + timedelta(minutes=15)
    assert (feeds["news.xml"].entries_seen, feeds["news.xml"].entries_new, feeds["news.xml"].last_status) == (3, 3, 200)
    assert feeds["old.xml"].location == f"{server}/moved.xml"  # a permanent redirect is remembered
    lines = first.lines()
    assert "round: 9 feeds fetched (0 unchanged, 5 failed); 7 new articles, 0 updated; " in lines[0]
    named = ("hang", "error", "huge", "malformed")
    assert len(lines) == 8 and all(f"{server}/{name}.xml" in "\n".join(lines) for name in named)
    assert lines[-1] == f"  {server}/malformed.xml:2: feed entry 2 has no text"  # the truncated one

    pages = sum(count for path, count in FEEDS.requests.items() if path.startswith("/page/"))
    batches = len(use_fake_model.batches)
    second = run_round(index, everything=True, embedder=use_fake_model, now=start + timedelta(minutes=1))
    assert (second.index.added, second.index.updated, second.index.embedded) == (0, 0, 0)
    assert len(use_fake_model.batches) == batches  # nothing embedded
    assert FEEDS.not_modified["/news.xml"] == 1  # the conditional request was answered 304
    assert sum(count for path, count in FEEDS.requests.items() if path.startswith("/page/")) == pages  # seen entries
    assert FEEDS.requests["/old.xml"] == 1 and FEEDS.requests["/moved.xml"] == 2  # asked where it moved to
    feeds = {feed.url.rsplit("/", 1)[1]: feed for feed in listed(index)}
    assert feeds["news.xml"].last_status == 304 and feeds["error.xml"].failures == 2
    assert feeds["error.xml"].next_due == start + timedelta(minutes=1 + 60)  # the wait doubles

    FEEDS.news = [("n1", 1), ("n2", 2), ("n3", 1), ("n5", 1)]  # one changed, one new
    later = start + timedelta(minutes=16)  # the news feed is due, the failing ones are not
    third = run_round(index, embedder=use_fake_model, now=later)
    assert {item.feed.url.rsplit("/", 1)[1] for item in third.fetched} == {
        "news.xml",
        "summaries.xml",
        "old.xml",
        "malformed.xml",
    }

    assert (third.index.added, third.index.updated) == (1, 1)
    host = server.removeprefix("http://")
    assert "version 2" in _articles(index)[f"{host}-page-n2.html"]
    assert len(use_fake_model.batches) == batches + 1 and len(use_fake_model.batches[-1]) == 2  # n2 and n5 only


def test_feeds_are_added_listed_and_removed_from_the_command_line(
    server: str, tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    index = str(tmp_path / "archive")
    runner = CliRunner()
    added = runner.invoke(cli, ["feeds", "add", f"{server}/news.xml", "--every", "2h", "--source", "HN", "-d", index])
    assert added.exit_code == 0 and "every 2h" in added.output
    assert runner.invoke(cli, ["feeds", "add", f"{server}/error.xml", "-d", index]).exit_code == 0
    assert (
        runner.invoke(cli, ["alerts", "add", "council", "harbour council", "--mode", "lexical", "-d", index]).exit_code
        == 0
    )
    followed = runner.invoke(cli, ["follow", "--once", "-d", index])
    assert followed.exit_code == 1 and "1 feed failed" in followed.output
    assert "HTTP 500" in followed.output and "3 new articles" in followed.output
    assert followed.output.count("alert council: Story n") == 3  # each new match, once
    listing = json.loads(runner.invoke(cli, ["feeds", "list", "--json", "-d", index]).output)
    assert [(f["url"].rsplit("/", 1)[1], f["every_seconds"], f["failures"]) for f in listing] == [
        ("news.xml", 7200, 0),
        ("error.xml", 900, 1),
    ]
    with duckdb.connect(str(Path(index) / "archive.duckdb"), read_only=True) as db:
        assert db.execute("SELECT DISTINCT source FROM articles").fetchall() == [("HN",)]
        assert db.execute("SELECT count(*) FROM feed_entries WHERE url LIKE '%news.xml'").fetchall() == [(3,)]
        assert db.execute("SELECT last_status FROM feeds ORDER BY url").fetchall() == [(500,), (200,)]
    text = runner.invoke(cli, ["feeds", "list", "-d", index]).output
    assert "HTTP 200; 3 entries, 3 new" in text and "1 failure in a row" in text
    assert runner.invoke(cli, ["feeds", "remove", f"{server}/error.xml", "-d", index]).exit_code == 0
    gone = runner.invoke(cli, ["feeds", "remove", f"{server}/error.xml", "-d", index])
    assert gone.exit_code == 1 and "is not followed" in gone.output
    assert [feed.url for feed in listed(Path(index))] == [f"{server}/news.xml"]
    assert len(_articles(Path(index))) == 3  # removing a feed keeps its articles


def test_periods_and_urls_are_checked(tmp_path: Path) -> None:
    assert [every(text) for text in ("90s", "15m", "2h", "1d", "30")] == [90, 900, 7200, 86400, 1800]
    for bad in ("soon", "10s", "5 weeks"):
        with pytest.raises(Exception, match="period|once a minute"):
            every(bad)
    with pytest.raises(Exception, match="http:// or https://"):
        add_feed("ftp://example.org/feed.xml", tmp_path / "archive")
    with pytest.raises(Exception, match="is not followed"):
        remove_feed("https://example.org/feed.xml", tmp_path / "archive")


FOLLOWER = """
import sys
from indexer.live.follow import follow, run_round
from indexer.storage import Manifest
from tests.conftest import FakeEmbedder
embedder = FakeEmbedder(sys.argv[2])  # under the name of the model the archive was started with
while True:
    run_round(sys.argv[1], everything=True, embedder=embedder)
    print("round", flush=True)
"""


def test_kill_9_of_a_follower_at_any_moment_leaves_the_last_round(
    server: str, tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    """A follower whose every round finds every entry changed, killed at random moments of its rounds: each time
    the archive is sound, holds each article once in one version, and the next round works."""
    index = tmp_path / "archive"
    FEEDS.rotating = True
    add_feed(f"{server}/news.xml", index)
    run_round(index, everything=True, embedder=use_fake_model)
    rng = random.Random(3)
    for _ in range(8):
        follower = subprocess.Popen(
            [sys.executable, "-c", FOLLOWER, str(index), use_fake_model.name],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert follower.stdout.readline() == "round\n"  # started up, and one round done
        started = time.perf_counter()
        assert follower.stdout.readline() == "round\n"
        time.sleep(rng.uniform(0, 1.5 * (time.perf_counter() - started)))
        follower.send_signal(signal.SIGKILL)
        follower.wait()
        assert check(index) == []
        bodies = _articles(index)
        assert len(bodies) == 3 and all("version" in body for body in bodies.values())
        assert [feed.url for feed in listed(index)] == [f"{server}/news.xml"]
    assert run_round(index, everything=True, embedder=use_fake_model).index.updated == 3


def test_follow_runs_a_round_when_a_feed_is_due_and_sleeps_until_the_next(
    server: str, tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    index = tmp_path / "archive"
    add_feed(f"{server}/news.xml", index, every_seconds=120)
    commits, waits, lines = [], [], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        commits.append(Manifest.load(index).commit)
        if len(waits) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        follow(index, embedder=use_fake_model, echo=lines.append, sleep=sleep)
    assert len(lines) == 1 and "1 feeds fetched (0 unchanged, 0 failed); 3 new articles" in lines[0]
    assert all(55 < wait <= 60 for wait in waits)  # the feed is due in two minutes: checked every minute
    assert commits[0] == commits[1] == commits[2]  # a round with no feed due writes nothing


def test_a_feed_whose_host_does_not_resolve_is_one_line_and_the_others_go_on(
    server: str, tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    index = tmp_path / "archive"
    add_feed("http://feeds.example.invalid/rss.xml", index)  # .invalid never resolves (RFC 2606)
    add_feed(f"{server}/news.xml", index)
    result = run_round(index, everything=True, embedder=use_fake_model)
    assert result.index.added == 3
    feeds = {feed.url: feed for feed in listed(index)}
    gone = feeds["http://feeds.example.invalid/rss.xml"]
    assert gone.failures == 1 and gone.last_error.startswith("the host feeds.example.invalid does not resolve")
    [line] = [line for line in result.lines() if "example.invalid" in line]
    assert line.startswith(f"  http://feeds.example.invalid/rss.xml: {gone.last_error} (1 in a row; next try ")
