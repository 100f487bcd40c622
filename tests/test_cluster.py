"""Indexing on Ray: the same archive as a local run, on a real local Ray cluster with the real default model;
a worker killed mid-batch and a driver killed mid-run lose nothing and embed nothing twice."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.errors import InputProblem, NewsarchiveError
from indexer.ingest import cluster
from indexer.ingest.cluster import ClusterOptions, Unreachable, _Embedded, _first_copies, read_unit
from indexer.ingest.index import index_paths
from indexer.reading.article import Article, plain_paragraphs
from indexer.storage import Manifest, Snapshot
from indexer.storage.check import check
from indexer.text.passages import Passage

from .conftest import ROOT, SEEDS, SQUAD_IT

STORIES = ROOT / "tests" / "fixtures" / "stories"
ARTICLES = 96  # three actor batches: enough for a kill to land mid-run


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for this module, as CI runs it: two CPUs, no dashboard."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Real news-like inputs of every kind: SQuAD-it paragraphs two to an article (JSONL), the stories fixture
    (copies and translations, so there are duplicate stories) and the seed article."""
    folder = tmp_path_factory.mktemp("corpus")
    with (SQUAD_IT / "passages.jsonl").open(encoding="utf-8") as lines:
        paragraphs = [json.loads(line) for _, line in zip(range(2 * ARTICLES), lines)]
    with (folder / "squad.jsonl").open("w", encoding="utf-8") as out:
        for number in range(ARTICLES):
            first, second = paragraphs[2 * number : 2 * number + 2]
            text = f"{first['text']}\n\n{second['text']}"
            article = {"id": f"sq-{number:03d}", "title": first["title"], "text": text}
            out.write(json.dumps(article, ensure_ascii=False) + "\n")
    return [folder / "squad.jsonl", STORIES, SEEDS]


@pytest.fixture(scope="module")
def local_archive(corpus: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("local") / "archive"
    report = index_paths(corpus, directory)
    assert not report.problems and report.passages > 150
    return directory


def contents(directory: Path) -> dict:
    """What a reader sees of an archive: its public tables, vectors apart."""
    with duckdb.connect(str(directory / "archive.duckdb"), read_only=True) as db:
        passages = "passage_id, article_id, seq, paragraph, heading, text, char_start, char_end, tokens, language"
        return {
            "passages": db.sql(f"SELECT {passages} FROM passages ORDER BY passage_id").fetchall(),
            "articles": db.sql(
                "SELECT article_id, title, path, language, content_hash, story_id FROM articles ORDER BY article_id"
            ).fetchall(),
            "duplicates": db.sql("SELECT article_id, duplicate_id, kind FROM duplicates ORDER BY ALL").fetchall(),
            "vectors": np.array(db.sql("SELECT embedding FROM passages ORDER BY passage_id").fetchnumpy()["embedding"]),
        }


def assert_same_archive(ours: Path, local: Path) -> None:
    got, want = contents(ours), contents(local)
    for table in ("passages", "articles", "duplicates"):
        assert got[table] == want[table], table
    assert want["duplicates"], "the corpus holds duplicate stories"
    cosines = np.einsum("ij,ij->i", np.stack(got["vectors"]), np.stack(want["vectors"]))
    assert cosines.min() >= 0.9999, cosines.min()
    with Snapshot(ours) as a, Snapshot(local) as b:
        tokens = ["petrol", "drone", "crisi", "1973"]
        words_a, words_b = a.lexical.indexes["words"], b.lexical.indexes["words"]
        assert np.allclose(words_a.scores(tokens), words_b.scores(tokens))
        assert words_a.scores(tokens).any()
    assert check(ours) == []


@pytest.mark.model
def test_an_archive_built_on_ray_is_the_local_one(ray_cluster, corpus: list[Path], local_archive: Path, tmp_path):
    directory = tmp_path / "archive"
    report = index_paths(corpus, directory, cluster=ClusterOptions(actors=2, cpus_per_actor=1))
    assert (report.added, report.embedded, report.problems) == (report.articles, report.passages, [])
    assert_same_archive(directory, local_archive)

    commit = Manifest.load(directory).commit
    again = index_paths(corpus, directory, cluster=ClusterOptions(actors=2, cpus_per_actor=1))
    assert (again.embedded, again.unchanged) == (0, report.articles)
    assert Manifest.load(directory).commit == commit  # nothing new: no new commit
    assert_same_archive(directory, local_archive)


@pytest.mark.model
def test_inputs_shipped_from_the_driver_give_the_same_archive(ray_cluster, corpus, local_archive, tmp_path):
    directory = tmp_path / "archive"
    index_paths(corpus, directory, cluster=ClusterOptions(actors=1, cpus_per_actor=2, ship_inputs=True))
    assert_same_archive(directory, local_archive)


def _embedding_actors() -> list[int]:
    """Pids of the processes of Ray actors running our model (Ray titles them after the class)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"_Embedding" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.model
def test_a_worker_killed_mid_batch_is_retried_and_nothing_is_lost_or_doubled(
    ray_cluster, corpus, local_archive, tmp_path
):
    killed: list[int] = []

    def kill_once(stage: str, done: int, total: int) -> None:
        if not killed:  # the first batch is in: the actor is on the next one
            killed.extend(_embedding_actors())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    directory = tmp_path / "archive"
    report = index_paths(corpus, directory, progress=kill_once, cluster=ClusterOptions(actors=1, cpus_per_actor=2))
    assert killed, "an actor was running and was killed"
    assert not set(killed) & set(_embedding_actors()), "Ray started another actor"
    assert report.problems == []
    assert_same_archive(directory, local_archive)


@pytest.mark.model
def test_a_driver_killed_mid_run_resumes_without_embedding_again(ray_cluster, corpus, local_archive, tmp_path):
    directory = tmp_path / "archive"
    script = (
        "import sys; from indexer.ingest.index import index_paths; from indexer.ingest.cluster import ClusterOptions; "
        "index_paths(sys.argv[2:], sys.argv[1], commit_every=10, "
        f"cluster=ClusterOptions({ray_cluster.get_runtime_context().gcs_address!r}, actors=1, cpus_per_actor=2))"
    )
    driver = subprocess.Popen([sys.executable, "-c", script, str(directory), *map(str, corpus)], cwd=ROOT)
    deadline = time.monotonic() + 300
    while not (directory / "manifest.json").exists() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, "the driver was still running after its first commit"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    committed = Manifest.load(directory).articles
    assert 0 < committed < ARTICLES

    report = index_paths(corpus, directory, cluster=ClusterOptions(actors=1, cpus_per_actor=2))
    assert report.unchanged == committed  # read again, not embedded again
    assert report.added == report.articles - committed
    assert_same_archive(directory, local_archive)


@pytest.mark.model
def test_index_ray_on_the_command_line(ray_cluster, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["index", "--index-dir", str(tmp_path / "a"), "--ray", str(SEEDS)])
    assert result.exit_code == 0, result.output
    assert "1 article added" in result.output, result.output
    assert Manifest.load(tmp_path / "a").passages > 10


def test_a_path_a_worker_on_another_node_cannot_see_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "only-on-the-driver.jsonl"
    unreachable = read_unit(missing, driver_node="driver", node="worker")
    assert unreachable == Unreachable(str(missing), "worker")
    message = str(unreachable.error())
    assert str(missing) in message and "--ray-ship-inputs" in message and "every node mounts" in message
    (problem,) = read_unit(missing, driver_node="driver", node="driver")  # gone from the driver's own disk
    assert isinstance(problem, InputProblem) and problem.path == str(missing)


def test_without_ray_installed_the_error_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(NewsarchiveError, match=r"pip install 'newsarchive\[cluster\]'"):
        cluster.connect()
    result = CliRunner().invoke(cli, ["index", "--index-dir", str(tmp_path / "a"), str(SEEDS), "--ray"])
    assert result.exit_code != 0 and "newsarchive[cluster]" in result.output, result.output


def _article(article_id: str, line: int) -> Article:
    text = f"Text of {article_id}."
    return Article(article_id, "Title", text, tuple(plain_paragraphs(text)), "in.jsonl", line=line)


def _passage(article_id: str) -> Passage:
    return Passage(article_id, 0, 1, None, 0, 10, f"Text of {article_id}.", 4)


def test_a_batch_delivered_twice_is_kept_once_and_a_repeated_id_is_a_problem() -> None:
    a, b, b_again = _article("a", 1), _article("b", 2), _article("b", 3)
    vectors = np.eye(3, dtype=np.float32)[:2]
    found = _Embedded([a, b, b_again], {0: "it", 1: "en"}, [_passage("a"), _passage("b")], vectors)
    seen: dict = {}
    first = _first_copies(found, seen)
    assert [x.article_id for x in first.articles] == ["a", "b"] and first.languages == ["it", "en"]
    assert np.array_equal(first.vectors, vectors)
    assert [str(p) for p in first.problems] == ["in.jsonl:3: duplicate article id 'b' (first in in.jsonl:2)"]
    twice = _first_copies(found, seen)  # Ray ran the batch again
    assert (twice.articles, twice.passages, len(twice.vectors)) == ([], [], 0)


@pytest.mark.model
def test_a_failure_in_a_worker_is_told_in_one_line(ray_cluster, tmp_path: Path, use_fake_model) -> None:
    # This process has the fake model (64 dimensions) under the default's name; the workers load the real one.
    result = CliRunner().invoke(cli, ["index", "--index-dir", str(tmp_path / "a"), "--ray", str(SEEDS)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: model "), result.output
    assert "gives vectors of 384 dimensions, the index's have 64" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "a" / "manifest.json").exists()  # nothing half-written became a commit


def test_what_ray_wraps_is_unwrapped_to_our_own_error_or_its_last_line() -> None:
    ours = NewsarchiveError("in.jsonl: cannot read")
    try:
        try:
            raise ours
        except NewsarchiveError as error:
            raise RuntimeError("UDF failed to process a data block.\nFailed to apply UDF") from error
    except RuntimeError as wrapped:
        assert cluster.explained(wrapped) is ours
    found = cluster.explained(ValueError("first line\nthe last line"))
    assert str(found) == "indexing on Ray failed in a worker: ValueError: the last line"
