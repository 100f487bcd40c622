"""Building, updating and searching an index directory with the fake embedder."""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from indexer.errors import IndexMismatch, IndexNotFound, NewsarchiveError
from indexer.ingest.index import IndexReport, index_paths
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import search
from indexer.storage import Manifest
from indexer.storage.layout import CATALOG as DATABASE
from indexer.text.language import detect
from tests.conftest import SEED, SEEDS, FakeEmbedder, write_format7_texts

HEADING_1 = "Ripresa delle linee telefoniche militari per allentare tensioni tra Mosca e Washington"
# The seventh paragraph of the seed (the fourth under the first heading) is about the drone over the Black Sea.
DRONE_QUERY = "drone MQ-9 Breacher Mar Nero caccia russi carburante elica spazio aereo internazionale"
DRONE_PARAGRAPH = 7


@dataclass
class Snapshot:
    """What an index directory holds, read through one connection."""

    manifest: Manifest
    articles: dict[str, dict[str, Any]]
    passages: dict[int, dict[str, Any]]
    faiss_ids: list[int]


def rows(db: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    relation = db.sql(query)
    columns = relation.columns
    return [dict(zip(columns, row)) for row in relation.fetchall()]


def snapshot(directory: Path, embedder: FakeEmbedder) -> Snapshot:
    """Read everything back, and check that DuckDB, FAISS and the manifest describe the same passages."""
    with Archive(directory, embedder=embedder) as archive:
        articles = {row["article_id"]: row for row in rows(archive.store.db, "SELECT * FROM articles")}
        passages = {row["passage_id"]: row for row in rows(archive.store.db, "SELECT * FROM passages")}
        ids = archive.vectors.ids().tolist()
        manifest = archive.manifest
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(passages)
    assert (manifest.articles, manifest.passages) == (len(articles), len(passages))
    assert {row["article_id"] for row in passages.values()} <= set(articles)
    return Snapshot(manifest, articles, passages, ids)


def make_writable(path: Path) -> None:
    """The shipped seeds are read-only, and so are their copies."""
    path.chmod(path.stat().st_mode | stat.S_IWUSR)


def edit(path: Path, old: str, new: str) -> None:
    make_writable(path)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@dataclass
class Built:
    directory: Path
    embedder: FakeEmbedder
    report: IndexReport


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The seeds indexed once, for the tests that only read."""
    seeds = tmp_path_factory.mktemp("seed-index") / "seeds"
    shutil.copytree(SEEDS, seeds)
    directory = seeds.parent / "index"
    embedder = FakeEmbedder()
    return Built(directory, embedder, index_paths([seeds], directory, embedder=embedder))


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


@pytest.fixture
def built(seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder) -> Snapshot:
    """The seeds indexed in a directory of this test's own, for the tests that change it."""
    index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    return snapshot(index_dir, fake_embedder)


def test_build_from_seeds(seed_index: Built) -> None:
    report = seed_index.report
    assert (report.added, report.updated, report.unchanged) == (1, 0, 0)
    assert (report.articles, report.passages, report.embedded) == (1, 17, 17)
    assert report.problems == []
    manifest = json.loads((seed_index.directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"] == "fake-hash"
    assert manifest["dimension"] == 64
    assert (manifest["articles"], manifest["passages"]) == (1, 17)
    assert (manifest["query_prompt"], manifest["passage_prompt"]) == ("q: ", "p: ")
    with duckdb.connect(str(seed_index.directory / DATABASE), read_only=True) as db:
        assert rows(db, "SELECT count(*) AS n FROM articles") == [{"n": 1}]
        assert rows(db, "SELECT count(*) AS n FROM passages") == [{"n": 17}]
    found = snapshot(seed_index.directory, seed_index.embedder)
    assert found.faiss_ids == sorted(found.passages)  # a fresh build adds the vectors in passage id order
    assert len(found.faiss_ids) == 17
    # One batch, each text the passage with the title and heading before it.
    (batch,) = seed_index.embedder.batches
    assert len(batch) == 17
    (article,) = found.articles.values()
    assert all(text.startswith(article["title"] + "\n") for text in batch)
    assert sum(HEADING_1 in text for text in batch) == 5
    assert not any(f.name.startswith(".staging") for f in seed_index.directory.iterdir())


def test_stored_passages_point_into_article_text(seed_index: Built) -> None:
    found = snapshot(seed_index.directory, seed_index.embedder)
    (article,) = found.articles.values()
    assert article["article_id"] == SEED.stem
    assert article["path"].endswith(SEED.name)
    stored = sorted(found.passages.values(), key=lambda row: row["seq"])
    assert [row["seq"] for row in stored] == list(range(17))
    assert [row["paragraph"] for row in stored] == list(range(1, 18))
    for row in stored:
        assert row["text"] == article["body"][row["char_start"] : row["char_end"]]
        assert row["tokens"] == len(row["text"].split())


def test_search_finds_the_paragraph_it_quotes(seed_index: Built) -> None:
    with Archive(seed_index.directory, embedder=seed_index.embedder) as archive:
        hits = search(archive, DRONE_QUERY, k=3)
    assert [hit.rank for hit in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    top = hits[0]
    assert "MQ-9 Breacher" in top.text
    assert top.paragraph == DRONE_PARAGRAPH
    assert top.heading == HEADING_1
    found = snapshot(seed_index.directory, seed_index.embedder)
    article = found.articles[top.article_id]
    row = found.passages[top.passage_id]
    assert top.title == article["title"]
    assert (top.article_id, top.heading, top.paragraph, top.char_start, top.char_end, top.text) == (
        row["article_id"],
        row["heading"],
        row["paragraph"],
        row["char_start"],
        row["char_end"],
        row["text"],
    )
    assert article["body"][top.char_start : top.char_end] == top.text
    data = json.loads(json.dumps(top.to_dict()))
    assert data["passage_id"] == top.passage_id and data["text"] == top.text and data["published"] is None


def test_search_k_larger_than_index(seed_index: Built) -> None:
    with Archive(seed_index.directory, embedder=seed_index.embedder) as archive:
        hits = search(archive, "Zelensky", k=100)
    assert len(hits) == 17
    assert len({hit.passage_id for hit in hits}) == 17


@pytest.mark.parametrize(("query", "k"), [("", 5), ("   ", 5), ("drone", 0), ("drone", -1)])
def test_search_rejects_empty_query_and_bad_k(seed_index: Built, query: str, k: int) -> None:
    with Archive(seed_index.directory, embedder=seed_index.embedder) as archive, pytest.raises(NewsarchiveError):
        search(archive, query, k=k)


def test_other_model_or_budget_is_refused(seed_index: Built) -> None:
    directory = seed_index.directory
    with pytest.raises(IndexMismatch, match="fake-hash"):
        Archive(directory, model="other")
    with pytest.raises(IndexMismatch, match="rebuild"):
        Archive(directory, embedder=FakeEmbedder(name="other"))
    with pytest.raises(IndexMismatch, match="--rebuild"):
        index_paths([SEED], directory, embedder=FakeEmbedder(name="other"))
    with pytest.raises(IndexMismatch, match="--rebuild"):
        index_paths([SEED], directory, embedder=FakeEmbedder(), max_tokens=100)
    assert Manifest.load(directory).model == "fake-hash"  # the refused runs changed nothing


def test_hit_to_dict_dates_are_iso_strings(seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder) -> None:
    (seeds_copy / f"{SEED.stem}.meta.json").write_text(
        json.dumps({"published": "2026-02-06T09:30:00+01:00", "source": "Euronews", "url": "https://example.com/a"})
    )
    index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    with Archive(index_dir, embedder=fake_embedder) as archive:
        (hit,) = search(archive, DRONE_QUERY, k=1)
    data = json.loads(json.dumps(hit.to_dict()))
    assert (data["source"], data["url"]) == ("Euronews", "https://example.com/a")
    moment = datetime(2026, 2, 6, 8, 30, tzinfo=timezone.utc)
    assert hit.published == moment
    assert datetime.fromisoformat(data["published"]) == moment


def test_reindexing_unchanged_files_embeds_nothing(
    built: Snapshot, seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    report = index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    assert len(fake_embedder.batches) == 1
    assert (report.added, report.updated, report.unchanged, report.embedded) == (0, 0, 1, 0)
    assert (report.articles, report.passages) == (1, 17)
    assert snapshot(index_dir, fake_embedder).passages == built.passages


def test_reindexing_without_embedder_does_not_load_a_model(
    built: Snapshot, seeds_copy: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("no model should be loaded when nothing changed")

    monkeypatch.setattr("indexer.ingest.index.load_embedder", refuse)
    report = index_paths([seeds_copy], index_dir, model="fake-hash")
    assert report.unchanged == 1
    assert Manifest.load(index_dir).query_prompt == "q: "


def test_editing_a_file_replaces_only_its_passages(
    seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    extra = seeds_copy / "zz_extra.txt"
    extra.write_text("Harbour news\nThe ferry left at dawn.\nFishermen returned by noon.\n", encoding="utf-8")
    index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    before = snapshot(index_dir, fake_embedder).passages
    seed_ids = {i for i, row in before.items() if row["article_id"] == SEED.stem}
    extra_rows = {i: row for i, row in before.items() if row["article_id"] == "zz_extra"}
    assert (len(seed_ids), len(extra_rows)) == (17, 2)

    edit(seeds_copy / SEED.name, "MQ-9 Breacher", "MQ-9 Reaper")
    report = index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    assert (report.added, report.updated, report.unchanged, report.embedded) == (0, 1, 1, 17)
    assert len(fake_embedder.batches[-1]) == 17
    assert not any("Harbour news" in text for text in fake_embedder.batches[-1])

    after = snapshot(index_dir, fake_embedder)
    assert len(after.passages) == 19
    assert seed_ids.isdisjoint(after.passages)
    assert seed_ids.isdisjoint(after.faiss_ids)
    assert {i: row for i, row in after.passages.items() if row["article_id"] == "zz_extra"} == extra_rows
    texts = " ".join(row["text"] for row in after.passages.values())
    assert "MQ-9 Reaper" in texts and "Breacher" not in texts
    with Archive(index_dir, embedder=fake_embedder) as archive:
        assert "Reaper" in search(archive, DRONE_QUERY.replace("Breacher", "Reaper"), k=1)[0].text


def test_changed_passages_get_fresh_ids(
    built: Snapshot, seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    edit(seeds_copy / SEED.name, "MQ-9 Breacher", "MQ-9 Reaper")
    index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    after = snapshot(index_dir, fake_embedder)
    assert set(built.passages).isdisjoint(after.passages)


def test_adding_a_file_embeds_only_its_passages(
    built: Snapshot, seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    markdown = "# Harbour news\n\nThe ferry left at dawn.\n\n## Later\n\nFishermen returned.\n"
    (seeds_copy / "second.md").write_text(markdown, encoding="utf-8")
    report = index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    assert (report.added, report.updated, report.unchanged, report.embedded) == (1, 0, 1, 2)
    assert fake_embedder.batches[-1] == [
        "Harbour news\nThe ferry left at dawn.",
        "Harbour news\nLater\nFishermen returned.",
    ]
    after = snapshot(index_dir, fake_embedder).passages
    before = built.passages
    assert {i: row for i, row in after.items() if i in before} == before
    assert sorted(row["text"] for i, row in after.items() if i not in before) == [
        "Fishermen returned.",
        "The ferry left at dawn.",
    ]
    with Archive(index_dir, embedder=fake_embedder) as archive:
        top = search(archive, "ferry dawn harbour", k=1)[0]
    assert (top.article_id, top.text, top.heading) == ("second", "The ferry left at dawn.", None)


def test_a_large_input_is_read_as_it_is_embedded_and_progress_counts_its_articles(
    tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Articles are read a batch ahead of the model, never all at once: a dump of millions fits in memory."""
    from indexer.ingest import index as ingest

    dump = tmp_path / "dump.jsonl"
    rows = [{"id": f"a{n}", "text": f"Articolo {n} sul porto e sui traghetti del mattino."} for n in range(250)]
    dump.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    monkeypatch.setattr(ingest, "ARTICLES_PER_BATCH", 100)
    read, read_when_embedding = [0], []
    reading = ingest.read_articles

    def counted(paths):
        for item in reading(paths):
            read[0] += 1
            yield item

    embed = fake_embedder.embed_passages
    monkeypatch.setattr(ingest, "read_articles", counted)
    monkeypatch.setattr(
        fake_embedder,
        "embed_passages",
        lambda texts, progress=None: (read_when_embedding.append(read[0]), embed(texts, progress))[1],
    )
    heard = []
    report = index_paths([dump], tmp_path / "index", embedder=fake_embedder, progress=lambda *a: heard.append(a))
    assert report.added == 250 and read_when_embedding == [100, 200, 250]  # a batch read, then embedded
    assert heard[-1] == ("embedding", 250, 250)
    assert all(done <= total == 250 for _, done, total in heard)
    assert [done for _, done, _ in heard] == sorted(done for _, done, _ in heard)


def test_rebuild_with_another_model_or_budget(built: Snapshot, index_dir: Path, seeds_copy: Path) -> None:
    other = FakeEmbedder(name="other", dimension=32)
    report = index_paths([seeds_copy], index_dir, embedder=other, rebuild=True, max_tokens=20)
    assert (report.added, report.articles) == (1, 1)
    assert report.passages > 17  # paragraphs of more than 20 words were cut
    found = snapshot(index_dir, other)
    assert (found.manifest.model, found.manifest.dimension, found.manifest.max_tokens) == ("other", 32, 20)
    assert all(row["tokens"] <= 20 for row in found.passages.values())


def test_missing_index(tmp_path: Path) -> None:
    for directory in (tmp_path / "nonexistent", tmp_path):
        with pytest.raises(IndexNotFound) as caught:
            Archive(directory)
        message = str(caught.value)
        assert str(directory) in message
        assert "newsarchive index" in message


def test_missing_index_file(built: Snapshot, index_dir: Path) -> None:
    from indexer.storage import segment

    os.remove(index_dir / "segments" / "000001" / "ids.npy")
    segment._loaded.clear()  # as for a reader in another process  # noqa: SLF001
    with pytest.raises(IndexNotFound, match="ids.npy"):
        Archive(index_dir)


def test_bad_inputs_are_reported_and_good_ones_indexed(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "good.txt").write_text("Volcano erupts\nAsh covered the island of Stromboli.\n", encoding="utf-8")
    (inputs / "binary.txt").write_bytes(b"\x00\x01\x02")
    (inputs / "empty.md").write_text("", encoding="utf-8")
    (inputs / "feed.jsonl").write_text('{"id": "j1", "text": "Glaciers retreat in the Alps."}\n{oops\n')
    index_dir = tmp_path / "index"
    report = index_paths([inputs, tmp_path / "missing.txt"], index_dir, embedder=fake_embedder)
    problems = sorted(f"{Path(p.path).name}:{p.line}" for p in report.problems)
    assert problems == ["binary.txt:None", "empty.md:None", "feed.jsonl:2", "missing.txt:None"]
    assert (report.added, report.articles, report.passages) == (2, 2, 2)
    with Archive(index_dir, embedder=fake_embedder) as archive:
        assert search(archive, "Stromboli ash island", k=1)[0].article_id == "good"
        assert search(archive, "glaciers Alps", k=1)[0].article_id == "j1"


def test_a_rebuild_from_unreadable_input_keeps_the_index(tmp_path: Path, seeds_copy: Path, fake_embedder) -> None:
    directory = tmp_path / "archive"
    index_paths([seeds_copy], directory, embedder=fake_embedder)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    report = index_paths([bad], directory, rebuild=True, embedder=fake_embedder)
    assert len(report.problems) == 1 and (report.articles, report.passages) == (1, 17)
    with Archive(directory, embedder=fake_embedder) as archive:
        assert archive.manifest.passages == 17 and len(archive.vectors) == 17
    report = index_paths([bad], tmp_path / "new", embedder=fake_embedder)
    assert report.problems and not (tmp_path / "new" / "manifest.json").exists()


# search modes


def test_each_mode_finds_the_drone_paragraph(seed_index: Built) -> None:
    with Archive(seed_index.directory, embedder=seed_index.embedder) as archive:
        for mode in ("hybrid", "dense", "lexical"):
            hits = search(archive, DRONE_QUERY, k=3, mode=mode)
            assert hits[0].paragraph == DRONE_PARAGRAPH, mode
            assert [hit.rank for hit in hits] == [1, 2, 3]
            assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_hybrid_score_is_similarity_plus_lexical_evidence(seed_index: Built) -> None:
    with Archive(seed_index.directory, embedder=seed_index.embedder) as archive:
        assert archive.language_means.dominant is not None  # one language, asked in it: plain cosines
        hybrid = search(archive, DRONE_QUERY, k=5)
        lexical = {hit.passage_id: hit.score for hit in search(archive, DRONE_QUERY, k=50, mode="lexical")}
        best = max(lexical.values())
        vector = archive.embedder.embed_queries([DRONE_QUERY])[0]
        for hit in hybrid:
            stored = archive.vectors.vectors([hit.passage_id])[0]
            assert hit.similarity == pytest.approx(float(stored @ vector), abs=1e-5)
            # Evidence within a language is the distance to its best lexical match (zero for that one).
            expected = hit.similarity + lexical.get(hit.passage_id, 0.0) - best
            assert hit.score == pytest.approx(expected, abs=1e-5)
        assert all(hit.similarity is None for hit in search(archive, "MQ-9", k=3, mode="lexical"))


def test_lexical_search_matches_a_code_exactly(seed_index: Built) -> None:
    with Archive(seed_index.directory, embedder=seed_index.embedder) as archive:
        hits = search(archive, "MQ-9", k=5, mode="lexical")
        assert len(hits) == 1 and "MQ-9" in hits[0].text  # only the one paragraph that names it
        assert search(archive, "MQ-10", k=5, mode="lexical") == []


def test_unknown_mode_is_an_error(seed_index: Built) -> None:
    with (
        Archive(seed_index.directory, embedder=seed_index.embedder) as archive,
        pytest.raises(NewsarchiveError, match="unknown search mode 'fuzzy'"),
    ):
        search(archive, "drone", mode="fuzzy")


def test_passage_and_article_languages_are_detected(seed_index: Built) -> None:
    with duckdb.connect(str(seed_index.directory / DATABASE), read_only=True) as db:
        assert db.execute("SELECT DISTINCT language FROM articles").fetchall() == [("it",)]
        languages = db.execute("SELECT DISTINCT language FROM passages").fetchall()
    assert languages == [("it",)]


# segments and commits


def test_each_update_commits_a_new_segment_and_old_readers_keep_theirs(
    built: Snapshot, index_dir: Path, seeds_copy: Path, fake_embedder: FakeEmbedder
) -> None:
    reader = Archive(index_dir, embedder=fake_embedder)  # opened before the updates
    first = reader.manifest
    for number in range(3):
        (seeds_copy / f"extra{number}.txt").write_text(f"Extra {number}\n\nA new paragraph {number}.\n")
        index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    manifest = Manifest.load(index_dir)
    assert manifest.commit == first.commit + 3
    assert [entry.name for entry in manifest.segments] == ["000001", "000002", "000003", "000004"]
    assert [entry.passages for entry in manifest.segments] == [17, 1, 1, 1]  # nothing committed was rewritten
    assert sorted(p.name for p in (index_dir / "commits").iterdir()) == [f"{n:06d}.json" for n in range(1, 5)]
    # The early reader still answers from the commit it opened.
    assert reader.is_current() is False
    assert search(reader, DRONE_QUERY, k=1)[0].paragraph == DRONE_PARAGRAPH
    assert reader.store.counts() == (1, built.manifest.passages)
    latest = reader.latest()
    assert latest.manifest.commit == manifest.commit and latest.embedder is fake_embedder
    assert latest.store.counts() == (4, built.manifest.passages + 3)
    reader.close()
    latest.close()
    assert snapshot(index_dir, fake_embedder).manifest.articles == 4


def test_old_commits_files_go_once_no_reader_can_hold_them(
    built: Snapshot, index_dir: Path, seeds_copy: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexer.ingest.index import optimize
    from indexer.storage import layout

    edit(seeds_copy / SEED.name, "MQ-9 Breacher", "MQ-9 Reaper")
    index_paths([seeds_copy], index_dir, embedder=fake_embedder)  # every row of segment 1 is tombstoned
    assert [entry.name for entry in Manifest.load(index_dir).segments] == ["000002"]
    assert (index_dir / "segments" / "000001").exists()  # a reader may still hold commit 1
    monkeypatch.setattr(layout, "RETAIN_SECONDS", -1)
    monkeypatch.setattr(layout, "RETAIN_COMMITS", 1)
    optimize(index_dir)  # nothing to merge; the writer cleans
    assert sorted(p.name for p in (index_dir / "segments").iterdir()) == ["000002"]
    assert sorted(p.name for p in (index_dir / "commits").iterdir()) == ["000002.json"]
    assert snapshot(index_dir, fake_embedder).manifest.passages == built.manifest.passages


def test_small_segments_are_merged_as_they_pile_up_and_optimize_merges_all(
    built: Snapshot, index_dir: Path, seeds_copy: Path, fake_embedder: FakeEmbedder
) -> None:
    from indexer.ingest.index import optimize, remove_articles
    from indexer.storage.check import check

    for number in range(12):  # a feed's small commits: one article each
        (seeds_copy / f"brief{number}.txt").write_text(f"Brief {number}\n\nShip {number} came in.\n")
        index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    manifest = Manifest.load(index_dir)
    # The seed's segment (17 passages, tier 10-99) and the briefs': ten of one passage each were merged into one.
    assert [entry.passages for entry in manifest.segments] == [17, 10, 1, 1]
    assert check(index_dir) == [] and manifest.passages == 29
    before = snapshot(index_dir, fake_embedder)
    remove_articles(["brief3"], index_dir)
    merged = optimize(index_dir)
    assert len(merged.segments) == 1 and merged.segments[0].deleted == 0 and merged.passages == 28
    after = snapshot(index_dir, fake_embedder)
    assert after.passages == {i: row for i, row in before.passages.items() if row["article_id"] != "brief3"}
    assert check(index_dir) == []
    with Archive(index_dir, embedder=fake_embedder) as archive:
        assert search(archive, DRONE_QUERY, k=1)[0].paragraph == DRONE_PARAGRAPH


def test_a_large_build_commits_as_it_goes_and_merges_what_it_committed(
    tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build commits every ``commit_every`` articles, and merges ten of its commits' segments however large they
    are (up to twenty times a commit): its segments stay few, so its near-copy lookups do not grow with the archive."""
    from indexer.ingest import index
    from indexer.storage import merges
    from indexer.storage.check import check

    monkeypatch.setattr(merges, "AUTOMATIC_UP_TO", 20)  # a feed's merges stop below the build's commits
    monkeypatch.setattr(index, "ARTICLES_PER_BATCH", 10)  # commits fall between batches
    folder, directory = tmp_path / "in", tmp_path / "index"
    folder.mkdir()
    rows = [{"id": f"b{n}", "title": f"Brief {n}", "text": f"Ship {n} came into the harbour."} for n in range(120)]
    (folder / "briefs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    index_paths([folder], directory, embedder=fake_embedder, commit_every=10)
    manifest = Manifest.load(directory)
    assert manifest.commit == 13  # twelve commits of ten articles, and one merge
    assert [entry.passages for entry in manifest.segments] == [100, 10, 10]
    assert check(directory) == [] and manifest.articles == 120
    (folder / "late.txt").write_text("Late report\n\nOne more ship came into the harbour.\n")
    index_paths([folder], directory, embedder=fake_embedder, commit_every=10)  # a commit of one: no merge
    assert [entry.passages for entry in Manifest.load(directory).segments] == [100, 10, 10, 1]
    # A rebuild that commits on its way keeps what its first commits wrote.
    index_paths([folder], directory, embedder=fake_embedder, commit_every=10, rebuild=True)
    rebuilt = Manifest.load(directory)
    assert rebuilt.articles == 121 and check(directory) == []


def _written() -> int:
    lines = Path("/proc/self/io").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("write_bytes"))


def test_adding_one_article_writes_its_segment_and_the_commit_only(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    """Nothing committed is rewritten: the files of the existing segments stay as they were, and what is written
    besides the new segment is the commit and the catalog of views, a few kilobytes."""
    from indexer.storage.layout import size

    folder, directory = tmp_path / "in", tmp_path / "index"
    folder.mkdir()
    paragraphs = [f"Paragraph {n} of report {{n}} on the harbour, the cranes and ship {{n}}." for n in range(5)]
    rows = [{"id": f"r{n}", "title": f"Report {n}", "text": "\n\n".join(paragraphs).format(n=n)} for n in range(600)]
    (folder / "reports.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    index_paths([folder], directory, embedder=fake_embedder)
    assert Manifest.load(directory).passages == 3000
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in directory.rglob("*") if p.is_file()}
    (folder / "late.txt").write_text("Late report\n\nOne more ship came into the harbour.\n")
    detect("A ship came in.")  # py3langid unpacks its model through a 65 MB temporary file, once per process
    written = _written()
    index_paths([folder], directory, embedder=fake_embedder)
    written = _written() - written
    manifest = Manifest.load(directory)
    new_segment = directory / "segments" / manifest.segments[-1].name
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in directory.rglob("*") if p.is_file()}
    changed = sorted(str(p.relative_to(directory)) for p in after if before.get(p) != after[p])
    outside = [name for name in changed if not name.startswith(f"segments/{new_segment.name}/")]
    assert outside == ["archive.duckdb", f"commits/{manifest.commit:06d}.json", "manifest.json"]
    replaced = {directory / "archive.duckdb", directory / "manifest.json"}
    assert all(before[p] == after[p] for p in before if p not in replaced)  # nothing else there was touched
    besides = written - size(new_segment)
    assert 0 < size(new_segment) < 100_000 and besides < 1_000_000, (size(new_segment), besides)


def test_a_dead_writers_leftovers_are_cleaned_and_the_index_stays_usable(
    built: Snapshot, index_dir: Path, seeds_copy: Path, fake_embedder: FakeEmbedder
) -> None:
    staged = index_dir / "segments" / ".staging-000002"
    (staged / "lexical").mkdir(parents=True)
    (staged / "passages.parquet").write_bytes(b"half a file")
    renamed = index_dir / "segments" / "000009"  # renamed into place, but its commit never written
    shutil.copytree(index_dir / "segments" / "000001", renamed)
    (index_dir / "manifest.json.partial").write_text("{half")
    assert snapshot(index_dir, fake_embedder).passages == built.passages  # readers never look there
    index_paths([seeds_copy], index_dir, embedder=fake_embedder, rebuild=True)
    assert not staged.exists() and not renamed.exists() and not (index_dir / "manifest.json.partial").exists()


def test_a_failed_update_leaves_the_current_commit(
    built: Snapshot, index_dir: Path, seeds_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(FakeEmbedder):
        def embed_passages(self, texts, progress=None):
            raise RuntimeError("the model fell over")

    (seeds_copy / "new.txt").write_text("New\n\nSomething happened.\n")
    before = Manifest.load(index_dir)
    with pytest.raises(RuntimeError):
        index_paths([seeds_copy], index_dir, embedder=Broken())
    assert [p.name for p in (index_dir / "segments").iterdir()] == ["000001"]  # no staging left behind
    assert Manifest.load(index_dir) == before
    assert snapshot(index_dir, FakeEmbedder()).passages == built.passages


def test_a_second_writer_is_refused_while_one_writes(built: Snapshot, index_dir: Path, seeds_copy: Path) -> None:
    import fcntl

    from indexer.errors import IndexBusy

    with open(index_dir / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process's lock, as far as flock can tell
        with pytest.raises(IndexBusy, match="being written by another"):
            index_paths([seeds_copy], index_dir, embedder=FakeEmbedder())
    index_paths([seeds_copy], index_dir, embedder=FakeEmbedder())  # free again once released


def test_an_index_of_the_old_flat_layout_asks_for_a_rebuild(tmp_path: Path, seeds_copy: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"schema_version": 2, "model": "fake-hash", "dimension": 64,
                                                   "query_prompt": "", "passage_prompt": "", "max_tokens": 256,
                                                   "articles": 1, "passages": 1, "built_at": "x",
                                                   "index_type": "x"}))  # fmt: skip
    (old / DATABASE).write_bytes(b"old")
    with pytest.raises(IndexMismatch, match="rebuild"):
        Archive(old, embedder=FakeEmbedder())
    with pytest.raises(IndexMismatch, match="rebuild"):
        index_paths([seeds_copy], old, embedder=FakeEmbedder())
    index_paths([seeds_copy], old, embedder=FakeEmbedder(), rebuild=True)
    assert snapshot(old, FakeEmbedder()).manifest.articles == 1
    with duckdb.connect(str(old / DATABASE), read_only=True) as db:  # the catalog of views replaced the old file
        assert db.execute("SELECT count(*) FROM passages").fetchone()[0] == 17


def _after_edit_and_check(seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder) -> Snapshot:
    """Edit the seed, update the index, and check it: the drone paragraph is found under its new words."""
    from indexer.storage.check import check

    edit(seeds_copy / SEED.name, "MQ-9 Breacher", "MQ-9 Reaper")
    report = index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    assert report.embedded == 17
    assert check(index_dir) == []
    with Archive(index_dir, embedder=fake_embedder) as archive:
        assert search(archive, DRONE_QUERY.replace("Breacher", "Reaper"), k=1)[0].paragraph == DRONE_PARAGRAPH
    return snapshot(index_dir, fake_embedder)


def test_a_large_archive_gets_an_approximate_index_that_updates_in_place(
    seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("indexer.indexes.vectors.EXACT_UP_TO", 10)  # the seed's 17 passages count as "large"
    monkeypatch.setattr("indexer.indexes.vectors.APPROXIMATE_FROM", 10)
    index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    assert Manifest.load(index_dir).index_type == "IVF16,RaBitQ"
    with Archive(index_dir, embedder=fake_embedder) as archive:
        assert not archive.vectors.exact
        assert search(archive, DRONE_QUERY, k=1)[0].paragraph == DRONE_PARAGRAPH
    after = _after_edit_and_check(seeds_copy, index_dir, fake_embedder)
    assert after.manifest.index_type == "IVF16,RaBitQ" and len(after.faiss_ids) == 17


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_an_approximate_index_ranks_by_exact_similarity(
    seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    import faiss
    import numpy as np

    monkeypatch.setattr("indexer.indexes.vectors.EXACT_UP_TO", 10)
    monkeypatch.setattr("indexer.indexes.vectors.APPROXIMATE_FROM", 10)
    index_paths([seeds_copy], index_dir, embedder=fake_embedder)
    with Archive(index_dir, embedder=fake_embedder) as archive:
        ids, vectors = archive.store.vectors_of()
        query = fake_embedder.embed_queries([DRONE_QUERY])[0]
        exact = dict(zip(ids.tolist(), (vectors @ query).tolist()))
        # The index's 8-bit vectors give other cosines; a search reports the stored vectors' ones.
        decoded = archive.vectors.parts[0].index.vectors(ids) @ query
        assert np.abs(decoded - vectors @ query).max() > 1e-4
        threads = faiss.omp_get_max_threads()
        hits = search(archive, DRONE_QUERY, k=5, mode=mode)
        assert faiss.omp_get_max_threads() == threads  # a search leaves FAISS's thread count as it was
        assert [hit.similarity for hit in hits] == pytest.approx([exact[hit.passage_id] for hit in hits], abs=1e-6)
        if mode == "dense":  # ordered by exact similarity (16 cells for 17 passages: a search finds only a few)
            assert [hit.similarity for hit in hits] == sorted((hit.similarity for hit in hits), reverse=True)
            assert hits[0].passage_id == max(exact, key=exact.get)


def test_a_search_process_caps_duckdbs_block_cache(
    built: Snapshot, index_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    with Archive(index_dir, embedder=fake_embedder) as archive:
        limit = archive.store.db.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.endswith("MiB") and float(limit.split()[0]) * 2**20 < 600e6, limit


def test_a_vector_index_asked_for_is_kept_and_changing_it_embeds_nothing(
    built: Snapshot, seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    batches = len(fake_embedder.batches)
    report = index_paths([seeds_copy], index_dir, embedder=fake_embedder, vector_index="HNSW8")
    assert (report.embedded, len(fake_embedder.batches)) == (0, batches)  # rebuilt from the stored vectors
    manifest = Manifest.load(index_dir)
    assert (manifest.vector_index, manifest.index_type) == ("HNSW8", "HNSW8")
    # HNSW cannot remove vectors, and need not: an edit tombstones the old passages, and the setting stays.
    after = _after_edit_and_check(seeds_copy, index_dir, fake_embedder)
    assert after.manifest.index_type == "HNSW8" and sorted(after.faiss_ids) == sorted(after.passages)
    index_paths([seeds_copy], index_dir, embedder=fake_embedder, vector_index="auto")
    assert Manifest.load(index_dir).index_type == "Flat"


def test_a_vector_index_faiss_cannot_build_is_refused_and_the_index_kept(
    built: Snapshot, seeds_copy: Path, index_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    with pytest.raises(NewsarchiveError, match="needs at least 1,024 passages"):
        index_paths([seeds_copy], index_dir, embedder=fake_embedder, vector_index="IVF1024,SQ8")
    assert snapshot(index_dir, fake_embedder).manifest.index_type == "Flat"


def test_articles_are_looked_up_by_id_in_the_row_groups_holding_them(
    tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few articles are read from their row groups (bodies from small compressed batches, or from the Parquet
    file in a segment written before there were body lookups), whatever the groups' and batches' sizes."""
    from indexer.storage import Snapshot, segment

    monkeypatch.setattr(segment, "ARTICLE_ROWS", 4)
    monkeypatch.setattr(segment, "GROUPS_READ", 2)
    monkeypatch.setattr(segment, "BLOCK_ROWS", 3)
    monkeypatch.setattr(segment, "READ_ROWS", 5)
    folder = tmp_path / "in"
    folder.mkdir()
    for number in range(23):
        (folder / f"a{number:02d}.md").write_text(f"# Title {number}\n\nBody number {number} of this test.\n")
    index_paths([folder], tmp_path / "index", embedder=fake_embedder)
    wanted = ["a21", "a00", "a07", "a08", "a22", "nowhere"]
    with Snapshot(tmp_path / "index") as snapshot:
        rows = {row["article_id"]: row["title"] for row in snapshot.articles(wanted, ["title"])}
        assert rows == {a: f"Title {int(a[1:])}" for a in wanted[:-1]}
        (name,) = snapshot.paths
        texts = {a: body for a, body, _ in snapshot.article_texts({name: wanted})}
        assert texts == {a: f"Body number {int(a[1:])} of this test." for a in wanted[:-1]}
        ids = snapshot.loaded[name].ids[[22, 0, 7, 8, 2, 1]].tolist()  # passages' text from batches of three too
        shown = snapshot.hits(ids)
        assert [shown[i]["text"] for i in ids] == [f"Body number {n} of this test." for n in (22, 0, 7, 8, 2, 1)]
        (snapshot.paths[name] / segment.BODY_BLOCKS).unlink()
        segment._loaded.clear()
    with Snapshot(tmp_path / "index") as snapshot:
        assert {a: body for a, body, _ in snapshot.article_texts({name: wanted})} == texts


def test_a_hit_s_text_is_its_passage_s_text_sliced_from_its_article_s_body(
    tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup files keep the text once, in the bodies: every passage shown equals passages.text, whatever the
    script, headings, blank lines and characters outside the Basic Multilingual Plane, in any order asked."""
    from indexer.storage import Snapshot, segment

    monkeypatch.setattr(segment, "BLOCK_ROWS", 2)
    bodies = {
        "ar": "## الأخبار\n\nقال المتحدث إن المحادثات ستستمر. 🙂\n\n" + "جملة أخرى طويلة. " * 60,
        "ru": "Москва — столица России.\r\n\r\n" + "Ещё одно предложение. " * 80 + "\n\n### Итоги\n\nКонец.",
        "ja": "東京は日本の首都です。𠮷野家で食べた。" * 40,
        "en": "\n\n  Leading blanks.\n\n" + "A sentence of the wire. " * 70,
    }
    source = tmp_path / "articles.jsonl"
    rows = [{"id": key, "title": key.upper(), "text": text} for key, text in bodies.items()]
    source.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows), encoding="utf-8")
    index_paths([source], tmp_path / "index", embedder=fake_embedder)
    with duckdb.connect(str(tmp_path / "index" / DATABASE), read_only=True) as db:
        stored = dict(db.execute("SELECT passage_id, text FROM passages").fetchall())
    assert len(stored) > len(bodies)  # long articles: several passages each
    with Snapshot(tmp_path / "index") as snapshot:
        (path,) = snapshot.paths.values()
        assert (path / segment.BODY_BLOCKS).exists() and not (path / segment.TEXTS).exists()
        asked = sorted(stored, reverse=True) + sorted(stored)[::2]
        shown = snapshot.hits(asked)
    assert {passage_id: hit["text"] for passage_id, hit in shown.items()} == stored


@pytest.mark.parametrize("read_rows", [7, 65_536])
def test_passage_texts_are_read_back_from_their_compressed_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_rows: int
) -> None:
    """Compressed blocks give back each text as the Parquet file holds it, whatever its script, empty ones and a
    last block shorter than the others included, in any order asked, however the file was read writing it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from indexer.storage import segment

    monkeypatch.setattr(segment, "READ_ROWS", read_rows)

    texts = ["", "Москва — столица", "東京は日本の首都です", "plain", "مرحبا بالعالم", "x" * 5000, "", "🙂 end"] * 9
    pq.write_table(pa.table({"text": texts[:-1]}), tmp_path / segment.PASSAGES, row_group_size=5)
    (tmp_path / "lookup").mkdir()
    segment.write_blocks(tmp_path / segment.PASSAGES, "text", tmp_path / segment.TEXTS)
    write_format7_texts(texts[:-1], tmp_path / "format7.arrow")
    order = [70, 0, 1, 2, 33, 32, 31, 5, 5, 64, 63, 1, 70, 15, 16, 17]
    for path, mapped in ((segment.TEXTS, False), (segment.TEXTS, True), ("format7.arrow", True)):
        read = segment.CompressedTexts(tmp_path / path, mapped=mapped)
        assert read.table(order).column("text").to_pylist() == [texts[i] for i in order]
        assert read.table(list(range(71))).column("text").to_pylist() == texts[:-1]
