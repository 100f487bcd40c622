"""Duplicate stories: exact copies, edited wire copy and translations group; other reports of the same event do not.

The fixtures (tests/fixtures/stories, and the two pages of tests/fixtures/web) were written for these tests: one
story in five articles (an Italian page, an exact copy, an edited copy, an English translation and an edited English
copy), a second story in Italian and English, and three reports that share their events, names and numbers but not
their text (the seed article among them).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.ingest.index import index_paths, remove_articles
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import search
from indexer.storage import duplicates
from indexer.storage.duplicates import Fingerprint, Sketch, Sketches, _components, compare
from indexer.storage.edit import write_sql
from tests.conftest import SEED, FakeEmbedder

ROOT = Path(__file__).parent
FIRST_STORY = ("corriere-drone", "eco-drone", "gazzetta-drone", "harbour-times-drone", "wire-drone-en")
SECOND_STORY = ("corriere-video", "harbour-video")
EXPECTED_PAIRS = {*itertools.combinations(FIRST_STORY, 2), SECOND_STORY}
WIRE = (
    "A US MQ-9 Reaper drone crashed into the Black Sea on Tuesday morning after it was intercepted by two Russian "
    "Su-27 fighter jets, the US military's European Command said. Russia denied any contact."
)
ITALIAN_WIRE = (
    "Un drone statunitense MQ-9 Reaper è precipitato martedì mattina nel Mar Nero dopo essere stato intercettato da "
    "due caccia russi Su-27, ha detto il comando europeo delle forze armate americane. La Russia nega ogni contatto."
)


def _pairs(directory: Path) -> dict[tuple[str, str], str]:
    with duckdb.connect(str(directory / "archive.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT article_id, duplicate_id, kind FROM duplicates").fetchall()
    return {(a, b): kind for a, b, kind in rows}


def _stories(directory: Path) -> dict[str, str]:
    with duckdb.connect(str(directory / "archive.duckdb"), read_only=True) as db:
        return dict(db.execute("SELECT article_id, story_id FROM articles").fetchall())


def _fingerprint(article_id: str, text: str, language: str | None = "en") -> Fingerprint:
    return Fingerprint.of(article_id, text, language)


def _no_vectors(article_id: str) -> np.ndarray:
    raise AssertionError("same-language pairs are decided on their text")


def test_exact_copies_match_whatever_their_case_and_spacing() -> None:
    match = compare(_fingerprint("a", WIRE), _fingerprint("b", "  " + WIRE.upper().replace(" ", "\n")), _no_vectors)
    assert (match.kind, match.similarity) == ("exact", 1.0)


def test_edited_copy_matches_as_near() -> None:
    edited = WIRE.replace("the US military's European Command said", "according to European Command")
    match = compare(_fingerprint("a", WIRE), _fingerprint("b", edited + " Washington protested."), _no_vectors)
    assert match.kind == "near" and 0.5 <= match.similarity < 1


CHINESE_WIRE = (
    "美国欧洲司令部称，一架美国MQ-9无人机周二上午在黑海上空被两架俄罗斯Su-27战斗机拦截后坠毁。俄罗斯否认有任何接触。"
)


def test_copies_in_a_script_without_spaces_match_character_by_character() -> None:
    # Read as words between spaces, each clause was one "word": too few to compare, and one edit broke a clause.
    copy = _fingerprint("b", CHINESE_WIRE.replace("，", "， "), "zh")
    assert compare(_fingerprint("a", CHINESE_WIRE, "zh"), copy, _no_vectors).kind == "exact"
    edited = CHINESE_WIRE.replace("周二上午", "周二").replace("任何接触", "接触") + "华盛顿提出抗议。"
    match = compare(_fingerprint("a", CHINESE_WIRE, "zh"), _fingerprint("b", edited, "zh"), _no_vectors)
    assert match.kind == "near" and 0.5 <= match.similarity < 1
    other = "俄罗斯国防部称，两架战斗机在黑海上空进行了例行飞行，没有与任何美国无人机接触。美方的说法不实。"
    assert compare(_fingerprint("a", CHINESE_WIRE, "zh"), _fingerprint("c", other, "zh"), _no_vectors) is None


def test_templated_reports_with_other_numbers_do_not_match() -> None:
    report = "The FTSE 100 closed {} points higher at {}, with miners leading and banks lagging behind the market."
    first, second = report.format(12, 7410) * 2, report.format(35, 7432) * 2
    assert compare(_fingerprint("monday", first), _fingerprint("tuesday", second), _no_vectors) is None


def test_too_short_texts_never_match() -> None:
    assert compare(_fingerprint("a", "Drone down."), _fingerprint("b", "Drone down."), _no_vectors) is None


def test_a_translation_needs_aligned_passages_and_the_same_numbers() -> None:
    italian = _fingerprint("it", ITALIAN_WIRE, "it")
    english = _fingerprint("en", WIRE, "en")
    aligned = {"it": np.array([[1.0, 0.0], [0.6, 0.8]]), "en": np.array([[0.96, 0.28]])}
    unaligned = {"it": np.array([[1.0, 0.0]]), "en": np.array([[0.8, 0.6]])}
    assert compare(italian, english, aligned.__getitem__).kind == "translation"
    assert compare(italian, english, unaligned.__getitem__) is None
    other_numbers = _fingerprint("en2", WIRE.replace("MQ-9", "MQ-1").replace("Su-27", "Su-35"), "en")
    assert compare(italian, other_numbers, {**aligned, "en2": aligned["en"]}.__getitem__) is None


def _sketched(*fingerprints: Fingerprint) -> Sketches:
    sketches = Sketches()
    for fingerprint in fingerprints:
        sketches.add(fingerprint.article_id, Sketch.of(fingerprint))
    return sketches


def test_sketches_pass_every_pair_that_can_match_and_few_others() -> None:
    """Whatever the sketches let through is compared in full, so a match may never be stopped by them: edited copies
    at Jaccard just above NEAR pass, as do copies, translations and every pair the full comparison matches."""
    rng = np.random.default_rng(0)
    vocabulary = [f"w{n}" for n in range(5000)]
    fingerprints, near, unrelated = [], [], []
    for n in range(300):
        words = list(rng.choice(vocabulary, 300))
        edited = list(words)
        for place in rng.choice(300, 26, replace=False):  # a quarter of the shingles changed: Jaccard 0.5-0.6
            edited[place] = f"edit{n}-{place}"
        other = list(rng.choice(vocabulary, 300))
        fingerprints += [_fingerprint(f"a{n}", " ".join(words)), _fingerprint(f"b{n}", " ".join(edited))]
        fingerprints.append(_fingerprint(f"c{n}", " ".join(other)))
        near.append((f"a{n}", f"b{n}"))
        unrelated.append((f"a{n}", f"c{n}"))
    by_id = {fingerprint.article_id: fingerprint for fingerprint in fingerprints}
    jaccard = [compare(by_id[a], by_id[b], _no_vectors) for a, b in near]
    assert all(match is not None and match.kind == "near" for match in jaccard)
    assert min(match.similarity for match in jaccard) < duplicates.NEAR + 0.1  # close to the line, not far above
    sketches = _sketched(*fingerprints)
    assert sketches.possible(*zip(*near)).all()
    assert not sketches.possible(*zip(*unrelated)).any()
    italian, english = _fingerprint("it", ITALIAN_WIRE, "it"), _fingerprint("en", WIRE, "en")
    copy, short = _fingerprint("copy", WIRE.upper(), "en"), _fingerprint("short", "Drone down.", "en")
    sketches = _sketched(italian, english, copy, short)
    assert sketches.possible(["it", "en", "en"], ["en", "copy", "short"]).tolist() == [True, True, False]


def test_a_writers_sketches_forget_and_keep_the_newest(monkeypatch) -> None:
    monkeypatch.setattr(duplicates, "SKETCHES_KEPT", 4)
    sketches = Sketches()
    texts = {f"a{n}": f"Report {n} " + WIRE for n in range(6)}
    for article_id, text in texts.items():
        sketches.add(article_id, Sketch.of(_fingerprint(article_id, text)))
    assert [article_id in sketches for article_id in texts] == [False, False, True, True, True, True]
    sketches.forget(["a3"])
    assert "a3" not in sketches and sketches.possible(["a4"], ["a5"]).tolist() == [True]


def test_pairs_that_connect_make_one_story() -> None:
    groups = _components([("a", "b"), ("c", "d"), ("b", "e")])
    assert sorted(sorted(group) for group in groups) == [["a", "b", "e"], ["c", "d"]]


def test_fixtures_group_into_their_stories_and_nothing_else(real_stories_index: Path) -> None:
    pairs = _pairs(real_stories_index)
    found = set(pairs)
    precision = len(found & EXPECTED_PAIRS) / len(found)
    recall = len(found & EXPECTED_PAIRS) / len(EXPECTED_PAIRS)
    assert (precision, recall) == (1.0, 1.0), sorted(found ^ EXPECTED_PAIRS)
    kinds = Counter(pairs.values())
    assert pairs[("corriere-drone", "eco-drone")] == "exact"
    assert pairs[("corriere-drone", "gazzetta-drone")] == pairs[("harbour-times-drone", "wire-drone-en")] == "near"
    assert pairs[SECOND_STORY] == pairs[("corriere-drone", "harbour-times-drone")] == "translation"
    assert kinds == {"exact": 1, "near": 3, "translation": 7}
    story_of = _stories(real_stories_index)
    # A story is named after its earliest article: the English page (16:05 UTC), the English video report.
    assert {story_of[a] for a in FIRST_STORY} == {"harbour-times-drone"}
    assert {story_of[a] for a in SECOND_STORY} == {"harbour-video"}
    alone = set(story_of) - set(FIRST_STORY) - set(SECOND_STORY)
    assert alone == {"corriere-rottami", "grano-odessa", SEED.stem} and all(story_of[a] == a for a in alone)


def test_held_out_fixtures_group_the_same_way(tmp_path: Path, real_model) -> None:
    """Fixtures written after the thresholds were set: a strike report in Italian, its English and Spanish
    translations and an edited English copy, beside a follow-up and a comment that share its numbers."""
    report = index_paths([ROOT / "fixtures" / "stories-heldout"], tmp_path / "index", embedder=real_model)
    assert (report.articles, report.problems) == (6, [])
    story = ("genoa-strike", "genova-huelga", "genova-sciopero", "harbour-genoa-strike")
    pairs = _pairs(tmp_path / "index")
    assert set(pairs) == set(itertools.combinations(story, 2)), pairs
    assert pairs[("genoa-strike", "harbour-genoa-strike")] == "near"
    assert pairs[("genova-huelga", "genova-sciopero")] == "translation"


def test_search_reads_a_story_in_one_article_and_lists_the_others(real_stories_index: Path, real_model) -> None:
    with Archive(real_stories_index, embedder=real_model) as archive:
        hits = search(archive, "what happened to the MQ-9 drone", k=8)
        # Stories and their articles come from the stories and lookup files: a DuckDB query over every duplicate
        # pair ran out of a search process's memory at 3M passages.
        assert "store" not in archive.__dict__
    first = [hit for hit in hits if hit.article_id in FIRST_STORY]
    assert first and {hit.article_id for hit in first} == {first[0].article_id}  # one article speaks for the story
    also = {d.article_id for d in first[0].also_in}
    assert also == set(FIRST_STORY) - {first[0].article_id}
    assert [d.published for d in first[0].also_in] == sorted(d.published for d in first[0].also_in)
    assert "Corriere del Porto (it) 2023-03-14" in first[0].elsewhere()
    assert len({hit.story_id for hit in hits}) >= 4  # the other reports still come through
    alone = [hit for hit in hits if hit.article_id == "corriere-rottami"]
    assert alone and not alone[0].also_in


def test_a_translation_added_later_joins_the_story_and_leaves_it_when_removed(tmp_path: Path, real_model) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(ROOT / "fixtures" / "web" / "corriere-drone.html", folder)
    shutil.copy(ROOT / "fixtures" / "stories" / "corriere-rottami.md", folder)
    index_paths([folder], tmp_path / "index", embedder=real_model)
    assert _pairs(tmp_path / "index") == {}
    shutil.copy(ROOT / "fixtures" / "web" / "harbour-times-drone.html", folder)
    report = index_paths([folder], tmp_path / "index", embedder=real_model)
    assert (report.added, report.unchanged) == (1, 2)
    assert _pairs(tmp_path / "index") == {("corriere-drone", "harbour-times-drone"): "translation"}
    assert _stories(tmp_path / "index")["corriere-drone"] == "harbour-times-drone"
    remove_articles(["harbour-times-drone"], tmp_path / "index")
    assert _pairs(tmp_path / "index") == {}
    assert _stories(tmp_path / "index")["corriere-drone"] == "corriere-drone"


def test_stories_can_be_merged_and_split_in_sql(tmp_path: Path, use_fake_model: FakeEmbedder) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "one.md").write_text(f"# One\n\n{WIRE}\n", encoding="utf-8")
    (folder / "two.md").write_text(f"# Two\n\n{WIRE}\n", encoding="utf-8")
    (folder / "three.md").write_text("# Three\n\nSomething else entirely, about the harbour and its ships.\n")
    index_paths([folder], tmp_path / "index", embedder=use_fake_model)
    assert _pairs(tmp_path / "index") == {("one", "two"): "exact"}
    write_sql(tmp_path / "index", "INSERT INTO duplicates VALUES ('three', 'two', 'by hand', 1)")
    assert set(_stories(tmp_path / "index").values()) == {"one"}
    write_sql(tmp_path / "index", "DELETE FROM duplicates WHERE article_id = 'one'")
    assert _stories(tmp_path / "index") == {"one": "one", "two": "three", "three": "three"}
    result = CliRunner().invoke(cli, ["search", "--json", "-d", str(tmp_path / "index"), "Reaper drone"])
    hits = {hit["article_id"]: hit for hit in json.loads(result.output)["hits"]}
    assert hits["one"]["also_in"] == [] and "three" not in hits
    assert [(d["article_id"], d["title"]) for d in hits["two"]["also_in"]] == [("three", "Three")]


def test_copies_in_different_segments_of_one_build_are_one_story(
    tmp_path: Path, use_fake_model: FakeEmbedder, monkeypatch
) -> None:
    """A build that writes several segments finds pairs across them (from the newer side), in either order."""
    from indexer.ingest import index as ingest
    from indexer.storage import Manifest, writer

    monkeypatch.setattr(ingest, "ARTICLES_PER_BATCH", 1)
    monkeypatch.setattr(writer, "SEGMENT_PASSAGES", 1)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.md").write_text(f"# A\n\n{WIRE}\n", encoding="utf-8")
    (folder / "b.md").write_text("# B\n\nSomething else entirely, about the harbour and its ships.\n")
    (folder / "c.md").write_text(f"# C\n\n{WIRE}\n", encoding="utf-8")
    index_paths([folder], tmp_path / "index", embedder=use_fake_model)
    assert len(Manifest.load(tmp_path / "index").segments) == 3
    assert _pairs(tmp_path / "index") == {("a", "c"): "exact"}


def test_a_build_of_several_approximate_segments_trains_once_and_finds_copies_across_them(
    tmp_path: Path, use_fake_model: FakeEmbedder, monkeypatch
) -> None:
    """The segments one build writes share one trained index's cells; its near-copy lookups, which find a query's
    cells once for them all, still pair copies in the first and last segments, and ``check`` agrees."""
    from indexer.ingest import index as ingest
    from indexer.storage import Manifest, Snapshot, writer
    from indexer.storage.check import check

    monkeypatch.setattr(ingest, "ARTICLES_PER_BATCH", 20)
    monkeypatch.setattr(writer, "SEGMENT_PASSAGES", 100)
    words = np.random.default_rng(0).integers(0, 1_000_000, (300, 30))
    rows = [
        {"id": f"n{n:03d}", "title": f"Note {n}", "text": " ".join(f"w{word}" for word in words[n])} for n in range(300)
    ]
    rows[0]["text"] = rows[299]["text"] = WIRE
    source = tmp_path / "notes.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    index_paths([source], tmp_path / "index", embedder=use_fake_model, vector_index="IVF4,Flat")
    manifest = Manifest.load(tmp_path / "index")
    assert [entry.index_type for entry in manifest.segments] == ["IVF4,Flat"] * 3
    with Snapshot(tmp_path / "index", manifest) as snapshot:
        assert len({part.index.cells_key for part in snapshot.vectors.parts}) == 1
    assert _pairs(tmp_path / "index") == {("n000", "n299"): "exact"}
    assert check(tmp_path / "index") == []


def test_stories_follow_every_kind_of_commit_and_check_agrees(tmp_path: Path, use_fake_model: FakeEmbedder) -> None:
    """A commit computes again only the stories it touches; after each one they equal a recomputation from the
    duplicates table (``check``), and a stories file that disagrees is reported."""
    from indexer.storage import Manifest
    from indexer.storage.check import check

    folder, index = tmp_path / "in", tmp_path / "index"
    folder.mkdir()
    other = "Something else entirely, about the harbour, its ships and the new lighthouse keeper's long night."

    def write(name: str, text: str) -> None:
        (folder / f"{name}.md").write_text(f"# {name}\n\n{text}\n", encoding="utf-8")

    def stories() -> dict[str, str]:
        assert check(index) == []
        return {a: s for a, s in _stories(index).items() if a != s}

    write("one", WIRE), write("two", WIRE), write("lone", other)
    index_paths([folder], index, embedder=use_fake_model)
    assert stories() == {"two": "one"}
    write("three", WIRE)  # joins the story
    index_paths([folder], index, embedder=use_fake_model)
    assert stories() == {"two": "one", "three": "one"}
    write("one", other + " A second line.")  # its first article changes: the others stay one story
    index_paths([folder], index, embedder=use_fake_model)
    assert stories() == {"two": "three"}
    remove_articles(["two"], index)
    (folder / "two.md").unlink()
    assert stories() == {}
    write("one", WIRE)  # back as it was: a story again with three
    index_paths([folder], index, embedder=use_fake_model)
    assert stories() == {"three": "one"}
    write_sql(index, "DELETE FROM duplicates WHERE duplicate_id = 'three'")
    assert stories() == {}
    write_sql(index, "INSERT INTO duplicates VALUES ('lone', 'three', 'by hand', 1)")
    assert stories() == {"three": "lone"}

    stories_file = index / "stories" / Manifest.load(index).stories  # one that says otherwise is found
    pq.write_table(pa.table({"article_id": ["three"], "story_id": ["one"]}), stories_file)
    problems = check(index)
    assert len(problems) == 1 and "story_id disagrees with the duplicates table" in problems[0]
