"""Alerts: saved searches run on the articles each commit adds, each match recorded once, shown and written as Atom."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import feedparser
import pytest
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.ingest.index import index_paths
from indexer.live import atom
from indexer.live.alerts import add_alert, listed, matches_of, remove_alert, run_alerts
from tests.conftest import FakeEmbedder

FERRY = "The harbour ferry timetable changes on Monday, and the night ferry to the islands stops for the winter."
FERRY_AGAIN = "A second ferry timetable for the harbour: the night ferry to the islands runs again from April."
MARKETS = "Shares fell sharply in early trading as investors worried about rising interest rates and inflation."


def _write(folder: Path, name: str, text: str, url: str | None = None) -> None:
    meta = f"---\nurl: {url}\nsource: Harbour News\n---\n" if url else ""
    (folder / f"{name}.md").write_text(f"{meta}# {name.title()}\n\n{text}\n", encoding="utf-8")


@pytest.fixture
def archive(tmp_path: Path, use_fake_model: FakeEmbedder) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    _write(folder, "old-ferry", FERRY)  # indexed before the alerts: never theirs
    index_paths([folder], tmp_path / "archive", embedder=use_fake_model)
    return tmp_path / "archive"


def test_an_alert_matches_each_new_article_once(archive: Path, use_fake_model: FakeEmbedder) -> None:
    folder = archive.parent / "in"
    add_alert("ferries", "ferry timetable", archive, mode="lexical")
    add_alert("boats", "night ferry to the islands", archive)  # dense
    _write(folder, "ferry", FERRY_AGAIN, url="https://harbour.example/ferry")
    _write(folder, "markets", MARKETS)
    report = index_paths([folder], archive, embedder=use_fake_model, run_alerts=run_alerts)
    assert sorted((m.alert, m.article_id) for m in report.matches) == [("boats", "ferry"), ("ferries", "ferry")]
    (match,) = matches_of("ferries", archive)
    assert (match.title, match.url, match.source) == ("Ferry", "https://harbour.example/ferry", "Harbour News")
    assert match.passage == FERRY_AGAIN
    assert match.margin >= 0 and matches_of("boats", archive)[0].margin >= 0.03

    _write(folder, "ferry", FERRY_AGAIN + " Tickets cost more.", url="https://harbour.example/ferry")
    again = index_paths([folder], archive, embedder=use_fake_model, run_alerts=run_alerts)
    assert again.updated == 1 and again.matches == []  # updated: still one match
    assert [(alert.name, count) for alert, count in listed(archive)] == [("ferries", 1), ("boats", 1)]
    with duckdb.connect(str(archive / "archive.duckdb"), read_only=True) as db:
        assert db.execute("SELECT alert, article_id FROM alert_matches ORDER BY 1").fetchall() == [
            ("boats", "ferry"),
            ("ferries", "ferry"),
        ]
        assert db.execute("SELECT name, mode FROM alerts ORDER BY 1").fetchall() == [
            ("boats", "dense"),
            ("ferries", "lexical"),
        ]

    feed = feedparser.parse(atom.path(archive, "ferries").read_bytes())
    assert not feed.bozo and feed.feed.title == "newsarchive alert ferries: ferry timetable"
    (entry,) = feed.entries
    assert entry.id == "urn:newsarchive:alert:ferries:ferry" and entry.link == "https://harbour.example/ferry"
    assert entry.title == "Ferry" and FERRY_AGAIN in entry.summary and entry.updated_parsed

    remove_alert("ferries", archive)
    assert [alert.name for alert, _ in listed(archive)] == ["boats"] and not atom.path(archive, "ferries").exists()


def test_a_lexical_alert_needs_every_word_and_filters_narrow_it(archive: Path, use_fake_model: FakeEmbedder) -> None:
    folder = archive.parent / "in"
    add_alert("all-words", "ferry winter islands", archive, mode="lexical")
    add_alert("elsewhere", "ferry timetable", archive, mode="lexical", sources=("Other Paper",))
    _write(folder, "some-words", "The ferry left early this morning.")
    _write(folder, "every-word", FERRY.replace("harbour ", ""))
    report = index_paths([folder], archive, embedder=use_fake_model, run_alerts=run_alerts)
    assert [(m.alert, m.article_id) for m in report.matches] == [("all-words", "every-word")]


def test_alerts_from_the_command_line(archive: Path, use_fake_model: FakeEmbedder) -> None:
    runner = CliRunner()
    d = ["-d", str(archive)]
    added = runner.invoke(cli, ["alerts", "add", "ferries", "ferry", "timetable", "--mode", "lexical", *d])
    assert added.exit_code == 0 and "'ferry timetable'" in added.output
    taken = runner.invoke(cli, ["alerts", "add", "ferries", "anything", *d])
    assert taken.exit_code == 1 and "already" in taken.output
    folder = archive.parent / "in"
    _write(folder, "ferry", FERRY_AGAIN)
    indexed = runner.invoke(cli, ["index", str(folder), *d])
    assert indexed.exit_code == 0 and "alert ferries: Ferry (ferry)" in indexed.output
    listing = runner.invoke(cli, ["alerts", "list", *d]).output
    assert "ferries: 'ferry timetable' (lexical); 1 match" in listing and "every word" in listing
    shown = json.loads(runner.invoke(cli, ["alerts", "show", "ferries", "--json", *d]).output)
    assert [(m["article_id"], m["passage"]) for m in shown] == [("ferry", FERRY_AGAIN)]
    assert "night ferry" in runner.invoke(cli, ["alerts", "show", "ferries", *d]).output
    assert runner.invoke(cli, ["alerts", "remove", "ferries", *d]).exit_code == 0
    missing = runner.invoke(cli, ["alerts", "show", "ferries", *d])
    assert missing.exit_code == 1 and "no alert named 'ferries'" in missing.output


def test_the_app_shows_each_alert_with_its_latest_matches(
    archive: Path, use_fake_model: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    folder = archive.parent / "in"
    add_alert("ferries", "ferry timetable", archive, mode="lexical")
    _write(folder, "ferry", FERRY_AGAIN + " <b>Not markup</b>", url="https://harbour.example/ferry")
    index_paths([folder], archive, embedder=use_fake_model, run_alerts=run_alerts)
    monkeypatch.setenv("NEWSARCHIVE_INDEX_DIR", str(archive))
    app = AppTest.from_file(str(ROOT / "search_app" / "streamlit_app.py"), default_timeout=60).run()
    assert not app.exception, app.exception
    assert [expander.label for expander in app.sidebar.expander] == ["ferries · 1 match"]
    shown = "\n".join(element.proto.body for element in app.html)
    assert "<a href='https://harbour.example/ferry'>Ferry</a>" in shown
    assert "&lt;b&gt;Not markup&lt;/b&gt;" in shown and "<b>Not markup</b>" not in shown


def test_new_matches_are_posted_to_a_webhook_and_a_dead_one_is_logged(
    archive: Path, use_fake_model: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import http.server
    import threading

    from indexer.reading import fetching

    received: list[dict] = []
    calls = {"/hook": 0, "/dead": 0}

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 -- http.server's name
            calls[self.path] += 1
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            ok = self.path == "/hook" and calls["/hook"] > 1  # the first attempt fails: it is tried again
            if ok:
                received.append(body)
            self.send_response(200 if ok else 500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(fetching, "RETRY_WAIT", 0.01)
    add_alert("ferries", "ferry timetable", archive, mode="lexical", webhook=f"{base}/hook")
    add_alert("dead", "ferry timetable", archive, mode="lexical", webhook=f"{base}/dead")
    with pytest.raises(Exception, match="webhook"):
        add_alert("bad", "ferry", archive, webhook="mailto:someone@example.org")
    folder = archive.parent / "in"
    _write(folder, "ferry", FERRY_AGAIN)
    report = index_paths([folder], archive, embedder=use_fake_model, run_alerts=run_alerts)
    server.shutdown()
    assert len(report.matches) == 2 and calls == {"/hook": 2, "/dead": 3}
    ((payload),) = received
    assert payload["alert"] == "ferries" and [m["article_id"] for m in payload["matches"]] == ["ferry"]
    assert payload["matches"][0]["passage"] == FERRY_AGAIN
    assert "alert dead: its webhook failed (1 matches not delivered)" in caplog.text
    assert [m.article_id for m in matches_of("dead", archive)] == ["ferry"]  # recorded all the same
