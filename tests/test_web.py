"""Saved web pages, feeds and URLs: main text without boilerplate, metadata, and failures one URL at a time.

The pages and the feed are fixtures written for these tests (tests/fixtures/web); URLs are served by a local
HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.errors import InputProblem
from indexer.ingest.index import index_paths
from indexer.reading import fetch_policy, fetching
from indexer.reading.article import Article
from indexer.reading.inputs import read_articles
from tests.conftest import FakeEmbedder

FIXTURES = Path(__file__).parent / "fixtures" / "web"
ITALIAN_PAGE = FIXTURES / "corriere-drone.html"
ENGLISH_PAGE = FIXTURES / "harbour-times-drone.html"
BOILERPLATE = ["PUBBLICITÀ", "Abbonati", "Marco75", "Oroscopo", "P.IVA", "Cookie", "Meteo"]


class _Handler(http.server.BaseHTTPRequestHandler):
    base = ""

    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        if self.path == "/slow":
            time.sleep(2)  # past the client's timeout: it has hung up, so nothing is written
            return
        name = self.path.lstrip("/")
        if name in {"feed.rss", "corriere-drone.html", "harbour-times-drone.html"}:
            body = (FIXTURES / name).read_bytes().replace(b"{BASE}", self.base.encode())
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml" if name.endswith(".rss") else "text/html")
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404, "Not Found")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield _Handler.base
    httpd.shutdown()


def _read(*paths: str | Path) -> tuple[list[Article], list[InputProblem]]:
    items = list(read_articles(paths))
    return [i for i in items if isinstance(i, Article)], [i for i in items if isinstance(i, InputProblem)]


def test_a_saved_page_gives_its_main_text_without_boilerplate() -> None:
    (article,), problems = _read(ITALIAN_PAGE)
    assert not problems
    assert article.article_id == "corriere-drone"
    assert article.title == "Drone MQ-9 precipitato nel Mar Nero dopo l'intercetto di due caccia"
    for kept in ("Reaper è precipitato martedì", "scaricando carburante", "Le ricerche dei rottami", "Pentagono"):
        assert kept in article.text
    for dropped in BOILERPLATE:
        assert dropped not in article.text, dropped
    assert len(article.paragraphs) >= 4


def test_a_saved_page_gives_its_metadata() -> None:
    (article,), _ = _read(ITALIAN_PAGE)
    assert article.source == "Corriere del Porto"
    assert article.url == "https://www.corrieredelporto.example/esteri/2023/03/14/drone-mq9-mar-nero"
    assert article.published == datetime(2023, 3, 14, 17, 42, tzinfo=timezone.utc)
    assert article.language == "it"
    assert article.author == "Giulia Ferraris"
    assert not article.text.startswith(article.title)  # the headline above the text is the title, not a paragraph
    (english,), _ = _read(ENGLISH_PAGE)
    assert (english.language, english.source) == ("en", "The Harbour Times")
    assert english.published == datetime(2023, 3, 14, 16, 5, tzinfo=timezone.utc)


def test_page_metadata_lands_in_duckdb(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for page in (ITALIAN_PAGE, ENGLISH_PAGE):
        shutil.copy(page, pages)
    report = index_paths([pages], tmp_path / "index", embedder=fake_embedder)
    assert (report.added, report.problems) == (2, [])
    with duckdb.connect(str(tmp_path / "index" / "archive.duckdb"), read_only=True) as db:
        rows = db.execute(
            "SELECT article_id, source, url, language, epoch(published)::BIGINT, author FROM articles ORDER BY 1"
        ).fetchall()
    italian_url = "https://www.corrieredelporto.example/esteri/2023/03/14/drone-mq9-mar-nero"
    english_url = "https://harbourtimes.example/world/us-drone-black-sea"
    assert rows == [
        ("corriere-drone", "Corriere del Porto", italian_url, "it", 1678815720, "Giulia Ferraris"),
        ("harbour-times-drone", "The Harbour Times", english_url, "en", 1678809900, None),
    ]


def test_an_unreadable_date_in_a_page_is_left_out_not_an_error(tmp_path: Path) -> None:
    page = tmp_path / "odd-date.html"
    html = ENGLISH_PAGE.read_text(encoding="utf-8").replace("2023-03-14T16:05:00Z", "sometime in spring")
    page.write_text(html, encoding="utf-8")
    (article,), problems = _read(page)
    assert not problems and "Su-27" in article.text
    assert article.published is None or article.published.year == 2023  # trafilatura's own date, if it finds one


def test_a_page_without_article_text_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body><nav><a href='/'>Home</a></nav></body></html>", encoding="utf-8")
    articles, (problem,) = _read(empty)
    assert not articles and problem.path == str(empty) and "no article text" in problem.reason


def test_a_feed_gives_an_article_per_entry_and_fetches_pages_for_summaries(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A saved feed has no site of its own: links to this machine are fetched only when private addresses are allowed.
    monkeypatch.setenv(fetch_policy.ALLOW_PRIVATE_ENV, "1")
    feed = tmp_path / "esteri.rss"
    feed.write_bytes((FIXTURES / "feed.rss").read_bytes().replace(b"{BASE}", server.encode()))
    (grain, drone, finland), problems = _read(feed)
    assert not problems
    assert {a.source for a in (grain, drone, finland)} == {"Corriere del Porto - Esteri"}
    # Full text in the entry: indexed as it is, with the entry's link, date and language.
    assert "centomila tonnellate" in grain.text and grain.url == f"{server}/esteri/accordo-grano"
    assert grain.published == datetime(2023, 3, 20, 8, 15, tzinfo=timezone.utc) and grain.language == "it"
    assert grain.author == "Luca Serra"
    # A summary whose page answers: the page's main text, without its boilerplate.
    assert "Le ricerche dei rottami" in drone.text and "Marco75" not in drone.text
    assert drone.title == "Drone MQ-9 precipitato nel Mar Nero" and drone.url == f"{server}/corriere-drone.html"
    assert drone.author == "Giulia Ferraris"  # the page's, as the entry names none
    # A summary whose page is gone: the summary.
    assert finland.text.startswith("Il partito di coalizione nazionale")
    assert len({a.article_id for a in (grain, drone, finland)}) == 3


def test_urls_are_fetched_and_each_failure_is_reported(server: str) -> None:
    refused = "http://127.0.0.1:9/closed"
    (article, *entries), problems = _read(
        f"{server}/harbour-times-drone.html", f"{server}/gone", refused, f"{server}/feed.rss"
    )
    assert "Su-27 fighter jets" in article.text and "mortgage" not in article.text
    assert article.article_id == "harbourtimes.example-world-us-drone-black-sea"  # from its canonical URL
    assert len(entries) == 3
    assert [(p.path, p.reason.split(" (")[0]) for p in problems] == [
        (f"{server}/gone", "the server answered HTTP 404"),
        (refused, "cannot fetch: Connection refused"),
    ]


def test_a_url_that_does_not_answer_in_time_is_reported(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetching, "TIMEOUT", 0.5)
    articles, (problem,) = _read(f"{server}/slow")
    assert not articles and problem.reason == "no answer within 0.5 s"


def test_index_takes_urls_and_indexes_the_rest_when_one_fails(
    server: str, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("indexer.ingest.index.load_embedder", lambda *args, **kwargs: fake_embedder)
    index = tmp_path / "index"
    result = CliRunner().invoke(
        cli, ["index", f"{server}/harbour-times-drone.html", f"{server}/gone", "-d", str(index)]
    )
    assert result.exit_code == 1
    assert f"skipped {server}/gone: the server answered HTTP 404" in result.stderr
    assert "1 article added" in result.stdout
    # A URL's article is not pruned because no file of that name exists.
    result = CliRunner().invoke(cli, ["index", str(ITALIAN_PAGE), "--prune", "-d", str(index)])
    assert result.exit_code == 0, result.output
    assert "2 articles" in result.stdout.splitlines()[-1]


def test_date_filters_keep_the_days_asked_for_inclusive_in_utc(tmp_path: Path, use_fake_model: FakeEmbedder) -> None:
    stories = Path(__file__).parent / "fixtures" / "stories"
    index_paths([stories, ITALIAN_PAGE, ENGLISH_PAGE], tmp_path / "index", embedder=use_fake_model)
    runner = CliRunner()

    def days(*options: str) -> set[str]:
        args = ["search", "--json", "-k", "50", "-d", str(tmp_path / "index"), *options, "drone Mar Nero Black Sea"]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        return {hit["published"][:10] for hit in json.loads(result.output)["hits"]}

    assert days() >= {"2023-03-14", "2023-03-16", "2023-03-17"}
    assert days("--since", "2023-03-16", "--until", "2023-03-17") == {"2023-03-16", "2023-03-17"}
    assert days("--until", "2023-03-14") == {"2023-03-14"}
    assert days("--since", "2023-03-18") == {"2023-03-18"}  # dated 11:00+01:00, 10:00 in UTC
