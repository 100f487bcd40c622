"""Hostile input over HTTP (issue 33, findings 5, 6, 7 and 9): what feeds, links, servers and names cannot do.

Servers run on 127.0.0.1, and on 127.0.0.2 as "another host"; every test ends in bounded time. Only the deadline
tests depend on time, and they assert a generous upper bound: a deadline of 2 s against servers that would hold a
fetch for a minute.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import logging
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import duckdb
import feedparser
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.cli.main import cli
from indexer.errors import InputProblem
from indexer.ingest.index import index_paths
from indexer.live import alerts, atom, follow
from indexer.live.feeds import MAX_EVERY, Feed, add_feed, listed, to_table
from indexer.live.follow import run_round
from indexer.reading import fetch_policy, fetching, web
from indexer.reading.article import Article
from indexer.reading.inputs import read_articles
from indexer.storage import Manifest, Writer
from indexer.storage.check import check
from tests.conftest import FakeEmbedder

WORDS = "the harbour council met on tuesday to discuss the new ferry timetable and the repairs to the old pier"
SECRET = "internal-secret-7f3a"
LONG = " ".join([WORDS] * 8)  # a page's main text, and an entry's full text (longer than a summary)


class Site:
    """An HTTP server on ``host``: ``routes`` maps a path to what answers it; requests are counted, and the most
    answered at the same time kept."""

    def __init__(self, host: str) -> None:
        self.routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = {}
        self.requests: Counter[str] = Counter()
        self.posted: list[dict] = []
        self.released = threading.Event()  # ends every hanging and dripping answer
        self.busy, self.most_at_once = 0, 0
        lock = threading.Lock()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                path = self.path.split("?")[0]
                with lock:
                    site.requests[path] += 1
                    site.busy += 1
                    site.most_at_once = max(site.most_at_once, site.busy)
                try:
                    site.routes.get(path, lambda h: send(h, 404, b"not here", "text/plain"))(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up, as it should at its deadline
                finally:
                    with lock:
                        site.busy -= 1

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                site.posted.append(json.loads(self.rfile.read(length) or b"{}"))
                self.do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, kind: str, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def page(title: str, text: str = LONG) -> Callable:
    html = f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1><p>{text}</p>"
    return lambda h: send(h, 200, f"{html}</article></body></html>".encode(), "text/html")


def rss(*items: str, title: str = "Harbour News") -> bytes:
    channel = f"<channel><title>{title}</title><language>en</language>{''.join(items)}</channel>"
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0">{channel}</rss>'.encode()


def item(guid: str, link: str, text: str = "A short summary.", date: str = "Mon, 30 Nov 2026 08:00:00 GMT") -> str:
    return (
        f"<item><guid>{escape(guid)}</guid><title>Story {escape(guid)}</title><link>{escape(link)}</link>"
        f"<pubDate>{escape(date)}</pubDate><description>{escape(text)}</description></item>"
    )


def feed_route(body: bytes) -> Callable:
    return lambda h: send(h, 200, body, "application/rss+xml")


def drip(site: Site, headers_too: bool = False) -> Callable:
    """An answer of one byte every half second, for a minute: each read comes well within the timeout."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        if headers_too:
            handler.wfile.write(b"X-Slow: ")
        else:
            handler.wfile.write(b"Content-Type: text/html\r\nConnection: close\r\n\r\n<html><body><p>")
        for _ in range(120):
            handler.wfile.write(b"a")
            handler.wfile.flush()
            if site.released.wait(0.5):
                return

    return answer


def hang(site: Site) -> Callable:
    return lambda handler: site.released.wait(60)


@pytest.fixture
def sites() -> Iterator[Callable[[str], Site]]:
    """Start servers: ``sites("127.0.0.1")``, ``sites("127.0.0.2")``; all stopped after the test."""
    started: list[Site] = []

    def start(host: str = "127.0.0.1") -> Site:
        started.append(Site(host))
        return started[-1]

    yield start
    for site in started:
        site.close()


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's deadline of 2 s and budgets of a few seconds, so that the deadline tests take seconds."""
    monkeypatch.setattr(fetching, "DEADLINE", 2.0)
    monkeypatch.setattr(web, "PAGES_BUDGET", 5.0)
    monkeypatch.setattr(follow, "ROUND_BUDGET", 8.0)
    monkeypatch.setattr(fetching, "WEBHOOK_BUDGET", 4.0)
    monkeypatch.setattr(fetching, "RETRY_WAIT", 0.01)


def _articles(index: Path) -> dict[str, str]:
    with duckdb.connect(str(index / "archive.duckdb"), read_only=True) as db:
        return dict(db.execute("SELECT article_id, body FROM articles").fetchall())


def _archive(tmp_path: Path, embedder: FakeEmbedder) -> Path:
    """An archive holding one article, with ``tmp_path / "in"`` the folder it was read from."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "old.md").write_text("# Markets\n\nShares fell sharply in early trading.\n", encoding="utf-8")
    index_paths([folder], tmp_path / "archive", embedder=embedder)
    return tmp_path / "archive"


def _read(*paths: str | Path) -> tuple[list[Article], list[InputProblem]]:
    items = list(read_articles(paths))
    return [i for i in items if isinstance(i, Article)], [i for i in items if isinstance(i, InputProblem)]


# --- Finding 9: links reach only public addresses or the feed's own site ----------------------------------------


def test_a_link_to_another_port_of_this_machine_is_refused_and_not_indexed(
    sites: Callable[[str], Site], tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    news, internal = sites("127.0.0.1"), sites("127.0.0.1")
    internal.routes["/secret"] = page("Secret", f"{SECRET} " + LONG)
    news.routes["/feed.xml"] = feed_route(rss(item("s1", internal.url("/secret"))))
    index = tmp_path / "archive"
    add_feed(news.url("/feed.xml"), index)

    result = run_round(index, everything=True, embedder=use_fake_model)
    assert internal.requests["/secret"] == 0  # not even asked
    assert result.index.added == 1 and SECRET not in "".join(_articles(index).values())  # the summary instead
    (line,) = [line for line in result.lines() if "refused" in line]
    assert line == (
        f"  {internal.url('/secret')}: refused: 127.0.0.1 is a loopback address; links in feeds are fetched only "
        "from public addresses or the feed's own site (--allow-private or $NEWSARCHIVE_ALLOW_PRIVATE=1 allows them); "
        "the entry's summary was indexed"
    )
    assert listed(index)[0].failures == 0  # the feed itself is fine

    # `index URL` of the feed: the same, as a note: the entry is indexed, so the run succeeds.
    articles, problems = _read(news.url("/feed.xml"))
    assert internal.requests["/secret"] == 0 and SECRET not in articles[0].text
    assert [problem.path for problem in problems] == [internal.url("/secret")]
    indexed = CliRunner().invoke(cli, ["index", news.url("/feed.xml"), "-d", str(tmp_path / "other")])
    assert indexed.exit_code == 0, indexed.output
    assert f"note {internal.url('/secret')}: refused: 127.0.0.1 is a loopback address" in indexed.output


def test_a_link_to_another_host_is_refused(sites: Callable[[str], Site]) -> None:
    news, other = sites("127.0.0.1"), sites("127.0.0.2")
    other.routes["/story"] = page("Elsewhere", SECRET + " " + LONG)
    news.routes["/feed.xml"] = feed_route(rss(item("o1", other.url("/story"))))
    articles, (problem,) = _read(news.url("/feed.xml"))
    assert other.requests["/story"] == 0 and SECRET not in articles[0].text
    assert problem.reason.startswith("refused: 127.0.0.2 is a loopback address")


def test_a_name_that_resolves_to_a_private_address_is_refused_where_it_connects(
    sites: Callable[[str], Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once, each address checked, and the connection made to one that passed: a name that
    resolves to a private address now (DNS rebinding), even beside a public one, is refused at the connection."""
    news, internal = sites("127.0.0.1"), sites("127.0.0.1")
    internal.routes["/secret"] = page("Secret", SECRET + " " + LONG)
    port = internal.httpd.server_address[1]
    real = socket.getaddrinfo
    answers = {"rebound.example": ["127.0.0.1"], "mixed.example": ["93.184.215.14", "10.0.0.5"]}

    def getaddrinfo(host: str, *args: object, **kwargs: object) -> list:
        if host not in answers:
            return real(host, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    links = [f"http://{host}:{port}/secret" for host in answers]
    news.routes["/feed.xml"] = feed_route(rss(item("r1", links[0]), item("r2", links[1])))
    articles, problems = _read(news.url("/feed.xml"))
    assert len(articles) == 2 and internal.requests["/secret"] == 0
    assert sorted(problem.reason.split(";")[0] for problem in problems) == [
        "refused: 10.0.0.5 is a private address",
        "refused: 127.0.0.1 is a loopback address",
    ]


def test_a_public_feeds_own_site_cannot_turn_private_for_its_links(
    sites: Callable[[str], Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the feed's name answers a public address (127.0.0.3 plays one here) for the feed, then a
    private one for a link on the same site. The site is trusted for its links only when the feed itself was on a
    private address (an intranet): here the link is checked like any, and refused."""
    news = sites("127.0.0.3")
    port = int(news.base.rsplit(":", 1)[1])
    news.routes["/feed.xml"] = feed_route(rss(item("r1", f"http://rebind.test:{port}/admin")))
    answers = iter(["127.0.0.3", "127.0.0.1"])
    real_lookup, real_problem = socket.getaddrinfo, fetch_policy.address_problem

    def lookup(host: str, *args: object, **options: object) -> list:
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real_lookup(host, *args, **options)

    monkeypatch.setattr(fetch_policy.socket, "getaddrinfo", lookup)
    monkeypatch.setattr(fetch_policy, "address_problem", lambda a: None if str(a) == "127.0.0.3" else real_problem(a))
    articles, (problem,) = _read(f"http://rebind.test:{port}/feed.xml")
    assert news.requests["/feed.xml"] == 1 and len(articles) == 1  # the feed was read, its summary indexed
    assert problem.reason.startswith("refused: 127.0.0.1 is a loopback address"), problem.reason


def test_a_redirect_to_a_private_address_is_refused_at_the_hop(sites: Callable[[str], Site]) -> None:
    news, other = sites("127.0.0.1"), sites("127.0.0.2")
    other.routes["/secret"] = page("Secret", SECRET + " " + LONG)
    news.routes["/go"] = lambda h: send(h, 302, b"", "text/plain", Location=other.url("/secret"))
    news.routes["/feed.xml"] = feed_route(rss(item("g1", news.url("/go"))))

    # A link on the feed's own site, redirected to another host: refused at that hop.
    articles, (problem,) = _read(news.url("/feed.xml"))
    assert news.requests["/go"] == 1 and other.requests["/secret"] == 0 and SECRET not in articles[0].text
    assert problem.reason.startswith(
        f"refused: 127.0.0.2 is a loopback address (redirected to {other.url('/secret')}); links in feeds are fetched "
    )
    # A URL the operator gave may be private, but not send the fetch on to a private address elsewhere.
    articles, (problem,) = _read(news.url("/go"))
    assert not articles and other.requests["/secret"] == 0
    assert problem.path == news.url("/go") and "redirects are followed only to public addresses" in problem.reason


def test_links_on_the_feeds_own_site_are_fetched(sites: Callable[[str], Site]) -> None:
    news = sites("127.0.0.1")
    news.routes["/story"] = page("Own site")
    news.routes["/moved"] = lambda h: send(h, 301, b"", "text/plain", Location="/story")
    news.routes["/feed.xml"] = feed_route(rss(item("a1", news.url("/story")), item("a2", news.url("/moved"))))
    (first, second), problems = _read(news.url("/feed.xml"))
    assert not problems and "harbour council" in first.text and "harbour council" in second.text


def test_a_kept_connection_is_checked_again_before_a_request_is_written(sites: Callable[[str], Site]) -> None:
    """A connection the operator's URL opened, kept alive, is not a way in for a link of another site."""
    internal = sites("127.0.0.1")
    internal.routes["/feed.xml"] = feed_route(rss(item("k1", internal.url("/x"), LONG)))
    internal.routes["/secret"] = page("Secret", SECRET + " " + LONG)
    with fetching.new_client() as client:
        assert fetching.get(internal.url("/feed.xml"), client=client).status == 200
        with pytest.raises(fetching.FetchFailed, match="refused: 127.0.0.1 is a loopback address"):
            fetching.get_link(internal.url("/secret"), "http://news.example/feed.xml", client)
    assert internal.requests["/secret"] == 0


def test_allow_private_lets_links_through(
    sites: Callable[[str], Site], tmp_path: Path, use_fake_model: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    news, internal = sites("127.0.0.1"), sites("127.0.0.2")
    internal.routes["/intranet"] = page("Intranet", f"{SECRET} " + LONG)
    news.routes["/feed.xml"] = feed_route(rss(item("p1", internal.url("/intranet"))))
    runner = CliRunner()
    for flag, asked in (([], 0), (["--allow-private"], 1)):
        index = str(tmp_path / f"archive{asked}")
        assert runner.invoke(cli, ["feeds", "add", news.url("/feed.xml"), "-d", index]).exit_code == 0
        followed = runner.invoke(cli, ["follow", "--once", *flag, "-d", index])
        assert followed.exit_code == 0 and "1 new article" in followed.output, followed.output
        assert internal.requests["/intranet"] == asked
        assert (SECRET in "".join(_articles(Path(index)).values())) == bool(asked)
        assert ("refused" in followed.output) == (not asked)

    indexed = runner.invoke(cli, ["index", news.url("/feed.xml"), "--allow-private", "-d", str(tmp_path / "b")])
    assert indexed.exit_code == 0 and internal.requests["/intranet"] == 2, indexed.output
    monkeypatch.setenv(fetch_policy.ALLOW_PRIVATE_ENV, "1")
    articles, problems = _read(news.url("/feed.xml"))
    assert not problems and SECRET in articles[0].text and internal.requests["/intranet"] == 3


def test_through_a_proxy_links_are_checked_by_name_before_the_proxy_is_asked(
    sites: Callable[[str], Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy from the environment is used (the feed's host resolves only there), and a link's host is checked
    here first: a private one, or one that does not resolve here, never reaches the proxy."""
    proxy = sites("127.0.0.1")  # a forward proxy sees absolute URLs: its routes are keyed by them
    proxy.routes["http://news.invalid/feed.xml"] = feed_route(
        rss(
            item("own", "http://news.invalid/story"),
            item("private", "http://127.0.0.2:9/secret"),
            item("unknown", "http://elsewhere.invalid/story"),
        )
    )
    proxy.routes["http://news.invalid/story"] = page("Own story")
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.base)
    monkeypatch.setenv("http_proxy", proxy.base)
    articles, problems = _read("http://news.invalid/feed.xml")
    assert set(proxy.requests) == {"http://news.invalid/feed.xml", "http://news.invalid/story"}
    assert [WORDS in a.text for a in articles] == [True, False, False]  # its own page; the others keep a summary
    reasons = sorted(problem.reason for problem in problems)
    assert reasons[0].startswith("refused: 127.0.0.2 is a loopback address")
    assert reasons[1].startswith("refused: elsewhere.invalid does not resolve here")


def test_addresses_that_are_not_public() -> None:
    import ipaddress

    refused = ["127.0.0.1", "10.0.0.5", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "224.0.0.1",
               "100.64.0.1", "240.0.0.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:10.0.0.5",
               "2002:7f00:1::"]  # fmt: skip
    for address in refused:
        assert fetch_policy.address_problem(ipaddress.ip_address(address)), address
    assert fetch_policy.address_problem(ipaddress.ip_address("10.0.0.5")) == "10.0.0.5 is a private address"
    for address in ("93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"):
        assert fetch_policy.address_problem(ipaddress.ip_address(address)) is None, address


# --- Finding 7: deadlines and budgets ---------------------------------------------------------------------------


def test_a_server_that_drips_bytes_is_cut_off_at_the_deadline(
    sites: Callable[[str], Site], short_deadlines: None, tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    slow = sites("127.0.0.1")
    slow.routes["/page"] = drip(slow)
    slow.routes["/headers"] = drip(slow, headers_too=True)
    for path in ("/page", "/headers"):
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["index", slow.url(path), "-d", str(tmp_path / "archive")])
        assert time.monotonic() - started < 15, path  # the server would hold it a minute
        assert result.exit_code == 1
        assert f"skipped {slow.url(path)}: no complete answer within 2 s" in result.output

    index = tmp_path / "archive"
    news = sites("127.0.0.1")
    news.routes["/feed.xml"] = feed_route(rss(item("d1", news.url("/d1"), LONG)))
    add_feed(news.url("/feed.xml"), index)
    add_feed(slow.url("/page"), index)
    started = time.monotonic()
    result = run_round(index, everything=True, embedder=use_fake_model)
    assert time.monotonic() - started < 15 and result.index.added == 1
    feeds = {feed.url: feed for feed in listed(index)}
    assert feeds[slow.url("/page")].last_error == "no complete answer within 2 s"


def test_the_pages_of_a_feeds_entries_are_fetched_at_once_within_a_budget(
    sites: Callable[[str], Site], short_deadlines: None, tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    news = sites("127.0.0.1")
    for number in range(20):
        news.routes[f"/hangs/{number}"] = hang(news)
    news.routes["/feed.xml"] = feed_route(rss(*(item(f"h{n}", news.url(f"/hangs/{n}")) for n in range(20))))
    index = tmp_path / "archive"
    add_feed(news.url("/feed.xml"), index)
    started = time.monotonic()
    result = run_round(index, everything=True, embedder=use_fake_model)
    assert time.monotonic() - started < 15  # 20 pages one after another would take 40 s at 2 s each
    assert news.most_at_once >= 2 and result.index.added == 20  # each with its summary
    late = [line for line in result.lines() if "did not come in time" in line]
    assert len(late) == 1 and late[0].startswith(f"  {news.url('/feed.xml')}: 20 of its entries' pages did not")
    assert all(body.startswith("A short summary") for body in _articles(index).values())
    with duckdb.connect(str(index / "archive.duckdb"), read_only=True) as db:  # read again next round
        assert db.execute("SELECT count(*) FROM feed_entries").fetchall() == [(0,)]
        assert db.execute("SELECT etag FROM feeds").fetchall() == [(None,)]


def test_a_webhook_that_drips_is_cut_off_and_the_others_are_delivered(
    sites: Callable[[str], Site],
    short_deadlines: None,
    tmp_path: Path,
    use_fake_model: FakeEmbedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = sites("127.0.0.1")
    hooks.routes["/slow"] = drip(hooks, headers_too=True)  # a body that drips is not even read
    hooks.routes["/ok"] = lambda h: send(h, 200, b"{}", "application/json")
    folder = tmp_path / "in"
    index = _archive(tmp_path, use_fake_model)
    (folder / "ferry.md").write_text(f"# Ferry\n\n{WORDS}\n", encoding="utf-8")
    alerts.add_alert("slow", "ferry timetable", index, mode="lexical", webhook=hooks.url("/slow"))
    alerts.add_alert("fine", "ferry timetable", index, mode="lexical", webhook=hooks.url("/ok"))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        report = index_paths([folder], index, embedder=use_fake_model, run_alerts=alerts.run_alerts)
    assert time.monotonic() - started < 15  # three attempts at 2 s, within the budget of 4 s
    assert len(report.matches) == 2 and hooks.requests["/ok"] == 1 and hooks.requests["/slow"] in (1, 2)
    assert "alert slow: its webhook failed (1 matches not delivered)" in caplog.text
    assert "no complete answer within" in caplog.text


# --- Finding 5: a bad entry or feed stays with itself -----------------------------------------------------------


def test_an_entry_with_a_link_that_is_not_a_url_is_one_line_and_the_round_goes_on(
    sites: Callable[[str], Site], tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    news = sites("127.0.0.1")
    news.routes["/feed.xml"] = feed_route(
        rss(item("b1", news.url("/b1"), LONG), item("b2", "http://[::1/x", LONG), item("b3", news.url("/b3"), LONG))
    )
    index = tmp_path / "archive"
    add_feed(news.url("/feed.xml"), index)
    for _ in range(2):  # and every round after
        result = run_round(index, everything=True, embedder=use_fake_model)
        lines = result.lines()
        assert "0 failed" in lines[0] and check(index) == []
        assert lines[1] == (
            f"  {news.url('/feed.xml')}:2: feed entry 2: its link http://[::1/x: not a URL that can be read "
            "(Invalid IPv6 URL)"
        )
    assert sorted(_articles(index)) == [f"{news.base[7:]}-b1", f"{news.base[7:]}-b3"]
    articles, (problem,) = _read(news.url("/feed.xml"))  # `index URL` too
    assert len(articles) == 2 and problem.line == 2


def test_an_entry_whose_page_breaks_the_reader_is_one_line_and_the_feed_goes_on(
    sites: Callable[[str], Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    news = sites("127.0.0.1")
    news.routes["/fine"] = page("Fine")
    news.routes["/odd"] = page("Odd")
    news.routes["/feed.xml"] = feed_route(rss(item("f1", news.url("/fine")), item("f2", news.url("/odd"))))
    real = web.page_fields

    def page_fields(html: bytes, url: str | None = None) -> object:
        if url and url.endswith("/odd"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(html, url)

    monkeypatch.setattr(web, "page_fields", page_fields)
    (article,), (problem,) = _read(news.url("/feed.xml"))
    assert "harbour council" in article.text
    assert str(problem) == (
        f"{news.url('/feed.xml')}:2: feed entry 2 could not be read (RecursionError: maximum recursion depth exceeded)"
    )


def test_an_entry_dated_out_of_range_is_indexed_without_its_date(
    sites: Callable[[str], Site], tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    news = sites("127.0.0.1")
    atom_feed = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Far</title>'
        f"<entry><id>far</id><title>Far future</title><link href='{news.url('/far')}'/>"
        f"<published>9999-12-31T23:59:59-14:00</published><content>{LONG}</content></entry>"
        f"<entry><id>near</id><title>Near</title><link href='{news.url('/near')}'/>"
        f"<published>2026-11-30T08:00:00Z</published><content>{LONG}</content></entry></feed>"
    )
    news.routes["/feed.atom"] = lambda h: send(h, 200, atom_feed.encode(), "application/atom+xml")
    index = tmp_path / "archive"
    add_feed(news.url("/feed.atom"), index)
    result = run_round(index, everything=True, embedder=use_fake_model)
    assert result.index.added == 2 and check(index) == []
    with duckdb.connect(str(index / "archive.duckdb"), read_only=True) as db:
        dates = dict(db.execute("SELECT article_id, published FROM articles").fetchall())
    assert dates[f"{news.base[7:]}-far"] is None and dates[f"{news.base[7:]}-near"].year == 2026


def test_a_feed_that_fails_in_an_unforeseen_way_is_backed_off_and_the_round_commits(
    sites: Callable[[str], Site], tmp_path: Path, use_fake_model: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    news = sites("127.0.0.1")
    news.routes["/good.xml"] = feed_route(rss(item("g1", news.url("/g1"), LONG)))
    news.routes["/odd.xml"] = feed_route(rss(item("o1", news.url("/o1"), LONG), title="Odd"))
    real = web.read_entries

    def read_entries(where: str, *args: object, **kwargs: object) -> object:
        if where.endswith("/odd.xml"):
            raise RuntimeError("something nobody foresaw")
        return real(where, *args, **kwargs)

    monkeypatch.setattr(web, "read_entries", read_entries)
    index = tmp_path / "archive"
    add_feed(news.url("/good.xml"), index)
    add_feed(news.url("/odd.xml"), index)
    start = datetime.now(timezone.utc)
    commit = Manifest.load(index).commit
    first = run_round(index, everything=True, embedder=use_fake_model, now=start)
    assert Manifest.load(index).commit > commit and list(_articles(index)) == [f"{news.base[7:]}-g1"]
    odd = {feed.url: feed for feed in listed(index)}[news.url("/odd.xml")]
    assert odd.failures == 1 and odd.last_error == "could not be read (RuntimeError: something nobody foresaw)"
    assert odd.next_due == start + timedelta(minutes=30)
    assert f"  {news.url('/odd.xml')}: could not be read (RuntimeError: something" in "\n".join(first.lines())
    second = run_round(index, embedder=use_fake_model, now=start + timedelta(minutes=16))
    assert [item.feed.url for item in second.fetched] == [news.url("/good.xml")]  # the odd one waits
    run_round(index, embedder=use_fake_model, now=start + timedelta(minutes=31))
    odd = {feed.url: feed for feed in listed(index)}[news.url("/odd.xml")]
    assert odd.failures == 2 and odd.next_due == start + timedelta(minutes=31 + 60)  # the wait doubles


def test_a_period_is_at_most_a_year(tmp_path: Path, use_fake_model: FakeEmbedder) -> None:
    index = tmp_path / "archive"
    result = CliRunner().invoke(cli, ["feeds", "add", "http://127.0.0.1:9/feed.xml", "--every", "4000000d", "-d",
                                      str(index)])  # fmt: skip
    assert result.exit_code == 1 and "feeds are fetched at least once a year (365d at most)" in result.output
    assert listed(index) == []
    huge = "9" * 5000  # more digits than int() reads
    result = CliRunner().invoke(cli, ["feeds", "add", "http://127.0.0.1:9/feed.xml", "--every", huge, "-d", str(index)])
    assert result.exit_code == 1 and "is not a period" in result.output
    # An archive holding such a period from before: its rounds work.
    add_feed("http://127.0.0.1:9/feed.xml", index)
    with Writer(index) as writer:
        (feed,) = [Feed(**row) for row in writer.table("feeds").to_pylist()]
        writer.set_table("feeds", to_table([dataclasses.replace(feed, every_seconds=4_000_000 * 86400)]))
    result = run_round(index, everything=True, embedder=use_fake_model)
    (feed,) = listed(index)
    assert feed.failures == 1 and feed.next_due <= result.at + timedelta(seconds=MAX_EVERY)


# --- Finding 6: alert names, and alerts that fail one at a time -------------------------------------------------


def test_an_alert_name_is_checked(tmp_path: Path, use_fake_model: FakeEmbedder) -> None:
    index = str(_archive(tmp_path, use_fake_model))
    for name in ("x" * 300, "a/b", ".hidden", "", "two words", "bell\x07"):
        result = CliRunner().invoke(cli, ["alerts", "add", name, "ferry", "-d", index])
        assert result.exit_code == 1 and "1 to 64 letters, digits, '-', '_' or '.', not starting with '.'" in (
            result.output
        ), name
    assert alerts.listed(index) == []
    for name in ("ferries", "x" * 64, "drones.black-sea_2026", "droni-città"):
        assert CliRunner().invoke(cli, ["alerts", "add", name, "ferry", "-d", index]).exit_code == 0, name


def test_an_archive_holding_a_bad_alert_name_still_indexes_and_delivers(
    sites: Callable[[str], Site],
    tmp_path: Path,
    use_fake_model: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = sites("127.0.0.1")
    for path in ("/hook", "/0", "/1"):
        hooks.routes[path] = lambda h: send(h, 200, b"{}", "application/json")
    index = _archive(tmp_path, use_fake_model)
    now = datetime.now(timezone.utc)
    long_name, slashed = "x" * 300, "a/../../escape"
    with Writer(index) as writer:  # names from before they were checked
        rows = [alerts.Alert(name, "ferry timetable", "lexical", 0.0, now, now, [], [], hooks.url(f"/{n}"))
                for n, name in enumerate([long_name, slashed])]  # fmt: skip
        writer.set_table("alerts", alerts.to_table(rows, "alerts"))
    alerts.add_alert("fine", "ferry timetable", index, mode="lexical", webhook=hooks.url("/hook"))
    alerts.add_alert("broken-file", "ferry timetable", index, mode="lexical", webhook=hooks.url("/hook"))
    real_write = alerts.write_feed

    def write(directory: Path, alert: alerts.Alert, matches: list) -> Path:
        if alert.name == "broken-file":
            raise OSError(28, "No space left on device")
        return real_write(directory, alert, matches)

    monkeypatch.setattr(alerts, "write_feed", write)
    (tmp_path / "in" / "ferry.md").write_text(f"# Ferry\n\n{WORDS}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["index", str(tmp_path / "in"), "-d", str(index)])
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("alert ") and ": Ferry (" in line for line in result.output.splitlines()) == 4
    assert hooks.requests["/hook"] == 2 and hooks.requests["/0"] == hooks.requests["/1"] == 1  # every one delivered
    assert {post["alert"] for post in hooks.posted} == {long_name, slashed, "fine", "broken-file"}
    assert "alert broken-file: its feed file could not be written (OSError: [Errno 28] No space left on device)" in (
        caplog.text
    )
    files = {path.name for path in (index / "alerts").iterdir()}
    derived = {atom.path(index, long_name).name, atom.path(index, slashed).name}
    assert files == {"fine.xml", "broken-file.xml", *derived} and all(len(name) < 80 for name in derived)
    assert atom.path(index, slashed).parent == index / "alerts"
    assert feedparser.parse(atom.path(index, long_name).read_bytes()).entries[0].title == "Ferry"


# --- Credentials --------------------------------------------------------------------------------------------------


def test_a_password_in_a_url_is_never_printed(
    sites: Callable[[str], Site], tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    news = sites("127.0.0.1")
    news.routes["/error.xml"] = lambda h: send(h, 500, b"oops", "text/plain")
    news.routes["/loop"] = lambda h: send(h, 302, b"", "text/plain", Location="/loop2")
    news.routes["/loop2"] = lambda h: send(h, 302, b"", "text/plain", Location="/loop")
    news.routes["/feed.xml"] = feed_route(rss(item("c1", news.url("/c1"), ""), item("c2", news.url("/c2"), LONG)))
    secret = news.base.replace("http://", "http://reader:s3cr3t-pw@")
    index = str(tmp_path / "archive")
    runner = CliRunner()
    outputs = [
        runner.invoke(cli, ["feeds", "add", f"{secret}/error.xml", "-d", index]).output,
        runner.invoke(cli, ["feeds", "add", f"{secret}/feed.xml", "-d", index]).output,
        runner.invoke(cli, ["follow", "--once", "-d", index]).output,
        runner.invoke(cli, ["feeds", "list", "-d", index]).output,
        runner.invoke(cli, ["feeds", "list", "--json", "-d", index]).output,
        runner.invoke(
            cli, ["index", f"{secret}/loop", f"{secret}/error.xml", f"{secret}/feed.xml", "-d", index]
        ).output,
        runner.invoke(cli, ["feeds", "remove", f"{secret}/error.xml", "-d", index]).output,
        runner.invoke(cli, ["feeds", "remove", f"{secret}/error.xml", "-d", index]).output,
    ]
    printed = "\n".join(outputs)
    assert "s3cr3t-pw" not in printed and "reader:***@" in printed
    assert "HTTP 500" in printed and "redirects in a loop" in printed and "feed entry 1 has no text" in printed
    assert news.requests["/error.xml"] >= 2  # the password was used all the same
    with duckdb.connect(str(Path(index) / "archive.duckdb"), read_only=True) as db:
        assert "s3cr3t-pw" not in json.dumps(db.execute("SELECT * FROM articles").fetchall(), default=str)
    assert fetch_policy.shown("https://a:b@example.org:8443/x?y=1") == "https://a:***@example.org:8443/x?y=1"
    assert fetch_policy.shown("http://[::1/x") == "http://[::1/x"


# --- Property: no feed entry breaks a round -----------------------------------------------------------------------

_CONTROL = st.characters(min_codepoint=0, max_codepoint=0x1F)
_TEXT = st.text(st.one_of(_CONTROL, st.characters(codec="utf-8", exclude_categories=("Cs",))), max_size=40)
_LINKS = st.one_of(
    st.sampled_from(["http://[::1/x", "http://", "https://:80/", "javascript:alert(1)", "http://127.0.0.1:1/x",
                     "http://[::1]:1/x", "http://localhost:1/x", "http://0.0.0.0:1/", "http://x:y@127.0.0.2:1/",
                     "OWN/page", "OWN/missing", "OWN/../../etc/passwd", "http://%zz/", "http://a b/", ""]),
    _TEXT,
)  # fmt: skip
_DATES = st.one_of(
    st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "Tue, 99 Foo 99999 99:99:99 GMT",
                     "Fri, 31 Dec 9999 23:59:59 -1400", "2026-02-30", "1e400", "-1", "now", ""]),
    _TEXT,
)  # fmt: skip
_ENTRIES = st.lists(
    st.fixed_dictionaries(
        {"id": _TEXT, "title": _TEXT, "link": _LINKS, "date": _DATES, "text": st.sampled_from(["", "Short.", LONG])}
    ),
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def property_site() -> Iterator[Site]:
    site = Site("127.0.0.1")
    site.routes["/page"] = page("A page of the feed's own site")
    yield site
    site.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=_ENTRIES)
def test_no_feed_entry_breaks_a_round(
    entries: list[dict], property_site: Site, use_fake_model: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetching, "TIMEOUT", 5.0)
    items = [
        f"<item><guid>{escape(e['id'])}</guid><title>{escape(e['title'])}</title>"
        f"<link>{escape(e['link'].replace('OWN', property_site.base))}</link><pubDate>{escape(e['date'])}</pubDate>"
        f"<description>{escape(e['text'])}</description></item>"
        for e in entries
    ]
    body = rss(*items)
    property_site.routes["/feed.xml"] = feed_route(body)
    with tempfile.TemporaryDirectory() as folder:
        index = Path(folder) / "archive"
        add_feed(property_site.url("/feed.xml"), index)
        commit = Manifest.load(index).commit
        result = run_round(index, everything=True, embedder=use_fake_model)
        assert Manifest.load(index).commit > commit
        assert check(index) == []
        (feed,) = listed(index)  # no fault that only the last resort caught
        assert not (feed.last_error or "").startswith("could not be read"), result.lines()


def test_allow_private_reaches_the_ray_workers_that_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's workers read the URLs themselves: --allow-private goes to them as the variable their policy reads."""
    from indexer.ingest import cluster
    from indexer.reading import fetch_policy

    asked: list[dict] = []

    class FakeRay:
        @staticmethod
        def is_initialized() -> bool:
            return False

        @staticmethod
        def init(**options: object) -> None:
            asked.append(options)

    monkeypatch.delenv(fetch_policy.ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.setattr(cluster, "_ray", lambda: FakeRay)
    cluster.connect()
    with fetch_policy.allowing_private():
        cluster.connect()
    assert asked[0]["runtime_env"] is None
    assert asked[1]["runtime_env"] == {"env_vars": {fetch_policy.ALLOW_PRIVATE_ENV: "1"}}
