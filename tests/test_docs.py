"""The docs cannot drift: their commands and SQL examples run, every command and column is documented, each
benchmark table equals its results file, the CLI reference matches ``--help``, the site builds with
``mkdocs build --strict`` (which fails on a broken link or anchor), and the README stays a short front door."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.service import keys

from .conftest import ROOT

DOCS = ROOT / "docs"
RESULTS = ROOT / "bench" / "results"
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {path.name: path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md"))}
# Written by hand; cli.md is generated from --help, so it would document every command whatever the pages say.
WRITTEN = "\n".join(text for name, text in PAGES.items() if name != "cli.md")


def _blocks(language: str, text: str = WRITTEN) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def _commands() -> list[list[str]]:
    """The pages' `sh` commands, and the README tour's but those that need its feed server (feeds, follow)."""
    commands = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and Path(words[0]).name == "newsarchive":
                commands.append(words[1:])
    for block in _blocks("console", README):
        for line in block.splitlines():
            if line.startswith("$ newsarchive "):
                words = shlex.split(line[2:], comments=True)[1:]
                if words[0] not in {"feeds", "follow"}:
                    commands.append(words)
    return commands


@pytest.fixture
def docs_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_fake_model) -> Path:
    """The docs' working directory (the repository) with the index in a temporary folder."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NEWSARCHIVE_INDEX_DIR", str(tmp_path / "archive"))
    result = CliRunner().invoke(cli, ["index", "seeds/"])
    assert result.exit_code == 0, result.output
    return tmp_path / "archive"


def test_docs_have_commands_and_sql() -> None:
    assert len(_commands()) >= 10
    assert len(_blocks("sql")) >= 3


@pytest.mark.parametrize("command", _commands(), ids=lambda words: " ".join(words)[:60])
def test_docs_command_runs(command: list[str], docs_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if command[0] == "serve":  # it would serve until stopped: check what it would serve (test_service.py serves)
        served = []
        monkeypatch.setattr("indexer.service.server.run", lambda *args: served.append(args))
        keys.create(docs_index, "docs-test", "read")  # the page creates its keys first, in another run of this test
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0 and len(served) == 1, result.output
        return
    if "--llm" in command:  # the page's endpoint is the reader's: the test's own has no answer, and says so
        from tests.chat_server import ChatServer

        server = ChatServer(lambda request: '{"answer": []}')
        command = [server.url if word.startswith("http") and before == "--llm" else word
                   for before, word in zip(["", *command], command)]  # fmt: skip
        try:
            result = CliRunner().invoke(cli, command)
        finally:
            server.close()
        assert result.exit_code == 0 and "Quoted answer: " in result.output, result.output  # the fake model's
        return
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert result.output.strip()


@pytest.mark.parametrize("query", _blocks("sql"), ids=lambda q: q.splitlines()[0][:60])
def test_docs_sql_runs_and_returns_rows(query: str, docs_index: Path) -> None:
    result = CliRunner().invoke(cli, ["sql", "--json", query])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows
    if "offsets_match" in rows[0]:
        assert all(row["offsets_match"] for row in rows)


def test_every_command_is_documented() -> None:
    for name, command in cli.commands.items():
        assert f"newsarchive {name}" in WRITTEN, f"`newsarchive {name}` is not in the docs pages"
        for sub in getattr(command, "commands", {}):
            assert f"newsarchive {name} {sub}" in WRITTEN, f"`newsarchive {name} {sub}` is not in the docs pages"


def test_schema_columns_are_documented() -> None:
    from indexer.storage import Manifest, catalog

    empty = Manifest("m", 8, "", "", 256, 0, 0, "now", "Flat")
    with catalog.connect(Path("/nowhere"), empty) as db:
        columns = db.execute(
            "SELECT column_name FROM duckdb_columns() "
            "WHERE table_name IN ('articles', 'passages', 'duplicates', 'feeds', 'feed_entries', 'alerts', "
            "'alert_matches')"
        )
        names = [row[0] for row in columns.fetchall()]
    assert len(names) == 12 + 11 + 4 + 14 + 4 + 9 + 11
    archive_page = PAGES["the-archive.md"]
    for name in names:
        assert f"`{name}`" in archive_page, f"column {name} is not documented in docs/the-archive.md"


def _table(marker: str) -> str:
    """The block between a marker pair; exactly one page holds it."""
    pattern = re.compile(rf"<!-- {marker}:start -->\n(.*?)\n<!-- {marker}:end -->", re.S)
    found = [match.group(1) for text in PAGES.values() for match in pattern.finditer(text)]
    assert len(found) == 1, f"<!-- {marker}:start --> should be on one docs page, once; found {len(found)}"
    return found[0]


@pytest.mark.parametrize(
    "name",
    [
        "answer_quality",
        "retrieval",
        "embedding",
        "search",
        "xquad",
        "alerts",
        "follow",
        "counting",
        "cluster",
        "embedding-xeon",
        "second_encoder",
        "support",
        "generated_answers",
        "api_load",
    ],
)
def test_benchmark_tables_match_their_results_files(name: str) -> None:
    script = name.removesuffix("-xeon")  # bench/embedding.py's run on an Intel Xeon has its own file and table
    spec = importlib.util.spec_from_file_location(script, ROOT / "bench" / f"{script}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    assert _table(name.replace("_", "-")) == bench.markdown_table(results)
    if name == "xquad":  # and the mixed archive's answers
        assert _table("xquad-answers") == bench.answers_table(results)
    if name == "search":  # and the comparison with the design before segments
        assert _table("segments") == bench.comparison_table(results, results["baseline"])


def test_the_verifiers_line_is_the_one_the_bench_drew() -> None:
    from indexer.answers.verify import SUPPORT

    assert json.loads((RESULTS / "support.json").read_text(encoding="utf-8"))["chosen_threshold"] == SUPPORT


def test_the_default_alert_threshold_is_the_one_the_bench_chose() -> None:
    from indexer.live.alerts import THRESHOLD

    assert json.loads((RESULTS / "alerts.json").read_text(encoding="utf-8"))["chosen_threshold"] == THRESHOLD


def test_docs_folder_holds_only_documentation() -> None:
    """Results files live in bench/results/; docs/ holds the pages, their images and nothing else."""
    stray = [
        path.relative_to(DOCS).as_posix()
        for path in DOCS.rglob("*")
        if path.is_file() and not (path.suffix == ".md" or path.parent.name == "images")
    ]
    assert not stray


def test_cli_reference_matches_help() -> None:
    from cogapp import Cog

    output = io.StringIO()
    with redirect_stdout(output), redirect_stderr(output):
        status = Cog().main(["cog", "--check", str(DOCS / "cli.md")])
    assert status == 0, f"{output.getvalue()}\ndocs/cli.md differs from --help: run .venv/bin/cog -r docs/cli.md"


def test_site_builds_strict_and_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    # A proxy that refuses every connection: a plugin that fetched anything while building would fail the build.
    nowhere = "http://127.0.0.1:9"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HTTP_PROXY": nowhere, "HTTPS_PROXY": nowhere, "NO_PROXY": ""}
    env.update({key.lower(): value for key, value in env.items() if key in {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}})
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for name in PAGES:
        page = site / ("index.html" if name == "index.md" else f"{name.removesuffix('.md')}/index.html")
        html = page.read_text(encoding="utf-8")
        # What a reader's browser loads comes from the site itself: no web fonts, scripts or styles from elsewhere.
        assert not re.search(r"<(?:script|img)[^>]* src=\"(?:https?:)?//", html), name
        assert not re.search(r"<link[^>]* href=\"(?:https?:)?//", html), name
    assert (site / "images" / "search.png").is_file() and (site / "images" / "answer.png").is_file()


def test_readme_is_a_short_front_door() -> None:
    lines = README.splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; the rest belongs in docs/"
    first_screen = "\n".join(lines[:30])
    assert "make app" in first_screen and "make test" in first_screen
    assert "|---" not in README, "tables (benchmarks above all) belong in docs/"
    assert "make docs" in README


def _anchors(markdown: str) -> set[str]:
    from markdown.extensions.toc import slugify

    return {slugify(heading, "-") for heading in re.findall(r"^#+ (.+)$", markdown, re.M)}


def test_readme_links_resolve() -> None:
    """mkdocs checks the site's links; the README is outside it, so its own links into docs/ are checked here."""
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    assert links
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README links to {link}, which is not there"
        if anchor:
            assert anchor in _anchors(target.read_text(encoding="utf-8")), f"README links to {link}: no such heading"
