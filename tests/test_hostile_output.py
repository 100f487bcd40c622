"""Output is inert: what an article, a file name or a URL parameter holds is shown, never obeyed (issue 33).

A terminal gets it without the control characters it acts on; the app renders it as text, never as Markdown, and
shows no traceback; a CSV export opens as it is in every tool.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from indexer.cli.main import cli
from indexer.config import INDEX_DIR_ENV
from indexer.errors import NewsarchiveError
from indexer.exact.export import csv_bytes
from indexer.ingest.index import index_paths
from indexer.live.alerts import add_alert, run_alerts
from indexer.terminal import inert, inert_json
from tests.conftest import ROOT, FakeEmbedder

ESC, BEL = "\x1b", "\x07"
CLEAR = f"{ESC}[2J"  # CSI: clear the screen
TITLE = f"{ESC}]0;pwned{BEL}"  # OSC 0: set the window's title
CLIPBOARD = f"{ESC}]52;c;cm0gLXJmIH4K{BEL}"  # OSC 52: write the clipboard
C1_CSI = "\x9b31m"  # C1 CSI, one byte
RLO = "\u202e"  # right-to-left override (Trojan Source)
HOSTILE = {
    "id": "hostile",
    "title": f"Drone{CLEAR} lost{TITLE} over{CLIPBOARD} the sea{C1_CSI} {RLO}today",
    "source": f"Harbour{TITLE} Times\u2066",
    "language": "en",
    "published": "2025-01-02",
    "url": "https://harbour.example/drone",
    "text": f"The drone crashed into the sea{CLEAR} after a fighter jet clipped its propeller{CLIPBOARD}. "
    f"Nobody was hurt {RLO}and{C1_CSI} the navy searched the sea for the drone's wreck.",
}
WORDS = ("Drone", "lost", "over", "the sea", "today", "Harbour", "Times", "pwned")  # still there, as text
# What a terminal acts on, written out here rather than taken from indexer.terminal.
ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
BOLD = re.compile(r"\x1b\[1m|\x1b\[0m")  # the CLI's own styling, which click.style writes


pytestmark = pytest.mark.usefixtures("clean_cli_environment")


@pytest.fixture
def hostile(tmp_path: Path, use_fake_model: FakeEmbedder) -> Path:
    """An archive of one article whose title, source and text hold terminal controls, and a lexical alert on it."""
    calm = tmp_path / "calm.txt"
    calm.write_text("Ferry timetable\nThe night ferry to the islands stops for the winter.\n", encoding="utf-8")
    directory = tmp_path / "archive"
    index_paths([calm], directory, embedder=use_fake_model)
    add_alert("wrecks", "drone wreck", directory, mode="lexical")  # before the article comes: it matches then
    source = tmp_path / "hostile.jsonl"
    source.write_text(json.dumps(HOSTILE) + "\n", encoding="utf-8")
    index_paths([source], directory, embedder=use_fake_model, run_alerts=run_alerts)
    return directory


def terminal(result: Result) -> str:
    """What reached the terminal, stdout and stderr, less the CLI's own bold; asserts nothing active is left."""
    shown = BOLD.sub("", result.output)
    assert not ACTIVE.search(shown), repr(ACTIVE.findall(shown))
    return shown


def invoke(*args: str | Path) -> Result:
    # color=True: click passes every byte on, as to a real terminal (without it, it drops CSI sequences itself).
    return CliRunner().invoke(cli, [str(arg) for arg in args], color=True)


# --- indexer.terminal -------------------------------------------------------------------------------------------


def test_inert_removes_what_a_terminal_acts_on_and_keeps_the_words() -> None:
    assert inert(HOSTILE["title"]) == "Drone[2J lost]0;pwned over]52;c;cm0gLXJmIH4K the sea31m today"
    assert inert("a\x00b\x08c\x0bd\x0ce\rf\x7fg\x80h\x9fi\u202aj\u202dk\u2066l\u2069m") == "abcdefghijklm"
    kept = "line one\n\tline two: città, Москва, القاهرة \u200f, 東京, 🚁 — “quoted” ¶ 7 \xa0 ¡olé!"
    assert inert(kept) == kept


@given(st.text())
def test_inert_leaves_nothing_active_and_only_removes(text: str) -> None:
    cleaned = inert(text)
    assert not ACTIVE.search(cleaned)
    assert cleaned == ACTIVE.sub("", text) and inert(cleaned) == cleaned


@given(
    st.recursive(
        st.text() | st.integers() | st.none(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)
    )
)
def test_inert_json_is_the_same_data_with_nothing_active(value: object) -> None:
    written = inert_json(value, indent=2)
    assert json.loads(written) == value
    assert not ACTIVE.search(written)


# --- the command line (finding 10) ------------------------------------------------------------------------------


def test_search_and_ask_show_hostile_articles_as_text(hostile: Path) -> None:
    for args in (
        ["search", "drone crashed into the sea"],
        ["search", "--mode", "lexical", "drone"],
        ["search", "--match", "drone"],
        ["ask", "why did the drone crash into the sea"],
    ):
        result = invoke(*args, "-d", hostile)
        assert result.exit_code == 0, result.output
        shown = terminal(result)
        assert all(word in shown for word in WORDS[:6]), (args, shown)
    answered = terminal(invoke("ask", "why did the drone crash into the sea", "-d", hostile))
    assert "[1]" in answered and "the navy searched" in answered


def test_json_output_is_the_same_data_with_nothing_active(hostile: Path) -> None:
    for args in (["search", "--json", "drone"], ["search", "--match", "--json", "drone"], ["ask", "--json", "drone"]):
        result = invoke(*args, "-d", hostile)
        assert result.exit_code == 0, result.output
        assert not ACTIVE.search(result.output), args
    matched = json.loads(invoke("search", "--match", "--json", "drone", "-d", hostile).output)
    assert matched["matches"][0]["title"] == HOSTILE["title"]  # faithful: JSON is data


def test_sql_shows_hostile_text_as_text(hostile: Path) -> None:
    table = invoke("sql", "SELECT title, source FROM articles", "-d", hostile)  # DuckDB's own table display
    assert table.exit_code == 0, table.output
    assert "Harbour" in terminal(table) and "today" in terminal(table)
    rows = invoke("sql", "SELECT title FROM articles WHERE article_id = 'hostile'", "--json", "-d", hostile)
    assert not ACTIVE.search(rows.output) and json.loads(rows.output) == [{"title": HOSTILE["title"]}]


def test_coverage_and_alerts_show_hostile_text_as_text(hostile: Path) -> None:
    coverage = invoke("coverage", "drone", "--by-source", "-d", hostile)
    assert coverage.exit_code == 0, coverage.output
    assert "Harbour]0;pwned Times" in terminal(coverage)
    shown = invoke("alerts", "show", "wrecks", "-d", hostile)
    assert shown.exit_code == 0, shown.output
    assert "Drone[2J lost]0;pwned" in terminal(shown) and "navy searched" in terminal(shown)
    listing = invoke("alerts", "list", "-d", hostile)
    assert "wrecks" in terminal(listing)


def test_a_hostile_file_name_and_an_error_message_reach_the_terminal_as_text(
    tmp_path: Path, use_fake_model: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / f"evil{TITLE}name{RLO}{C1_CSI}.jsonl").write_text("not json\n", encoding="utf-8")
    (folder / "good.jsonl").write_text(json.dumps(HOSTILE) + "\n", encoding="utf-8")
    result = invoke("index", folder, "-d", tmp_path / "archive")
    assert result.exit_code == 1, result.output
    shown = terminal(result)
    assert "skipped" in shown and "evil]0;pwnedname31m.jsonl" in shown

    def refused(*args: object) -> None:  # an error that quotes an article as it is
        raise NewsarchiveError(f"cannot remove {HOSTILE['title']}")

    monkeypatch.setattr("indexer.ingest.index.remove_articles", refused)
    failed = invoke("remove", "hostile", "-d", tmp_path / "archive")
    assert failed.exit_code == 1 and "Error: cannot remove Drone[2J lost]0;pwned" in terminal(failed)


def test_every_line_the_cli_prints_goes_through_one_function() -> None:
    """indexer/cli/ calls click.echo in two places: echo, for people (inert), and emit, for data (JSON, CSV)."""
    modules = sorted((ROOT / "indexer" / "cli").glob("*.py"))
    tree = ast.Module([node for path in modules for node in ast.parse(path.read_text(encoding="utf-8")).body], [])
    callers = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef):
            for node in ast.walk(function):
                clicked = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                if clicked and node.value.id == "click" and node.attr in {"echo", "style", "secho"}:
                    callers.add(function.name)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                    callers.add(function.name)
    assert callers == {"echo", "emit"}


# --- the app (finding 11) ---------------------------------------------------------------------------------------

APP = str(ROOT / "search_app" / "streamlit_app.py")
DATED = ROOT / "tests" / "fixtures" / "dated" / "articles.jsonl"
LINK = "[x](https://evil.example/)![b](https://evil.example/b.png)"
MARKDOWN_ELEMENTS = ("markdown", "caption", "error", "info", "warning", "success", "exception", "title", "header")


@pytest.fixture
def dated(tmp_path: Path, use_fake_model: FakeEmbedder, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "dated"
    index_paths([DATED], directory, embedder=use_fake_model)
    monkeypatch.setenv(INDEX_DIR_ENV, str(directory))
    return directory


def explore(query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.query_params["q"] = query
    app.switch_page("explore_view.py").run()
    return app


def markdown_shown(app: AppTest) -> str:
    """Every string the page renders as Markdown: elements' bodies and labels."""
    values = [str(element.value) for kind in MARKDOWN_ELEMENTS for element in app.get(kind)]
    labels = [element.label for element in app.get("expander")]
    return "\n".join(values + labels)


def errors(app: AppTest) -> list[str]:
    """The messages of the page's error boxes, as the reader sees them."""
    import html

    boxes = [element.proto.body for element in app.html if 'class="na-error"' in element.proto.body]
    return [html.unescape(re.sub(r"<[^>]+>", "", box)) for box in boxes]


def test_a_malformed_query_in_the_url_is_shown_as_text(dated: Path) -> None:
    app = explore(f"{LINK} drone (")
    assert not app.exception, app.exception
    assert "evil.example" not in markdown_shown(app)
    (message,) = errors(app)
    assert LINK in message and "never closed" in message  # the reader sees the query, characters and all
    body = next(element.proto.body for element in app.html if "na-error" in element.proto.body)
    assert "<a" not in body and "<img" not in body


def test_an_out_of_range_date_in_the_url_shows_no_traceback(dated: Path) -> None:
    app = explore("published:9999")
    assert not app.exception, app.exception  # counted (nothing matches), or one line saying what is wrong
    page = markdown_shown(app) + "".join(element.proto.body for element in app.html)
    assert "Traceback" not in page and 'File "' not in page and len(errors(app)) <= 1


def test_an_unexpected_failure_is_one_line_and_its_details_stay_on_the_server(
    dated: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import search_app.explore

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("/srv/secret/path.py exploded")

    monkeypatch.setattr(search_app.explore, "coverage", broken)
    app = explore("drone")
    assert not app.exception, app.exception
    assert errors(app) == [
        "Counting this query failed because of an unexpected error; the server's log has the details."
    ]
    assert "secret" not in markdown_shown(app) + "".join(element.proto.body for element in app.html)
    assert "/srv/secret/path.py exploded" in caplog.text


def test_the_streamlit_config_hides_error_details() -> None:
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "none"


def test_an_alert_named_and_worded_in_markdown_shows_as_text(dated: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    from search_app.plain import label

    rich = "**loud** [click](evil.example) ![b](b.png) `code` :red[alarm] $x^2$ <i>i</i> # 1. - > ~~s~~"
    tokens = markdown_it.MarkdownIt("commonmark").parseInline(label(rich))[0].children
    assert {token.type for token in tokens} == {"text"} and "".join(token.content for token in tokens) == rich
    name = "__loud__.1._x_"  # Markdown's bold and italics, within the characters a name may hold
    add_alert(name, f"drone {LINK} <b>bold</b>", dated, mode="lexical")
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception, app.exception
    (expander,) = app.sidebar.expander
    tokens = markdown_it.MarkdownIt("commonmark").parseInline(expander.label)[0].children
    assert {token.type for token in tokens} == {"text"}  # no link, image, emphasis or code
    assert "".join(token.content for token in tokens) == f"{name} · 0 matches"
    assert "evil.example" not in markdown_shown(app).replace(expander.label, "")
    watched = next(element.proto.body for element in app.html if "Watching for" in element.proto.body)
    assert "[x](https://evil.example/)" in watched and "&lt;b&gt;bold&lt;/b&gt;" in watched and "<a" not in watched


# --- CSV (finding 14) -------------------------------------------------------------------------------------------


def test_csv_exports_are_plain_csv_with_a_header_row(dated: Path) -> None:
    pandas = pytest.importorskip("pandas")
    for args, header in (
        (["coverage", "drone", "--by", "month", "--csv"], ["period", "matching", "total", "share"]),
        (["search", "--match", "drone", "--csv"], None),
    ):
        result = CliRunner().invoke(cli, [*args, "-d", str(dated)])
        assert result.exit_code == 0, result.output
        rows = list(csv.reader(io.StringIO(result.output)))
        assert header is None or rows[0] == header
        assert "article_id" in rows[0] or header
        frame = pandas.read_csv(io.StringIO(result.output))
        assert list(frame.columns) == rows[0] and len(frame) == len(rows) - 1 > 0
        path = dated.parent / "export.csv"
        path.write_text(result.output, encoding="utf-8")
        assert duckdb.sql(f"SELECT * FROM read_csv('{path}')").columns == rows[0]


def test_csv_bytes_holds_the_table_and_nothing_else() -> None:
    import pyarrow as pa

    table = pa.table({"title": [HOSTILE["title"], "# not a comment"], "count": [1, 2]})
    rows = list(csv.reader(io.StringIO(csv_bytes(table).decode())))
    assert rows == [["title", "count"], [HOSTILE["title"], "1"], ["# not a comment", "2"]]  # data stays faithful


def test_data_printed_on_a_terminal_is_inert_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """CSV and JSON stay faithful in a file or a pipe; on a terminal a person reads them, so they are inert."""
    import io
    import sys

    from indexer.cli.common import emit

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    row = "title\r\n\x1b]52;c;cHduZWQ=\x07Drone\r\n"
    for stream, expected in ((io.StringIO(), row), (Terminal(), "title\n]52;c;cHduZWQ=Drone\n")):
        monkeypatch.setattr(sys, "stdout", stream)
        emit(row, nl=False)
        assert stream.getvalue() == expected


def test_an_absurd_time_limit_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sql", "--timeout", "1e10", "SELECT 1", "-d", str(tmp_path)])
    assert result.exit_code == 2 and "86400" in result.output.replace(",", "") and "Traceback" not in result.output
