"""An index you can trust: incremental runs, prune and remove, check, kill -9 at any moment, readers during writes.

The writers here are real processes (``kill -9`` needs one) running the real indexing code with the fake
embedder, so each run takes a second or two instead of minutes.
"""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.errors import IndexMismatch
from indexer.ingest.index import index_paths, optimize, remove_articles
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import search
from indexer.storage import SCHEMA_VERSION, Manifest, segment
from indexer.storage.check import check
from indexer.storage.layout import CATALOG as DATABASE
from indexer.storage.parquet_vectors import ParquetVectors

from .conftest import ROOT, FakeEmbedder, write_format7_texts

WRITER = """
import sys
from pathlib import Path
from tests.conftest import FakeEmbedder
from indexer.ingest.index import index_paths, optimize
source, directory = Path(sys.argv[1]), sys.argv[2]
index_paths([source / "articles.jsonl"], directory, embedder=FakeEmbedder(), rebuild=sys.argv[3] == "rebuild")
if (source / "late.jsonl").exists():  # a second commit, and a merge of the two segments
    index_paths([source / "late.jsonl"], directory, embedder=FakeEmbedder())
    optimize(directory)
"""


def write_articles(folder: Path, version: str, count: int, name: str = "articles.jsonl", first: int = 0) -> None:
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
        for number in range(first, first + count)
    ]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_writer(source: Path, directory: Path, rebuild: bool = True) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(source), str(directory), "rebuild" if rebuild else "update"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def indexed_old_with_new_beside(tmp_path: Path, count: int, late: int = 0) -> Path:
    """``old/`` indexed into ``index/``, and ``new/`` written beside it for the writers to swap in; with ``late``,
    each folder also has that many more articles, which writers add in a second commit and then merge."""
    for version in ("old", "new"):
        write_articles(tmp_path / version, version, count)
        if late:
            write_articles(tmp_path / version, version, late, "late.jsonl", first=count)
    index_paths([tmp_path / "old" / "articles.jsonl"], tmp_path / "index", embedder=FakeEmbedder())
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
    before = Manifest.load(tmp_path / "index")
    embedder = FakeEmbedder()
    report = index_paths([tmp_path / "in"], tmp_path / "index", embedder=embedder)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 3, 0)
    assert embedder.batches == [] and Manifest.load(tmp_path / "index") == before


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


def _segment(directory: Path) -> Path:
    return directory / "segments" / Manifest.load(directory).segments[0].name


def test_check_finds_ids_that_differ(sound: Path) -> None:
    ids = np.load(_segment(sound) / segment.IDS)
    np.save(_segment(sound) / segment.IDS, ids[1:])
    segment._loaded.clear()  # noqa: SLF001 -- as a new process would read it
    result = CliRunner().invoke(cli, ["check", "-d", str(sound)])
    assert result.exit_code == 1 and "ids.npy differs from the passages' ids" in result.output
    assert "--rebuild" in result.output


def test_check_finds_orphans_wrong_counts_and_bad_tombstones(sound: Path) -> None:
    articles = pq.read_table(_segment(sound) / segment.ARTICLES)
    kept = pc.not_equal(articles.column("article_id"), "a0")
    pq.write_table(articles.filter(kept), _segment(sound) / segment.ARTICLES)
    segment.write_tombstones(_segment(sound) / "deleted-000009.parquet", ["a1"], np.array([12345]))
    manifest = Manifest.load(sound)
    entry = dataclasses.replace(manifest.segments[0], tombstones="deleted-000009.parquet", deleted=1)
    (sound / "manifest.json").write_bytes(dataclasses.replace(manifest, segments=(entry,)).to_json())
    problems = check(sound)
    assert any("belong to no article" in problem for problem in problems), problems
    assert any("the commit counts 5 articles and 20 passages, its files hold 4" in p for p in problems), problems
    assert any("the manifest counts 5 articles" in problem for problem in problems), problems
    assert any("1 tombstones name no passage of the segment" in problem for problem in problems), problems


def test_check_finds_a_moved_archive_and_a_write_mends_it(sound: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    sound.rename(moved)
    assert check(moved) == [f"{moved / DATABASE} shows commit 1 of {sound}/; any write, or `newsarchive optimize`, "
                            "writes it again"]  # fmt: skip
    optimize(moved)
    assert check(moved) == []
    with duckdb.connect(str(moved / DATABASE), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM articles").fetchall() == [(5,)]


def test_check_finds_changed_vectors(sound: Path) -> None:
    """Vectors are stored once, in passages.embedding: a changed byte there fails the page's checksum."""
    passages = _segment(sound) / segment.PASSAGES
    value = int(ParquetVectors(passages, Manifest.load(sound).dimension)._offsets[0])  # noqa: SLF001
    damaged = bytearray(passages.read_bytes())
    damaged[value + 1] ^= 0x40
    passages.write_bytes(damaged)
    segment._loaded.clear()  # noqa: SLF001
    (problem,) = check(sound)
    assert problem.startswith(f"segment {_segment(sound).name}: passages.embedding fails its checksums (")


def test_check_finds_vectors_that_differ_from_an_older_segments_copy(tmp_path: Path) -> None:
    """A segment of format 6 holds a copy of its vectors (vectors.f16): check compares it with passages.embedding."""
    directory, folder = tmp_path / "index", tmp_path / "in"
    folder.mkdir()
    (folder / "first.md").write_text("# Harbour cranes\n\nDockers stopped the harbour cranes at dawn.\n")
    index_paths([folder], directory, embedder=FakeEmbedder())
    _as_format(directory, 6)
    assert check(directory) == []
    copy = _segment(directory) / "vectors.f16"
    copy.write_bytes(bytes(copy.stat().st_size))
    segment._loaded.clear()  # noqa: SLF001
    assert check(directory) == [f"segment {_segment(directory).name}: its vectors differ from passages.embedding"]


def test_check_without_an_index(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "-d", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no index in" in result.output


# crashes and concurrency


TRIALS = 24
ARTIFACTS = ROOT / "test-artifacts"


PHASES = (
    "writing a segment",
    "after the first commit",
    "writing the second segment",
    "merging",
    "after the merge",
)


def killed_in(directory: Path, before: int) -> str:
    """Which phase a killed writer was in, from what it left behind (also asked of a live one, while polling)."""
    while True:
        try:
            return _phase(directory, before)
        except (FileNotFoundError, ValueError):
            continue  # a live writer renamed what was being looked at: look again


def _phase(directory: Path, before: int) -> str:
    advanced = Manifest.read(directory).commit - before
    staging = any(p.name.startswith(".staging-") for p in (directory / "segments").iterdir())
    if advanced == 0:
        return "writing a segment" if staging else "starting or reading input"
    if advanced == 1:
        return "writing the second segment" if staging else "after the first commit"
    if advanced == 2:
        return "merging" if staging else "after the second commit"
    return "after the merge"


def test_kill_9_at_random_moments_never_breaks_the_index(tmp_path: Path) -> None:
    """Kill writers at random moments of every phase, merges included; after each kill the index is sound and
    answers, from one version."""
    directory = indexed_old_with_new_beside(tmp_path, 200, late=20)
    started = time.perf_counter()
    assert start_writer(tmp_path / "new", directory).wait() == 0  # one whole run, to time it
    duration = time.perf_counter() - started
    rng = random.Random(1)
    phases: list[str] = []
    failures: list[dict] = []
    # Odd trials kill at a random moment; even ones the instant a given phase is reached, so that short phases are
    # hit too. A short phase can slip past the poller on a busy machine: such a target is tried again, up to a bound.
    targets = [PHASES[i % len(PHASES)] for i in range(TRIALS // 2)]
    trial = 0
    while trial < TRIALS or (targets and trial < TRIALS * 2):
        before = Manifest.read(directory).commit
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
        if problems or seen not in ({"old"}, {"new"}):
            failures.append({"trial": trial, "phase": phases[-1], "problems": problems, "seen": sorted(seen)})
        trial += 1
    record = {"trials": trial, "failures": failures, "phases": dict(Counter(phases))}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "crash-test.json").write_text(json.dumps(record, indent=2) + "\n")
    assert not failures, record
    assert set(PHASES) <= set(phases), record  # the kills landed in every phase of the run
    # The next run cleans up whatever the dead writers left, and works.
    assert start_writer(tmp_path / "old", directory).wait() == 0
    assert not [p for p in (directory / "segments").iterdir() if p.name.startswith(".staging-")]
    assert check(directory) == [] and versions_seen(directory) == {"old"}


MARKED = """
import json, sys
from pathlib import Path
from tests.conftest import FakeEmbedder
from indexer.ingest.index import index_paths, optimize
folder, directory, commits = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for version in range(1, commits + 1):  # each commit replaces the marker and adds one article
    rows = [{"id": "marker", "title": f"marker version {version}", "text": "The marker of the harbour story."},
            {"id": f"extra{version}", "title": f"extra {version}", "text": "Another ship came in."}]
    (folder / "marker.jsonl").write_text("".join(json.dumps(row) + "\\n" for row in rows))
    index_paths([folder / "marker.jsonl"], directory, embedder=FakeEmbedder())
optimize(directory)
"""


def test_readers_see_one_commit_while_small_commits_and_merges_run(tmp_path: Path) -> None:
    """A reader searches while a writer makes 24 small commits (merging small segments as it goes) and an
    optimize; every search sees one commit: one marker, of the version that commit's article count implies."""
    folder, directory = tmp_path / "in", tmp_path / "index"
    write_articles(folder, "old", 50)
    (folder / "marker.jsonl").write_text(json.dumps({"id": "marker", "title": "marker version 0", "text": "x"}))
    index_paths([folder], directory, embedder=FakeEmbedder())
    commits = 24
    writer = subprocess.Popen(
        [sys.executable, "-c", MARKED, str(folder), str(directory), str(commits)], cwd=ROOT, stderr=subprocess.PIPE
    )
    errors, seen, commits_seen = [], [], set()
    archive = Archive(directory, embedder=FakeEmbedder())
    while writer.poll() is None or len(seen) < 200:
        try:
            # As the app does (the newest commit, the model kept), and as a new process would.
            archive = archive.latest() if len(seen) % 2 else Archive(directory, embedder=FakeEmbedder())
            hits = search(archive, "marker harbour story version", k=20)
            markers = [int(hit.title.split()[-1]) for hit in hits if hit.article_id == "marker"]
            articles = archive.store.counts()[0]
            seen.append((archive.manifest.commit, markers, articles))
            commits_seen.add(archive.manifest.commit)
        except Exception as error:  # any failure at all is a failed search
            errors.append(repr(error))
    _, stderr = writer.communicate()
    assert writer.returncode == 0, stderr.decode()
    mixed = [(commit, markers, articles) for commit, markers, articles in seen if markers != [articles - 51]]
    manifest = Manifest.load(directory)
    record = {"searches": len(seen), "errors": len(errors), "commits_seen": len(commits_seen), "mixed": len(mixed)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "concurrency-test.json").write_text(json.dumps(record, indent=2) + "\n")
    assert errors == [] and mixed == [], (record, errors[:3], mixed[:3])
    assert len(seen) >= 200 and len(commits_seen) >= 5, record  # the commits happened under the readers
    assert manifest.commit > commits + 2 and len(manifest.segments) == 1  # merges ran, and the final optimize
    assert check(directory) == []


HOLDER = """
import sys
from pathlib import Path
from indexer.storage import Writer
with Writer(Path(sys.argv[1])):
    print("writing", flush=True)
    sys.stdin.readline()
"""


def test_a_second_writer_fails_clearly_while_one_runs(tmp_path: Path) -> None:
    """While another process writes the index (here: holds its writer open until told), an index run says so and
    changes nothing; the first writer then finishes."""
    write_articles(tmp_path / "new", "new", 30)
    directory = tmp_path / "index"
    index_paths([tmp_path / "new"], directory, embedder=FakeEmbedder())
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert first.stdout.readline() == b"writing\n"
    second = start_writer(tmp_path / "new", directory)
    _, stderr = second.communicate()
    assert second.returncode != 0 and b"being written by another" in stderr
    first.communicate(b"\n")
    assert first.returncode == 0 and check(directory) == []


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


def _format_4_index(tmp_path: Path, version: int = 4) -> Path:
    """An index written by newsarchive before segments (tests/fixtures/format4-index.tar.gz, made by its own
    code): articles one, two (one's exact copy) and other (updated once, so its passage ids are 5 and 6), and
    one's source set by `sql --write`. Version 3 is the same without author, story_id and duplicates."""
    with tarfile.open(ROOT / "tests" / "fixtures" / "format4-index.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    directory = tmp_path / "index"
    if version == 3:
        database = directory / "current" / "archive.duckdb"
        with duckdb.connect(str(database)) as db:
            for statement in (
                "DROP TABLE duplicates",
                "ALTER TABLE articles DROP COLUMN story_id",
                "ALTER TABLE articles DROP COLUMN author",
            ):
                db.execute(statement).fetchall()
        manifest = directory / "current" / "manifest.json"
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 3}))
    return directory


@pytest.mark.parametrize("version", [4, 3])
def test_an_index_of_an_earlier_format_is_upgraded_without_embedding_again(tmp_path: Path, version: int) -> None:
    directory = _format_4_index(tmp_path, version)
    with pytest.raises(IndexMismatch, match="run `newsarchive index` on your articles once to upgrade it"):
        Archive(directory, embedder=FakeEmbedder())
    folder = tmp_path / "in"
    folder.mkdir()
    embedder = FakeEmbedder()
    (folder / "late.md").write_text("# Late\n\nAn article added with the upgrade.\n", encoding="utf-8")
    report = index_paths([folder], directory, embedder=embedder)
    assert embedder.batches == [["Late\nAn article added with the upgrade."]] and report.added == 1
    assert check(directory) == []
    names = [".lock", DATABASE, "commits", "manifest.json", "segments", "stories"]
    assert sorted(p.name for p in directory.iterdir()) == names  # the generations are gone
    with duckdb.connect(str(directory / DATABASE), read_only=True) as db:
        assert db.execute("SELECT passage_id, article_id FROM passages ORDER BY 1").fetchall() == [
            (1, "one"), (4, "two"), (5, "other"), (6, "other"), (7, "late")
        ]  # fmt: skip
        assert db.execute("SELECT article_id, duplicate_id, kind FROM duplicates").fetchall() == [
            ("one", "two", "exact")
        ]
        stories = dict(db.execute("SELECT article_id, story_id FROM articles").fetchall())
        sources = dict(db.execute("SELECT article_id, source FROM articles").fetchall())
    assert stories == {"one": "one", "two": "one", "other": "other", "late": "late"}
    assert sources["one"] == "Wire"
    with Archive(directory, embedder=FakeEmbedder()) as archive:
        (hit,) = [hit for hit in search(archive, "wire story harbour cranes", k=5) if hit.story_id == "one"][:1]
        assert [d.article_id for d in hit.also_in] == ["two" if hit.article_id == "one" else "one"]


def _as_format(directory: Path, version: int) -> None:
    """Make an index written by this version into one of format 5 (float32 vectors in each segment's Parquet rows
    and in ``vectors.f32``) or 6 (float16 ones, in Parquet compressed and in ``vectors.f16``), the passages' text in
    their lookup file, or 7 (the passages' text in blocks of its own, texts.arrow, the bodies in Arrow's compressed
    batches, bodies.arrow)."""
    manifest = Manifest.load(directory)
    for entry in manifest.segments:
        path = directory / "segments" / entry.name
        (path / segment.BODY_BLOCKS).unlink()
        if version == 7:
            write_format7_texts(pq.read_table(path / segment.PASSAGES).column("text").to_pylist(), path / segment.TEXTS)
            bodies = pq.read_table(path / segment.ARTICLES, columns=list(segment.BODY_COLUMNS)).combine_chunks()
            options = pa.ipc.IpcWriteOptions(compression="zstd")
            with (
                pa.OSFile(str(path / segment.BODIES), "wb") as sink,
                pa.ipc.new_file(sink, bodies.schema, options=options) as out,
            ):
                out.write_table(bodies, max_chunksize=segment.COMPRESSED_ROWS)
            continue
        value_type, name = {5: (pa.float32(), "vectors.f32"), 6: (pa.float16(), "vectors.f16")}[version]
        table = pq.read_table(path / segment.PASSAGES)
        before = table.schema.set(
            table.schema.get_field_index("embedding"),
            table.schema.field("embedding").with_type(pa.list_(value_type, manifest.dimension)),
        )
        table = table.cast(before)
        pq.write_table(table, path / segment.PASSAGES)
        vectors = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        (path / name).write_bytes(vectors.tobytes())
        shown = table.select(list(segment.HIT_PASSAGE_COLUMNS))  # the text in the lookup file, not beside it
        with (
            pa.OSFile(str(path / "lookup" / "passages.arrow"), "wb") as sink,
            pa.ipc.new_file(sink, shown.schema) as out,
        ):
            out.write_table(shown)
    data = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps({**data, "schema_version": version}))


@pytest.mark.parametrize("version", [5, 6, 7])
def test_an_index_of_an_older_format_is_read_as_it_is_and_written_with_vectors_and_text_once(
    tmp_path: Path, version: int
) -> None:
    """Formats 5 and 6 keep a copy of the vectors (float32, float16), 7 a copy of the passages' text, searched and
    checked as they are; a commit beside them writes float16 vectors in passages.parquet only and the text in the
    bodies' blocks only, and is of this version's format; optimize writes them all so, nothing embedded."""
    directory, folder = tmp_path / "index", tmp_path / "in"
    folder.mkdir()
    (folder / "first.md").write_text("# Harbour cranes\n\nDockers stopped the harbour cranes at dawn.\n")
    index_paths([folder], directory, embedder=FakeEmbedder())
    _as_format(directory, version)
    copy = {5: "vectors.f32", 6: "vectors.f16", 7: segment.TEXTS}[version]
    assert check(directory) == []
    with Archive(directory, embedder=FakeEmbedder()) as archive:
        (hit,) = search(archive, "harbour cranes dockers", k=1)
        assert (hit.article_id, hit.text) == ("first", "Dockers stopped the harbour cranes at dawn.")
    (folder / "second.md").write_text("# Wheat prices\n\nWheat prices rose on the exchange this week.\n")
    embedder = FakeEmbedder()
    index_paths([folder], directory, embedder=embedder)
    assert embedder.batches == [["Wheat prices\nWheat prices rose on the exchange this week."]]
    manifest = Manifest.load(directory)
    first, second = (directory / "segments" / entry.name for entry in manifest.segments)
    assert manifest.schema_version == SCHEMA_VERSION and (first / copy).exists()
    assert not list(second.glob("vectors.f*")) and not (second / segment.TEXTS).exists()
    assert pq.read_schema(second / segment.PASSAGES).field("embedding").type.value_type == pa.float16()
    assert check(directory) == []
    with duckdb.connect(str(directory / DATABASE), read_only=True) as db:
        rows = db.execute("SELECT article_id, embedding FROM passages ORDER BY passage_id").fetchall()
    expected = FakeEmbedder().embed_passages(["Wheat prices\nWheat prices rose on the exchange this week."])[0]
    assert [a for a, _ in rows] == ["first", "second"] and np.allclose(rows[1][1], expected, atol=1e-3)
    with Archive(directory, embedder=FakeEmbedder()) as archive:
        assert search(archive, "wheat prices exchange", k=1)[0].article_id == "second"
        assert search(archive, "harbour cranes dockers", k=1)[0].text == "Dockers stopped the harbour cranes at dawn."
    optimize(directory)
    (merged,) = (directory / "segments" / entry.name for entry in Manifest.load(directory).segments)
    assert not list(merged.glob("vectors.f*")) and not (merged / segment.TEXTS).exists()
    assert pq.read_schema(merged / segment.PASSAGES).field("embedding").type.value_type == pa.float16()
    assert check(directory) == []
