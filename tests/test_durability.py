"""An index you can trust: incremental runs, prune and remove, check, kill -9 at any moment, readers during writes.

The writers here are real processes (``kill -9`` needs one) running the real indexing code with the fake
embedder, so each run takes a second or two instead of minutes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

from indexer.archive import Archive
from indexer.check import check
from indexer.cli import cli
from indexer.errors import IndexMismatch
from indexer.ingest import index_paths, remove_articles
from indexer.manifest import DATABASE, VECTORS
from indexer.search import search
from indexer.vectors import VectorIndex

from .conftest import ROOT, FakeEmbedder

WRITER = """
import sys
from tests.conftest import FakeEmbedder
from indexer.ingest import index_paths
index_paths([sys.argv[1]], sys.argv[2], embedder=FakeEmbedder(), rebuild=sys.argv[3] == "rebuild")
"""


def write_articles(folder: Path, version: str, count: int) -> None:
    """``count`` articles whose every title and paragraph names ``version``, so a hit tells which version it is."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "id": f"a{number}",
                "title": f"{version} report {number}",
                "text": "\n\n".join(f"{version} paragraph {p} of story {number} about harbours." for p in range(4)),
            }
        )
        for number in range(count)
    ]
    (folder / "articles.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_writer(source: Path, directory: Path, rebuild: bool = True) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(source), str(directory), "rebuild" if rebuild else "update"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def indexed_old_with_new_beside(tmp_path: Path, count: int) -> Path:
    """``old/`` indexed into ``index/``, and ``new/`` written beside it for the writers to swap in."""
    write_articles(tmp_path / "old", "old", count)
    write_articles(tmp_path / "new", "new", count)
    index_paths([tmp_path / "old"], tmp_path / "index", embedder=FakeEmbedder())
    return tmp_path / "index"


def versions_seen(directory: Path) -> set[str]:
    """Open the index as a new reader would and tell which version each of its hits belongs to."""
    with Archive(directory, embedder=FakeEmbedder()) as archive:
        hits = search(archive, "paragraph of story about harbours", k=20)
        assert len(hits) == 20
        return {hit.title.split()[0] for hit in hits} | {hit.text.split()[0] for hit in hits}


# incremental runs, prune, remove


def test_a_no_op_run_writes_nothing(tmp_path: Path) -> None:
    write_articles(tmp_path / "in", "old", 3)
    index_paths([tmp_path / "in"], tmp_path / "index", embedder=FakeEmbedder())
    before = os.path.realpath(tmp_path / "index" / "current")
    embedder = FakeEmbedder()
    report = index_paths([tmp_path / "in"], tmp_path / "index", embedder=embedder)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 3, 0)
    assert embedder.batches == [] and os.path.realpath(tmp_path / "index" / "current") == before


def test_prune_removes_articles_whose_files_or_lines_are_gone(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("one", "two"):
        (folder / f"{name}.txt").write_text(f"{name.title()}\n\nThe {name} story.\n")
    (folder / "wire.jsonl").write_text(
        '{"id": "w1", "title": "W1", "text": "x"}\n{"id": "w2", "title": "W2", "text": "y"}\n'
    )
    index_paths([folder], tmp_path / "index", embedder=FakeEmbedder())
    (folder / "two.txt").unlink()
    (folder / "wire.jsonl").write_text('{"id": "w1", "title": "W1", "text": "x"}\n')
    kept = index_paths([folder], tmp_path / "index", embedder=FakeEmbedder())
    assert (kept.removed, kept.articles) == (0, 4)  # without --prune nothing is removed
    result = CliRunner().invoke(cli, ["index", "--prune", str(folder), "-d", str(tmp_path / "index")])
    assert result.exit_code == 0, result.output
    assert "2 removed" in result.output and "now holds 2 articles" in result.output
    with duckdb.connect(str(tmp_path / "index" / DATABASE), read_only=True) as db:
        assert sorted(row[0] for row in db.execute("SELECT article_id FROM articles").fetchall()) == ["one", "w1"]


def test_prune_keeps_articles_of_a_file_that_now_fails_to_read(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "story.txt").write_text("Story\n\nText.\n")
    index_paths([folder], tmp_path / "index", embedder=FakeEmbedder())
    (folder / "story.txt").write_bytes(b"\xff\xfe broken")
    report = index_paths([folder], tmp_path / "index", embedder=FakeEmbedder(), prune=True)
    assert report.problems and (report.removed, report.articles) == (0, 1)


def test_remove_by_id(tmp_path: Path) -> None:
    write_articles(tmp_path / "in", "old", 3)
    index_paths([tmp_path / "in"], tmp_path / "index", embedder=FakeEmbedder())
    runner = CliRunner()
    bad = runner.invoke(cli, ["remove", "a1", "nope", "-d", str(tmp_path / "index")])
    assert bad.exit_code == 1 and "'nope'" in bad.output and "nothing removed" in bad.output
    result = runner.invoke(cli, ["remove", "a1", "-d", str(tmp_path / "index")])
    assert result.exit_code == 0 and "1 removed" in result.output and "now holds 2 articles" in result.output
    assert check(tmp_path / "index") == []
    with Archive(tmp_path / "index", embedder=FakeEmbedder()) as archive:
        assert {hit.article_id for hit in search(archive, "story 1", k=20)} == {"a0", "a2"}
    assert remove_articles(["a0", "a2"], tmp_path / "index").articles == 0
    assert check(tmp_path / "index") == []


# check


@pytest.fixture
def sound(tmp_path: Path) -> Path:
    write_articles(tmp_path / "in", "old", 5)
    index_paths([tmp_path / "in"], tmp_path / "index", embedder=FakeEmbedder())
    return tmp_path / "index"


def test_check_passes_a_sound_index(sound: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "-d", str(sound)])
    assert result.exit_code == 0 and "is sound" in result.output


def test_check_finds_a_missing_vector(sound: Path) -> None:
    vectors = VectorIndex.load(sound / VECTORS)
    vectors.remove([int(vectors.ids()[0])])
    vectors.save(sound / "current" / VECTORS)
    result = CliRunner().invoke(cli, ["check", "-d", str(sound)])
    assert result.exit_code == 1 and "1 only in DuckDB" in result.output and "--rebuild" in result.output


def test_check_finds_orphans_and_wrong_counts(sound: Path) -> None:
    with duckdb.connect(str(sound / DATABASE)) as db:
        db.execute("INSERT INTO duplicates VALUES ('a0', 'a1', 'near', 0.9)").fetchall()
        db.execute("UPDATE articles SET story_id = 'a0' WHERE article_id = 'a1'").fetchall()
        db.execute("DELETE FROM articles WHERE article_id = 'a0'").fetchall()
    problems = check(sound)
    assert any("belong to no article" in problem for problem in problems)
    assert any("the manifest counts 5 articles" in problem for problem in problems)
    assert "1 duplicate pairs name an article that is not indexed" in problems
    assert "1 articles have a story_id that is no article's id" in problems


def test_check_finds_changed_vectors(sound: Path) -> None:
    with duckdb.connect(str(sound / DATABASE)) as db:
        db.execute("UPDATE passages SET embedding = [0.0 for x in range(64)]::FLOAT[64]").fetchall()
    assert check(sound) == ["FAISS vectors differ from passages.embedding"]


def test_check_without_an_index(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "-d", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no index in" in result.output


# crashes and concurrency


TRIALS = 24
ARTIFACTS = ROOT / "test-artifacts"


PHASES = (
    "creating the generation",
    "updating DuckDB and embedding",
    "saving vectors and lexical index",
    "publishing",
    "after the switch",
)


def killed_in(directory: Path, before: str) -> str:
    """Which phase a killed writer was in, from what it left behind (also asked of a live one, while polling)."""
    while True:
        try:
            return _phase(directory, before)
        except FileNotFoundError:
            continue  # a live writer renamed what was being looked at: look again


def _phase(directory: Path, before: str) -> str:
    if os.path.realpath(directory / "current") != before:
        return "after the switch"
    staged = [p for p in (directory / "generations").iterdir() if p.name.startswith(".staging-")]
    if not staged:
        return "starting or reading input"
    names = {p.name for p in staged[0].iterdir()}
    if "manifest.json" in names:
        return "publishing"
    if names & {VECTORS, "lexical"}:
        return "saving vectors and lexical index"
    if DATABASE in names:
        return "updating DuckDB and embedding"
    return "creating the generation"


def test_kill_9_at_random_moments_never_breaks_the_index(tmp_path: Path) -> None:
    """Kill writers at random moments of every phase; after each kill the index is sound and answers."""
    directory = indexed_old_with_new_beside(tmp_path, 200)
    started = time.perf_counter()
    assert start_writer(tmp_path / "new", directory).wait() == 0  # one whole run, to time it
    duration = time.perf_counter() - started
    rng = random.Random(1)
    phases: list[str] = []
    failures = 0
    # Odd trials kill at a random moment; even ones the instant a given phase is reached, so that short phases are
    # hit too. A short phase can slip past the poller on a busy machine: such a target is tried again, up to a bound.
    targets = [PHASES[i % len(PHASES)] for i in range(TRIALS // 2)]
    trial = 0
    while trial < TRIALS or (targets and trial < TRIALS * 2):
        before = os.path.realpath(directory / "current")
        writer = start_writer(tmp_path / ("old" if trial % 2 else "new"), directory)
        target = targets[0] if trial % 2 == 0 and targets else None
        if target is None:
            time.sleep(rng.uniform(0, duration * 1.1))  # from start-up to (rarely) after the end
        else:
            while writer.poll() is None and killed_in(directory, before) != target:
                time.sleep(0.0002)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        phases.append(killed_in(directory, before))
        if target is not None and phases[-1] == target:
            targets.pop(0)
        problems = check(directory)
        seen = versions_seen(directory)
        failures += bool(problems) or seen not in ({"old"}, {"new"})
        trial += 1
    record = {"trials": trial, "failures": failures, "phases": dict(Counter(phases))}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "crash-test.json").write_text(json.dumps(record, indent=2) + "\n")
    assert failures == 0, record
    assert set(PHASES) <= set(phases), record  # the kills landed in every phase of the run
    # The next run cleans up whatever the dead writers left, and works.
    assert start_writer(tmp_path / "old", directory).wait() == 0
    assert not [p for p in (directory / "generations").iterdir() if p.name.startswith(".staging-")]
    assert check(directory) == [] and versions_seen(directory) == {"old"}


def test_readers_see_one_complete_version_while_rebuilds_run(tmp_path: Path) -> None:
    directory = indexed_old_with_new_beside(tmp_path, 300)
    done = threading.Event()
    errors: list[str] = []
    rebuilds = 0

    def write() -> None:
        nonlocal rebuilds
        while not done.is_set():
            writer = start_writer(tmp_path / ("new" if rebuilds % 2 == 0 else "old"), directory)
            _, stderr = writer.communicate()
            if writer.returncode != 0:
                errors.append(stderr.decode())
            rebuilds += 1

    thread = threading.Thread(target=write)
    thread.start()
    seen: list[frozenset[str]] = []
    try:
        while len(seen) < 200 or rebuilds < 2:
            try:
                seen.append(frozenset(versions_seen(directory)))
            except Exception as error:  # any failure at all is a failed search
                errors.append(repr(error))
                seen.append(frozenset())
    finally:
        done.set()
        thread.join()
    record = {
        "searches": len(seen),
        "errors": len(errors),
        "rebuilds": rebuilds,
        "articles_per_rebuild": 300,
        "versions_seen": {"old": seen.count(frozenset({"old"})), "new": seen.count(frozenset({"new"}))},
        "mixed_or_empty": sum(len(versions) != 1 for versions in seen),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "concurrency-test.json").write_text(json.dumps(record, indent=2) + "\n")
    assert errors == []
    assert set(seen) <= {frozenset({"old"}), frozenset({"new"})}
    assert set(seen) == {frozenset({"old"}), frozenset({"new"})}  # the switches happened under the readers
    assert rebuilds >= 2 and len(seen) >= 200


def test_a_second_writer_fails_clearly_while_one_runs(tmp_path: Path) -> None:
    write_articles(tmp_path / "new", "new", 300)
    directory = tmp_path / "index"
    index_paths([tmp_path / "new"], directory, embedder=FakeEmbedder())
    first = start_writer(tmp_path / "new", directory)
    deadline = time.perf_counter() + 20
    while not any(p.name.startswith(".staging-") for p in (directory / "generations").iterdir()):
        assert time.perf_counter() < deadline and first.poll() is None
        time.sleep(0.01)
    second = start_writer(tmp_path / "new", directory)
    _, stderr = second.communicate()
    assert second.returncode != 0 and b"being written by another" in stderr
    assert first.wait() == 0 and check(directory) == []
    assert np.isfinite(len(os.listdir(directory / "generations")))


# bad input


def test_every_kind_of_bad_input_is_one_line_and_the_rest_is_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_fake_model: FakeEmbedder
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("Harbour strike\n\nDockers stopped the cranes at dawn.\n")
    directory = tmp_path / "index"
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(folder), "-d", str(directory)]).exit_code == 0
    bad = {
        "empty.txt": (b"", "empty file"),
        "binary.txt": (b"Title\n\x00\x01\x02", "binary file"),
        "latin1.txt": ("Titolo\nPerché sì.\n".encode("latin-1"), "not valid UTF-8 (byte 12)"),
        "huge.txt": (b"Huge\n\n" + b"word " * 10_000_000, "too large for one article (50.0 MB"),
        "feed.jsonl": (
            b'{"id": "f1", "title": "Fine", "text": "A fine line."}\nnot json\n{"id": "f3", "title": "No text"}\n'
            b'{"id": "../etc", "text": "x"}\n{"id": "f1", "text": "Same id as line 1"}\n',
            None,
        ),
        "locked.txt": (b"Locked\n\nCannot be read.\n", "cannot read: Permission denied"),
    }
    for name, (content, _) in bad.items():
        (folder / name).write_bytes(content)
    locked = folder / "locked.txt"
    real_read_bytes = Path.read_bytes

    def read_bytes(path: Path) -> bytes:  # chmod 000 does not stop root, who may run the tests
        if path == locked:
            raise PermissionError(13, "Permission denied")
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = runner.invoke(cli, ["index", str(folder), "-d", str(directory)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("Embedding")]  # progress
    expected = [f"skipped {folder / name}: {reason}" for name, (_, reason) in bad.items() if reason]
    expected += [
        f"skipped {folder / 'feed.jsonl'}:2: not JSON",
        f'skipped {folder / "feed.jsonl"}:3: no "text"',
        f"skipped {folder / 'feed.jsonl'}:4: article id '../etc' must be non-empty, without slashes",
        f"skipped {folder / 'feed.jsonl'}:5: duplicate article id 'f1' (first in {folder / 'feed.jsonl'}:1)",
    ]
    for line in expected:
        assert any(actual.startswith(line) for actual in lines), (line, lines)
    assert len(lines) == len(expected) + 1 and lines[-1] == "Error: 9 inputs skipped (listed above)"
    assert "1 article added, 0 updated, 1 unchanged" in result.stdout  # f1 added, good.txt kept
    assert check(directory) == []
    with Archive(directory, embedder=use_fake_model) as archive:
        assert {hit.article_id for hit in search(archive, "dockers cranes fine line", k=5)} == {"good", "f1"}


# upgrade


def _downgrade_to_format_3(directory: Path) -> None:
    """Make the current generation what newsarchive wrote before author, story_id and duplicates existed."""
    with duckdb.connect(str(directory / DATABASE)) as db:
        for statement in (
            "DROP TABLE duplicates",
            "ALTER TABLE articles DROP COLUMN story_id",
            "ALTER TABLE articles DROP COLUMN author",
        ):
            db.execute(statement).fetchall()
    manifest = directory / "current" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 3}))


def test_an_index_of_the_previous_format_is_upgraded_without_embedding_again(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    wire = " ".join(f"Word{number} of the wire story about the harbour and its cranes." for number in range(5))
    (folder / "one.md").write_text(f"# One\n\n{wire}\n", encoding="utf-8")
    (folder / "two.md").write_text(f"# Two\n\n{wire}\n", encoding="utf-8")
    (folder / "other.md").write_text("# Other\n\nSomething else entirely, about a football match.\n", encoding="utf-8")
    index_paths([folder], tmp_path / "index", embedder=FakeEmbedder())
    _downgrade_to_format_3(tmp_path / "index")
    with pytest.raises(IndexMismatch, match="run `newsarchive index` on your articles once to upgrade it"):
        Archive(tmp_path / "index", embedder=FakeEmbedder())
    embedder = FakeEmbedder()
    report = index_paths([folder], tmp_path / "index", embedder=embedder)
    assert embedder.batches == [] and (report.unchanged, report.added, report.updated) == (3, 0, 0)
    assert check(tmp_path / "index") == []
    with duckdb.connect(str(tmp_path / "index" / DATABASE), read_only=True) as db:
        assert db.execute("SELECT article_id, duplicate_id, kind FROM duplicates").fetchall() == [
            ("one", "two", "exact")
        ]
        stories = dict(db.execute("SELECT article_id, story_id FROM articles").fetchall())
    assert stories == {"one": "one", "two": "one", "other": "other"}
    with Archive(tmp_path / "index", embedder=FakeEmbedder()) as archive:
        (hit,) = [hit for hit in search(archive, "wire story harbour cranes", k=5) if hit.story_id == "one"][:1]
        assert [d.article_id for d in hit.also_in] == ["two" if hit.article_id == "one" else "one"]
