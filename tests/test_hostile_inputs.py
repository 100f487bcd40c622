"""Inputs that once broke a run or an archive: articles that take another input's id, files and lines that raised
instead of being one problem, dates that cannot be stored, queries too big to run, and files a folder skipped
without a word. Each case is one line naming the input and what to do; the rest of the run goes on.

Property tests then throw random queries and random JSONL lines at the reader, the query language and the writer:
nothing but the expected one-line errors, and nothing committed that ``check`` rejects.
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.cli.main import cli
from indexer.errors import InputProblem
from indexer.exact.counts import coverage, facets, matches
from indexer.exact.match import Condition
from indexer.exact.query import MAX_DEPTH, MAX_QUERY_CHARS, MAX_TERMS, QueryError, parse
from indexer.ingest.index import index_paths, remove_articles
from indexer.reading.article import Article, parse_published
from indexer.reading.inputs import Ignored, read_articles
from indexer.storage import Snapshot
from indexer.storage.check import check
from tests.conftest import ROOT, FakeEmbedder

DATED = ROOT / "tests" / "fixtures" / "dated" / "articles.jsonl"
BODY = "The harbour council met on Tuesday to discuss the new ferry timetable and the repairs to the old pier. "


def _rss(title: str, entries: list[tuple[str, str, str]]) -> str:
    """An RSS feed of (guid, link, text) entries, whose text is long enough that no page is fetched."""
    items = "".join(
        f"<item><guid>{guid}</guid><title>Story {guid}</title><link>{link}</link>"
        f"<pubDate>Mon, 30 Nov 2026 08:00:00 GMT</pubDate><description>{text}</description></item>"
        for guid, link, text in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{items}</channel></rss>'


def _articles(directory: Path) -> dict[str, dict]:
    with Snapshot(directory) as snapshot:
        rows = snapshot.store.db.sql("SELECT article_id, title, body, source, path FROM articles").fetchall()
    return {row[0]: dict(zip(("title", "body", "source", "path"), row[1:])) for row in rows}


def _one_line_failure(result: Result) -> str:
    """The message of a command that failed as expected: exit code 1, one line, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (RecursionError, ValueError))
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# Ownership: an article belongs to the input that first indexed it.


def test_a_feed_entry_cannot_take_another_outlets_article(tmp_path: Path) -> None:
    directory, harbour, copycat = tmp_path / "archive", tmp_path / "harbour.rss", tmp_path / "copycat.rss"
    link = "https://harbour.example/news/ferries"
    harbour.write_text(_rss("Harbour Times", [("h1", link, BODY * 8)]), encoding="utf-8")
    copycat.write_text(_rss("Copycat Daily", [("c1", link, "Invented. " * 80)]), encoding="utf-8")
    index_paths([harbour], directory, embedder=FakeEmbedder())
    before = _articles(directory)
    report = index_paths([copycat], directory, embedder=FakeEmbedder())
    assert (report.added, report.updated) == (0, 0)
    (problem,) = report.problems
    assert problem.path == str(copycat) and problem.line == 1
    assert "'harbour.example-news-ferries'" in problem.reason and str(harbour) in problem.reason
    assert "newsarchive remove harbour.example-news-ferries" in problem.reason
    assert _articles(directory) == before and before["harbour.example-news-ferries"]["source"] == "Harbour Times"
    assert check(directory) == []


@contextlib.contextmanager
def _serving(served: dict[str, str], host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``served`` (path -> feed XML, read at each request) on ``host``; yields the server's base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- the name http.server calls
            body = served.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def feeds_server() -> Iterator[tuple[str, str]]:
    """Two outlets' feeds, the harbour's on 127.0.0.1 and the copycat's on 127.0.0.2 (another host): the copycat's
    entry links to the harbour's article."""
    link = "https://harbour.example/news/ferries"
    served = {
        "/harbour.xml": _rss("Harbour Times", [("h1", link, BODY * 8)]),
        "/copycat.xml": _rss("Copycat Daily", [("c1", link, "Invented. " * 80)]),
    }
    with _serving(served, "127.0.0.1") as harbour, _serving(served, "127.0.0.2") as copycat:
        yield f"{harbour}/harbour.xml", f"{copycat}/copycat.xml"


def test_a_fetched_feed_cannot_take_another_feeds_article(tmp_path: Path, feeds_server: tuple[str, str]) -> None:
    (harbour, copycat), directory = feeds_server, tmp_path / "archive"
    index_paths([harbour], directory, embedder=FakeEmbedder())
    before = _articles(directory)
    report = index_paths([copycat], directory, embedder=FakeEmbedder())
    (problem,) = report.problems
    assert problem.path == copycat and f"belongs to {harbour}" in str(problem)
    assert (report.added, report.updated) == (0, 0) and _articles(directory) == before
    report = index_paths([harbour], directory, embedder=FakeEmbedder())
    assert (report.unchanged, report.problems) == (1, [])  # its own feed read again is no conflict


def test_a_followed_feed_cannot_take_another_feeds_article(tmp_path: Path, feeds_server: tuple[str, str]) -> None:
    harbour, copycat = feeds_server
    from indexer.live.feeds import add_feed
    from indexer.live.follow import run_round

    directory = tmp_path / "archive"
    index_paths([harbour], directory, embedder=FakeEmbedder())
    before = _articles(directory)
    add_feed(copycat, directory)
    round_ = run_round(directory, everything=True, embedder=FakeEmbedder())
    assert (round_.index.added, round_.index.updated) == (0, 0) and _articles(directory) == before
    assert [p.path for p in round_.index.problems] == [copycat]
    (line,) = [line for line in round_.lines() if "belongs to" in line]  # the round's report says so
    assert line.startswith(f"  {copycat}") and harbour in line
    assert check(directory) == []


def test_the_conflict_is_one_line_of_the_index_command(tmp_path: Path, use_fake_model: FakeEmbedder) -> None:
    directory, first, second = tmp_path / "archive", tmp_path / "a" / "one.md", tmp_path / "b" / "two.md"
    for path, text in ((first, "The original"), (second, "An impostor")):
        path.parent.mkdir()
        path.write_text(f"---\nid: story\n---\n# {text}\n\n{BODY}\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(first), "-d", str(directory)]).exit_code == 0
    result = runner.invoke(cli, ["index", str(second), "-d", str(directory)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("skipped")]
    assert f"skipped {second}: article id 'story' belongs to {first}" in line
    assert "0 articles added, 0 updated" in result.output
    assert _articles(directory)["story"]["title"] == "The original"


def test_a_front_matter_id_cannot_take_another_files_article_until_it_is_removed(tmp_path: Path) -> None:
    directory, first, second = tmp_path / "archive", tmp_path / "one.md", tmp_path / "two.md"
    first.write_text(f"---\nid: story\n---\n# The original\n\n{BODY}\n", encoding="utf-8")
    second.write_text(f"---\nid: story\n---\n# An impostor\n\n{BODY}\n", encoding="utf-8")
    index_paths([first], directory, embedder=FakeEmbedder())
    report = index_paths([second], directory, embedder=FakeEmbedder())
    assert [p.path for p in report.problems] == [str(second)] and report.updated == 0
    assert _articles(directory)["story"]["title"] == "The original"
    remove_articles(["story"], directory)
    report = index_paths([second], directory, embedder=FakeEmbedder())
    assert (report.added, report.problems) == (1, [])
    assert _articles(directory)["story"]["title"] == "An impostor"


def test_ownership_holds_for_articles_embedded_on_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What Ray's workers send back is refused in the same way: the conflicting article, its passages and vectors."""
    from indexer.ingest import cluster
    from indexer.ingest.embedding import embed_articles

    def embedded_batches(paths, settings, known, options, backend=None):  # a Ray run, in this process
        articles = list(read_articles(paths))  # one batch, the conflicting article among others
        languages, passages, vectors = embed_articles(articles, FakeEmbedder(), settings.max_tokens)
        yield cluster.Batch(articles, languages, passages, vectors)

    monkeypatch.setattr(cluster, "embedded_batches", embedded_batches)
    directory, first, second = tmp_path / "archive", tmp_path / "one.md", tmp_path / "two.md"
    first.write_text(f"---\nid: story\n---\n# The original\n\n{BODY}\n", encoding="utf-8")
    second.write_text(f"---\nid: story\n---\n# An impostor\n\n{BODY}\n\n{BODY}\n", encoding="utf-8")
    (tmp_path / "other.txt").write_text(f"Other\n{BODY}\n", encoding="utf-8")
    options = cluster.ClusterOptions()
    index_paths([first], directory, embedder=FakeEmbedder(), cluster=options)
    report = index_paths([second, tmp_path / "other.txt"], directory, embedder=FakeEmbedder(), cluster=options)
    assert (report.added, report.updated, [p.path for p in report.problems]) == (1, 0, [str(second)])
    assert _articles(directory)["story"]["title"] == "The original"
    assert check(directory) == []
    with Snapshot(directory) as snapshot:
        assert snapshot.store.db.sql("SELECT count(*) FROM passages").fetchall() == [(2,)]


def test_the_same_files_indexed_from_another_directory_or_moved_still_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, articles = tmp_path / "archive", tmp_path / "work" / "articles"
    articles.mkdir(parents=True)
    (articles / "a.txt").write_text(f"Ferries\n{BODY}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "work")
    index_paths(["articles"], directory, embedder=FakeEmbedder())  # stored as the relative articles/a.txt
    (articles / "a.txt").write_text(f"Ferries again\n{BODY}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    report = index_paths([articles.resolve()], directory, embedder=FakeEmbedder())
    assert (report.updated, report.problems) == (1, [])
    monkeypatch.chdir(articles)
    (articles / "a.txt").write_text(f"Ferries a third time\n{BODY}\n", encoding="utf-8")
    report = index_paths(["a.txt"], directory, embedder=FakeEmbedder())  # the same file by another name
    assert (report.updated, report.problems) == (1, [])
    moved = tmp_path / "moved"
    shutil.move(articles, moved)
    (moved / "a.txt").write_text(f"Ferries moved\n{BODY}\n", encoding="utf-8")
    report = index_paths([moved], directory, embedder=FakeEmbedder(), prune=True)
    assert (report.updated, report.removed, report.problems) == (1, 0, [])
    assert _articles(directory)["a"]["path"] == str(moved / "a.txt")


def test_a_saved_feed_saved_again_under_a_new_name_updates_its_stories(tmp_path: Path) -> None:
    """A feed saved each day under the day's name: once the first file is gone, the next one takes its stories."""
    directory, link = tmp_path / "archive", "https://harbour.example/news/ferries"
    first, second = tmp_path / "harbour-2026-12-01.rss", tmp_path / "harbour-2026-12-02.rss"
    first.write_text(_rss("Harbour Times", [("h1", link, BODY * 8)]), encoding="utf-8")
    index_paths([first], directory, embedder=FakeEmbedder())
    second.write_text(_rss("Harbour Times", [("h1", link, BODY * 8 + "Updated.")]), encoding="utf-8")
    report = index_paths([second], directory, embedder=FakeEmbedder())
    assert report.updated == 0 and "belongs to" in str(report.problems[0])  # both files there: two inputs
    first.unlink()
    report = index_paths([second], directory, embedder=FakeEmbedder())
    assert (report.updated, report.problems) == (1, [])
    assert _articles(directory)["harbour.example-news-ferries"]["body"].endswith("Updated.")


def test_a_rebuild_has_no_owners_to_respect(tmp_path: Path) -> None:
    directory, first, second = tmp_path / "archive", tmp_path / "one.md", tmp_path / "two.md"
    first.write_text(f"---\nid: story\n---\n# The original\n\n{BODY}\n", encoding="utf-8")
    second.write_text(f"---\nid: story\n---\n# Its successor\n\n{BODY}\n", encoding="utf-8")
    index_paths([first], directory, embedder=FakeEmbedder())
    report = index_paths([second], directory, embedder=FakeEmbedder(), rebuild=True)
    assert (report.added, report.problems) == (1, [])
    assert _articles(directory)["story"]["title"] == "Its successor"


def test_a_page_url_owns_its_article_against_a_file(tmp_path: Path) -> None:
    """A URL and a file are never the same input, whatever the file's name."""
    from indexer.ingest.index import same_input

    assert same_input("https://a.example/x", "https://a.example/x")
    assert not same_input("https://b.example/feed.xml", "https://a.example/feed.xml")
    assert not same_input(str(tmp_path / "x"), "https://a.example/x")
    assert not same_input("https://a.example/x", str(tmp_path / "x"))
    # An outlet's feeds and pages share the articles on its own site; a feed on another host takes none.
    story = "https://www.a.example/world/story"
    assert same_input("https://a.example/world.xml", "https://a.example/top.xml", story)
    assert same_input("http://www.a.example/top.xml", "https://a.example/story.html", story)
    assert not same_input("https://feeds.aggregator.example/a", "https://a.example/top.xml", story)
    assert not same_input("https://a.example.evil.example/feed", "https://a.example/top.xml", story)
    assert not same_input("https://a.example/world.xml", str(tmp_path / "story.rss"), story)
    assert same_input("https://a.example/world.xml", "https://a.example/top.xml", "http://[::1/x")  # one host
    assert same_input("https://feeds.a.example/world", "https://feeds.a.example/top", "https://www.a.example/s")


def test_two_feeds_of_one_outlet_both_update_its_story(tmp_path: Path) -> None:
    """Section feeds of one outlet list the same story: the second one's version updates it, and nothing is a
    conflict; a copycat on another host still cannot take it."""
    served: dict[str, str] = {}
    with _serving(served) as base:
        link = f"{base}/world/ferries"
        served["/top.xml"] = _rss("Harbour Times: top", [("t1", link, BODY * 8)])
        served["/world.xml"] = _rss("Harbour Times: world", [("w1", link, BODY * 8 + "Updated at noon.")])
        copycat = tmp_path / "copycat.rss"
        copycat.write_text(_rss("Copycat Daily", [("c1", link, "Invented. " * 80)]), encoding="utf-8")
        directory = tmp_path / "archive"
        assert index_paths([f"{base}/top.xml"], directory, embedder=FakeEmbedder()).added == 1
        report = index_paths([f"{base}/world.xml"], directory, embedder=FakeEmbedder())
        assert (report.updated, report.problems) == (1, [])
        (story,) = _articles(directory).values()
        assert story["body"].endswith("Updated at noon.") and story["path"] == f"{base}/world.xml"
        report = index_paths([copycat], directory, embedder=FakeEmbedder())
        assert report.updated == 0 and "belongs to" in str(report.problems[0])
        assert check(directory) == []


# Files and lines that raised instead of being one problem.


def test_a_deeply_nested_jsonl_line_is_one_problem_and_the_good_file_beside_it_is_indexed(tmp_path: Path) -> None:
    folder, directory = tmp_path / "in", tmp_path / "archive"
    folder.mkdir()
    good = json.dumps({"id": "fine", "title": "Ferries", "text": BODY})
    (folder / "deep.jsonl").write_text(f'{good}\n{"[" * 100_000}{"]" * 100_000}\n{{"n": {"9" * 5000}}}\n')
    (folder / "good.txt").write_text(f"Piers\n{BODY}\n", encoding="utf-8")
    report = index_paths([folder], directory, embedder=FakeEmbedder())
    assert sorted(_articles(directory)) == ["fine", "good"]
    assert [(p.line, p.reason) for p in report.problems] == [
        (2, "JSON nested too deeply to read"),
        (3, report.problems[1].reason),
    ]
    assert report.problems[1].reason.startswith("not JSON that can be read")


def test_a_file_name_that_is_not_utf8_is_one_problem_and_the_rest_is_read(
    tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    try:
        (folder / os.fsdecode(b"caf\xe9.txt")).write_text(f"Cafe\n{BODY}\n", encoding="utf-8")
        (folder / os.fsdecode(b"d\xe9p\xf4t")).mkdir()
        (folder / os.fsdecode(b"d\xe9p\xf4t") / "a.txt").write_text(f"A\n{BODY}\n", encoding="utf-8")
        (folder / os.fsdecode(b"d\xe9p\xf4t") / "b.txt").write_text(f"B\n{BODY}\n", encoding="utf-8")
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    (folder / "good.txt").write_text(f"Piers\n{BODY}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["index", str(folder), "-d", str(tmp_path / "archive")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped")]
    assert skipped == [
        f"skipped {folder}/caf\\xe9.txt: the file name is not valid UTF-8, so it cannot be stored: rename it",
        f"skipped {folder}/d\\xe9p\\xf4t: the folder name is not valid UTF-8, so it cannot be stored: rename it",
    ]
    assert sorted(_articles(tmp_path / "archive")) == ["good"]


@pytest.mark.parametrize(
    "published", ["9999-12-31T23:59:59-14:00", "0000-01-01", "10000-01-01", "0001-01-01T00:00:00+01:00", "9" * 30]
)
def test_a_date_that_cannot_be_stored_in_utc_is_one_problem(published: str) -> None:
    with pytest.raises(InputProblem, match="published: "):
        parse_published(published, "feed.xml", 3)


def test_dates_at_the_edges_of_what_is_stored_are_indexed_and_found(tmp_path: Path) -> None:
    lines = [
        {"id": "last", "text": BODY, "published": "9999-12-31T23:59:59+00:00"},
        {"id": "first", "text": BODY, "published": "0001-01-01T00:00:00+00:00"},
        {"id": "overflows", "text": BODY, "published": "9999-12-31T23:59:59-14:00"},
    ]
    (tmp_path / "edges.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = index_paths([tmp_path / "edges.jsonl"], tmp_path / "archive", embedder=FakeEmbedder())
    assert [(p.line, "outside the dates" in p.reason) for p in report.problems] == [(3, True)]
    assert check(tmp_path / "archive") == []
    with Snapshot(tmp_path / "archive") as snapshot:
        assert matches(snapshot, "published:9999").column("article_id").to_pylist() == ["last"]
        assert matches(snapshot, "published:..0002").column("article_id").to_pylist() == ["first"]
        assert sum(coverage(snapshot, "harbour", by="week").column("matching").to_pylist()) == 2


# Queries too big to run, and dates past the calendar.


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("archive")
    index_paths([DATED], directory, embedder=FakeEmbedder())
    return directory


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("NOT " * 30_000 + "drone", f"too long: the limit is {MAX_QUERY_CHARS:,} characters"),
        (" OR ".join(f"w{n}" for n in range(1000)), f"too long: the limit is {MAX_QUERY_CHARS:,} characters"),
        (" OR ".join(f"w{n}" for n in range(MAX_TERMS + 1)), f"{MAX_TERMS + 1} terms: the limit is {MAX_TERMS}"),
        ("NOT " * (MAX_DEPTH + 5) + "drone", f"nested {MAX_DEPTH + 5} levels deep"),
        ("NOT (" * (MAX_DEPTH + 1) + "drone" + ")" * (MAX_DEPTH + 1), f"nested {MAX_DEPTH + 1} levels deep"),
    ],
)
@pytest.mark.parametrize("command", ["search --match", "coverage"])
def test_a_query_past_a_limit_is_one_line(dated: Path, query: str, said: str, command: str) -> None:
    result = CliRunner().invoke(cli, [*command.split(), query, "-d", str(dated)])
    line = _one_line_failure(result)
    assert said in line and len(line) < 300


def test_a_year_past_9999_is_a_query_error_and_the_year_9999_is_a_query(dated: Path) -> None:
    runner = CliRunner()
    for query in ("published:9999", "published:9999-12", "published:9999-12-31", "published:2025..9999"):
        result = runner.invoke(cli, ["search", "--match", query, "-d", str(dated)])
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "11 articles match" in runner.invoke(cli, ["search", "--match", "published:2025..9999", "-d", dated]).output
    line = _one_line_failure(runner.invoke(cli, ["coverage", "published:10000", "-d", str(dated)]))
    assert "is not a date" in line


def test_a_long_or_of_words_is_one_set_for_duckdb(dated: Path) -> None:
    """Five hundred words took DuckDB half a minute as five hundred joins; as one set, they are instant."""
    words = " OR ".join(["drone", "sea", *(f"nothing{n}" for n in range(MAX_TERMS - 2))])
    with Snapshot(dated) as snapshot:
        condition = Condition(snapshot, words)
        assert condition.sql.count("IN (SELECT") == 1 and len(condition.tables) == 1
        assert set(matches(snapshot, condition).column("article_id").to_pylist()) == set(
            matches(snapshot, "drone OR sea").column("article_id").to_pylist()
        )


def test_a_question_past_its_limit_is_one_line(dated: Path, use_fake_model: FakeEmbedder) -> None:
    from indexer.retrieval.search import MAX_QUESTION_CHARS

    result = CliRunner().invoke(cli, ["search", "ferry " * MAX_QUESTION_CHARS, "-d", str(dated)])
    assert f"the limit is {MAX_QUESTION_CHARS:,}" in _one_line_failure(result)


# Nothing skipped without a word.


def test_a_saved_feed_in_a_folder_is_read_and_other_files_are_named(
    tmp_path: Path, use_fake_model: FakeEmbedder
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "article.txt").write_text(f"Piers\n{BODY}\n", encoding="utf-8")
    feed = _rss("Harbour Times", [(f"h{n}", f"https://harbour.example/{n}", BODY * 8) for n in (1, 2)])
    (folder / "feed.xml").write_text(feed, encoding="utf-8")
    (folder / "bom.xml").write_bytes(b"\xef\xbb\xbf" + _rss("BOM", [("b1", "https://b.example/1", BODY * 8)]).encode())
    styled = _rss("Styled", [("s1", "https://s.example/1", BODY * 8)]).replace(
        "?>", '?>\n<?xml-stylesheet type="text/xsl" href="/rss.xsl"?>\n<!DOCTYPE rss>\n<!-- a comment -->', 1
    )
    (folder / "styled.xml").write_text(styled, encoding="utf-8")  # as many outlets serve theirs
    (folder / "sitemap.xml").write_text('<?xml version="1.0"?><urlset><url/></urlset>', encoding="utf-8")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not an article")
    (folder / "README").write_text("what these are", encoding="utf-8")
    (folder / "article.meta.json").write_text('{"source": "Harbour"}', encoding="utf-8")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    result = CliRunner().invoke(cli, ["index", str(folder), "-d", str(tmp_path / "archive")])
    assert result.exit_code == 0, result.output
    assert "5 articles added" in result.output
    ignored = [line for line in result.output.splitlines() if line.startswith("ignored")]
    assert ignored == [
        f"ignored {folder}/README: not an article file (no suffix)",
        f"ignored {folder}/photo.jpg: not an article file (.jpg)",
        f"ignored {folder}/sitemap.xml: XML that is not an RSS or Atom feed",
    ]


def test_a_named_file_of_another_type_is_still_a_problem(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    (problem,) = read_articles([tmp_path / "photo.jpg"])
    assert isinstance(problem, InputProblem) and not isinstance(problem, Ignored)


# Properties: random queries and random JSONL lines.

_QUERY_PIECES = st.sampled_from(
    ["drone", "sea", "Black", '"black sea"', '"', "'", "(", ")", "((", "))", "AND", "OR", "NOT", "and", "or", "-",
     "--", "*", "dron*", "*x", ":", "::", "source:", "title:", "author:", "language:", "published:", "SOURCE:",
     "2025", "2025-01", "2025-01-31", "..", "0000", "9999", "10000", "99999-99", "-1", "1e9", "MQ-9", "беспилотник",
     "泽连斯基", "é", "\u0301", "\x00", "\u200b", "\ud7ff", "🚢", "\\", "%", "_", "?", "^", "$", "[", "]", "{", "}",
     "|", ".", ",", ";", " ", "\t", "\n"]
)  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_QUERY_PIECES, st.text(max_size=3)), max_size=12).map("".join))
def test_any_query_parses_and_runs_or_raises_only_the_clear_error(dated: Path, query: str) -> None:
    try:
        parse(query)
    except QueryError as error:
        assert "\n" not in str(error)
        return
    with Snapshot(dated) as snapshot:
        try:
            condition = Condition(snapshot, query)
            matches(snapshot, condition, limit=5)
            coverage(snapshot, condition, by="month")
            facets(snapshot, condition)
        except QueryError as error:
            assert "\n" not in str(error)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = st.sampled_from(["id", "title", "text", "source", "url", "published", "language", "author"])
_RECORDS = st.dictionaries(
    _FIELDS,
    _JSON
    | st.sampled_from(["9999-12-31T23:59:59-14:00", "2025-01-31", "a/b", "\ud800", "x\x00y", "", " ", "1" * 5000]),
    max_size=6,
).map(lambda record: {"text": BODY, **record} if "text" not in record else record)
_LINES = st.one_of(
    _RECORDS.map(lambda record: json.dumps(record).encode()),
    _JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=40),
    st.sampled_from(
        [b"[" * 50_000, b'{"text": "\\ud800 lone"}', b'{"text": "ok", "id": "\\udc80"}', b"\xef\xbb\xbf{}"]
    ),
)
_RUNS = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_LINES, min_size=1, max_size=6))
def test_any_jsonl_lines_are_articles_or_problems_and_leave_a_sound_archive(tmp_path: Path, lines: list) -> None:
    run = tmp_path / str(next(_RUNS))
    run.mkdir()
    path = run / "lines.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
    items = list(read_articles([path]))
    assert all(isinstance(item, (Article, InputProblem)) for item in items)
    for item in items:
        if isinstance(item, InputProblem):
            assert "\n" not in str(item) and str(item).encode()  # one printable line
    report = index_paths([path], run / "archive", embedder=FakeEmbedder())
    if (run / "archive").exists():
        assert check(run / "archive") == []
    assert report.added == sum(isinstance(item, Article) for item in items)
