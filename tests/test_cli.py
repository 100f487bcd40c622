"""The ``newsarchive`` command line, run in-process with the fake embedder standing in for the model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from indexer.cli.main import cli
from indexer.config import INDEX_DIR_ENV
from indexer.ingest.index import index_paths
from indexer.storage import Manifest
from indexer.storage.layout import size
from tests.conftest import ROOT, SEED, SEEDS, FakeEmbedder, assert_clean_failure

HIT_KEYS = {
    "rank",
    "score",
    "similarity",
    "passage_id",
    "article_id",
    "title",
    "heading",
    "text",
    "char_start",
    "char_end",
    "source",
    "published",
    "url",
    "paragraph",
    "language",
    "story_id",
    "also_in",
}


pytestmark = pytest.mark.usefixtures("clean_cli_environment")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds indexed once with the fake embedder, for commands that only read."""
    directory = tmp_path_factory.mktemp("cli") / "index"
    index_paths([SEEDS], directory, embedder=FakeEmbedder())
    return directory


def run(runner: CliRunner, *args: str | Path) -> Result:
    return runner.invoke(cli, [str(arg) for arg in args])


def search_json(runner: CliRunner, *args: str | Path) -> dict:
    result = run(runner, "search", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# index


def test_index_then_reindex(runner: CliRunner, use_fake_model: FakeEmbedder, tmp_path: Path) -> None:
    directory = tmp_path / "idx"
    first = run(runner, "index", SEEDS, "--index-dir", directory)
    assert first.exit_code == 0, first.output
    assert "1 article added, 0 updated, 0 unchanged, 0 removed; 17 passages embedded" in first.stdout
    assert "now holds 1 article in 17 passages" in first.stdout
    assert (directory / "manifest.json").exists()
    second = run(runner, "index", SEEDS, "-d", directory)
    assert second.exit_code == 0, second.output
    assert "0 articles added, 0 updated, 1 unchanged, 0 removed; 0 passages embedded" in second.stdout
    assert "now holds 1 article in 17 passages" in second.stdout
    assert len(use_fake_model.batches) == 1


def test_index_with_a_bad_file(runner: CliRunner, use_fake_model: FakeEmbedder, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "good.txt").write_text("Volcano erupts\nAsh covered the island of Stromboli.\n", encoding="utf-8")
    (inputs / "broken.txt").write_bytes(b"\x00\x01binary")
    directory = tmp_path / "idx"
    result = run(runner, "index", inputs, "-d", directory)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"skipped {inputs / 'broken.txt'}: binary file" in result.stderr
    assert "good.txt" not in result.stderr
    assert "1 article added" in result.stdout
    hits = search_json(runner, "Stromboli", "ash", "-d", directory)["hits"]
    assert hits[0]["article_id"] == "good"


def test_index_passes_the_backend_on_and_records_it(
    runner: CliRunner, use_fake_model: FakeEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(runner, "index", SEED, "-d", tmp_path / "i", "--backend", "openvino")
    assert result.exit_code == 0, result.output
    assert use_fake_model.asked_backend == "openvino"
    monkeypatch.setenv("NEWSARCHIVE_BACKEND", "onnx")
    result = run(runner, "index", SEED, "-d", tmp_path / "j")
    assert use_fake_model.asked_backend == "onnx"
    details = json.loads(run(runner, "info", "--json", "-d", tmp_path / "j").output)
    assert details["backend"] == "fake"  # what embedded the passages
    assert details["backend_here"] == "onnx ($NEWSARCHIVE_BACKEND)"  # what a search here would run on


def test_a_missing_package_is_one_line(
    runner: CliRunner, use_fake_model: FakeEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # as if the install left it out
    result = run(runner, "index", ROOT / "tests" / "fixtures" / "web" / "corriere-drone.html", "-d", tmp_path / "i")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "trafilatura" in result.stderr and "pip install newsarchive" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "i" / "manifest.json").exists()


def test_index_dir_from_environment(
    runner: CliRunner, use_fake_model: FakeEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "from-env"
    monkeypatch.setenv(INDEX_DIR_ENV, str(directory))
    assert run(runner, "index", SEEDS).exit_code == 0
    assert (directory / "manifest.json").exists()
    assert not (tmp_path / "archive").exists()
    info = json.loads(run(runner, "info", "--json").stdout)
    assert (info["index_dir"], info["passages"]) == (str(directory), 17)
    assert search_json(runner, "drone")["hits"]
    sql = run(runner, "sql", "SELECT count(*) AS n FROM articles", "--json")
    assert json.loads(sql.stdout) == [{"n": 1}]


# search


def test_search_json(runner: CliRunner, use_fake_model: FakeEmbedder, seed_index: Path) -> None:
    data = search_json(runner, "drone", "MQ-9", "Breacher", "Mar", "Nero", "-d", seed_index)
    assert set(data) == {"query", "mode", "hits"}
    assert data["mode"] == "hybrid"
    assert data["query"] == "drone MQ-9 Breacher Mar Nero"
    hits = data["hits"]
    assert len(hits) == 5  # the default -k
    assert all(set(hit) == HIT_KEYS for hit in hits)
    assert [hit["rank"] for hit in hits] == [1, 2, 3, 4, 5]
    assert "MQ-9 Breacher" in hits[0]["text"]
    assert all(hit["article_id"] == SEED.stem for hit in hits)
    assert all(hit["char_end"] > hit["char_start"] for hit in hits)
    assert len(search_json(runner, "-k", "2", "drone", "-d", seed_index)["hits"]) == 2


def test_search_text_output(runner: CliRunner, use_fake_model: FakeEmbedder, seed_index: Path) -> None:
    result = run(runner, "search", "drone MQ-9 Breacher Mar Nero", "-k", "1", "-d", seed_index)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1. [")
    assert "¶ 7" in result.stdout  # the drone paragraph is the seed's seventh
    assert "Breacher" in result.stdout


def test_search_modes(runner: CliRunner, use_fake_model: FakeEmbedder, seed_index: Path) -> None:
    lexical = search_json(runner, "--mode", "lexical", "MQ-9", "-d", seed_index)
    assert lexical["mode"] == "lexical" and len(lexical["hits"]) == 1
    assert lexical["hits"][0]["similarity"] is None and "MQ-9" in lexical["hits"][0]["text"]
    dense = search_json(runner, "--mode", "dense", "MQ-9", "-d", seed_index)
    assert len(dense["hits"]) == 5 and all(hit["score"] == hit["similarity"] for hit in dense["hits"])
    assert "Invalid value for '--mode'" in run(runner, "search", "--mode", "fuzzy", "x", "-d", seed_index).output


def test_sql_search_passages_is_the_search_api(
    runner: CliRunner, use_fake_model: FakeEmbedder, seed_index: Path
) -> None:
    for mode in ("hybrid", "dense", "lexical"):
        hits = search_json(runner, "--mode", mode, "-k", "3", "drone Mar Nero", "-d", seed_index)["hits"]
        query = f"SELECT passage_id, score FROM search_passages('drone Mar Nero', k := 3, mode := '{mode}')"
        result = run(runner, "sql", "--json", query, "-d", seed_index)
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert [row["passage_id"] for row in rows] == [hit["passage_id"] for hit in hits]
        assert [row["score"] for row in rows] == pytest.approx([hit["score"] for hit in hits])


def test_search_without_index(runner: CliRunner, use_fake_model: FakeEmbedder, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    message = assert_clean_failure(run(runner, "search", "drone", "-d", missing))
    assert str(missing) in message and "newsarchive index" in message


def test_search_with_other_model(runner: CliRunner, use_fake_model: FakeEmbedder, seed_index: Path) -> None:
    message = assert_clean_failure(run(runner, "search", "drone", "-d", seed_index, "--model", "other"))
    assert "fake-hash" in message and "other" in message


# sql


def test_sql_formats(runner: CliRunner, seed_index: Path) -> None:
    query = "SELECT count(*) AS n FROM passages"
    as_json = run(runner, "sql", query, "--json", "-d", seed_index)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [{"n": 17}]
    as_csv = run(runner, "sql", query, "--csv", "-d", seed_index)
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.stdout.splitlines() == ["n", "17"]
    table = run(runner, "sql", query, "-d", seed_index)
    assert table.exit_code == 0, table.output
    assert "17" in table.stdout and "n" in table.stdout


def test_sql_json_handles_dates_and_nulls(runner: CliRunner, seed_index: Path) -> None:
    result = run(runner, "sql", "SELECT article_id, published, indexed_at FROM articles", "--json", "-d", seed_index)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["published"] is None
    assert datetime.fromisoformat(row["indexed_at"]).tzinfo is not None


def test_sql_refuses_writes(runner: CliRunner, tmp_path: Path) -> None:
    directory = tmp_path / "idx"
    index_paths([SEEDS], directory, embedder=FakeEmbedder())
    message = assert_clean_failure(run(runner, "sql", "DELETE FROM passages", "-d", directory))
    assert "read-only" in message
    after = run(runner, "sql", "SELECT count(*) AS n FROM passages", "--json", "-d", directory)
    assert json.loads(after.stdout) == [{"n": 17}]


def test_sql_write_changes_metadata_in_a_new_commit(runner: CliRunner, tmp_path: Path) -> None:
    from indexer.storage.check import check

    directory = tmp_path / "idx"
    index_paths([SEEDS], directory, embedder=FakeEmbedder())
    before = Manifest.load(directory)
    update = "UPDATE articles SET source = 'Agenzia Nova' RETURNING article_id"
    result = run(runner, "sql", "--write", "--json", update, "-d", directory)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"article_id": SEED.stem}]
    after = Manifest.load(directory)
    assert after.commit == before.commit + 1 and after.passages == before.passages
    assert after.next_passage_id == before.next_passage_id  # the passages kept their ids: nothing was embedded
    assert check(directory) == []
    rows = run(runner, "sql", "--json", "SELECT DISTINCT source FROM articles", "-d", directory)
    assert json.loads(rows.stdout) == [{"source": "Agenzia Nova"}]
    # Deleting some of an article's passages writes it again with the others, vectors and all.
    result = run(runner, "sql", "--write", "DELETE FROM passages WHERE seq > 3", "-d", directory)
    assert result.exit_code == 0, result.output
    assert Manifest.load(directory).passages == 4 and check(directory) == []


def test_sql_write_refuses_what_would_break_the_index(runner: CliRunner, tmp_path: Path) -> None:
    directory = tmp_path / "idx"
    index_paths([SEEDS], directory, embedder=FakeEmbedder())
    before = Manifest.load(directory)
    message = assert_clean_failure(run(runner, "sql", "--write", "DELETE FROM articles", "-d", directory))
    assert "not written" in message and "17 passages belong to no article" in message
    assert assert_clean_failure(run(runner, "sql", "--write", "DROP TABLE nope", "-d", directory))
    assert Manifest.load(directory) == before
    assert not [p for p in (directory / "segments").iterdir() if p.name.startswith(".staging")]


@pytest.mark.parametrize("query", ["SELEC 1", "SELECT nope FROM passages", "SELECT * FROM missing_table"])
def test_sql_invalid_query(runner: CliRunner, seed_index: Path, query: str) -> None:
    assert_clean_failure(run(runner, "sql", query, "-d", seed_index))


@pytest.mark.parametrize("fmt", ["--json", "--csv", None])
def test_sql_error_while_running_query(runner: CliRunner, seed_index: Path, fmt: str | None) -> None:
    args = ["sql", "SELECT CAST(text AS INTEGER) FROM passages", "-d", seed_index]
    assert_clean_failure(run(runner, *args, *([fmt] if fmt else [])))


def test_sql_without_index(runner: CliRunner, tmp_path: Path) -> None:
    message = assert_clean_failure(run(runner, "sql", "SELECT 1", "-d", tmp_path / "none"))
    assert str(tmp_path / "none") in message


# info


def test_info_json(runner: CliRunner, seed_index: Path) -> None:
    result = run(runner, "info", "--json", "-d", seed_index)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert {"model", "dimension", "articles", "passages", "built_at", "size_bytes"} <= set(info)
    assert (info["model"], info["dimension"], info["articles"], info["passages"]) == ("fake-hash", 64, 1, 17)
    assert info["size_bytes"] == size(seed_index) > 0
    assert (info["index_type"], info["vector_index"], info["segments"]) == ("Flat", "auto", 1)
    assert info["vectors_bytes"] == 17 * 64 * 4  # an exact segment holds its float32 vectors
    assert 0 < info["lexical_bytes"] < info["size_bytes"]
    assert (info["stories"], info["duplicates"]) == (1, 0)
    assert datetime.fromisoformat(info["built_at"]).tzinfo is not None


def test_info_text(runner: CliRunner, seed_index: Path) -> None:
    result = run(runner, "info", "-d", seed_index)
    assert result.exit_code == 0, result.output
    assert "fake-hash" in result.stdout and "query_prompt:   'q: '" in result.stdout
    assert "index_type:     Flat" in result.stdout and re.search(r"vectors:\s+[\d.]+ MB", result.stdout)


def test_index_with_a_vector_index_faiss_cannot_parse(
    runner: CliRunner, use_fake_model: FakeEmbedder, tmp_path: Path
) -> None:
    message = assert_clean_failure(run(runner, "index", SEED, "-d", tmp_path / "x", "--vector-index", "Flat99x"))
    assert "Flat99x" in message and "could not parse" in message
    assert use_fake_model.batches == []  # refused before anything was embedded


def test_info_without_index(runner: CliRunner, tmp_path: Path) -> None:
    assert "newsarchive index" in assert_clean_failure(run(runner, "info", "-d", tmp_path / "none"))


# help


def test_the_core_commands_exist() -> None:
    assert {"index", "search", "sql", "info"} <= set(cli.commands)


@pytest.mark.parametrize("command", [[], *([name] for name in sorted(cli.commands))], ids=lambda c: c[0] if c else "")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(runner: CliRunner, command: list[str], flag: str) -> None:
    result = run(runner, *command, flag)
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert "Usage:" in result.stdout


# Heavy imports: --help and sql must start without torch.

_PROBE = """
import sys
from indexer.cli.main import cli
code = None
try:
    cli(sys.argv[1:], prog_name="newsarchive")
except SystemExit as exit:
    code = exit.code
print("EXIT", code)
print("LOADED", "torch" in sys.modules, "sentence_transformers" in sys.modules)
"""


def probe(*args: str | Path) -> tuple[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    return result.stdout, lines[-2:]


def test_help_does_not_import_torch() -> None:
    output, tail = probe("--help")
    assert "Example" in output
    assert tail == ["EXIT 0", "LOADED False False"]


def test_sql_does_not_import_torch(seed_index: Path) -> None:
    output, tail = probe("sql", "SELECT count(*) AS n FROM passages", "--json", "-d", seed_index)
    assert '"n": 17' in output
    assert tail == ["EXIT 0", "LOADED False False"]
