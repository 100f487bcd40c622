"""The README's commands and SQL examples run, and say what the code does."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.cli import cli

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def _commands() -> list[list[str]]:
    commands = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and Path(words[0]).name == "newsarchive":
                commands.append(words[1:])
    return commands


@pytest.fixture
def readme_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_fake_model) -> Path:
    """The README's working directory (the repository) with the index in a temporary folder."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NEWSARCHIVE_INDEX_DIR", str(tmp_path / "archive"))
    result = CliRunner().invoke(cli, ["index", "seeds/"])
    assert result.exit_code == 0, result.output
    return tmp_path / "archive"


def test_readme_has_commands_and_sql() -> None:
    assert len(_commands()) >= 6
    assert len(_blocks("sql")) >= 3


@pytest.mark.parametrize("command", _commands(), ids=lambda words: " ".join(words)[:60])
def test_readme_command_runs(command: list[str], readme_index: Path) -> None:
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert result.output.strip()


@pytest.mark.parametrize("query", _blocks("sql"), ids=lambda q: q.splitlines()[0][:60])
def test_readme_sql_runs_and_returns_rows(query: str, readme_index: Path) -> None:
    result = CliRunner().invoke(cli, ["sql", "--json", query])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows
    if "offsets_match" in rows[0]:
        assert all(row["offsets_match"] for row in rows)


def test_every_command_is_documented() -> None:
    for name in cli.commands:
        assert f"newsarchive {name}" in README, f"`newsarchive {name}` is not in the README"


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
    for name in names:
        assert f"`{name}`" in README, f"column {name} is not documented in the README"


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
    ],
)
def test_benchmark_tables_match_their_results_files(name: str) -> None:
    import importlib.util

    script = name.removesuffix("-xeon")  # bench/embedding.py's run on an Intel Xeon has its own file and table
    spec = importlib.util.spec_from_file_location(script, ROOT / "bench" / f"{script}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = json.loads((ROOT / "docs" / f"{name}.json").read_text(encoding="utf-8"))
    marker = name.replace("_", "-")
    block = re.search(rf"<!-- {marker}:start -->\n(.*?)\n<!-- {marker}:end -->", README, re.S).group(1)
    assert block == bench.markdown_table(results)
    if name == "xquad":  # and the mixed archive's answers
        block = re.search(r"<!-- xquad-answers:start -->\n(.*?)\n<!-- xquad-answers:end -->", README, re.S).group(1)
        assert block == bench.answers_table(results)
    if name == "search":  # and the comparison with the design before segments
        block = re.search(r"<!-- segments:start -->\n(.*?)\n<!-- segments:end -->", README, re.S).group(1)
        assert block == bench.comparison_table(results, results["baseline"])


def test_the_default_alert_threshold_is_the_one_the_bench_chose() -> None:
    from indexer.live.alerts import THRESHOLD

    assert json.loads((ROOT / "docs" / "alerts.json").read_text(encoding="utf-8"))["chosen_threshold"] == THRESHOLD
