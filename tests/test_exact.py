"""The exact query language: parsing, matching against hand-counted fixtures, coverage against plain SQL."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.cli.main import cli
from indexer.exact import match
from indexer.exact.counts import coverage, facets, matches
from indexer.exact.query import QueryError, parse
from indexer.ingest.index import index_paths
from indexer.storage import Snapshot

from .conftest import FakeEmbedder

DATED = Path(__file__).parent / "fixtures" / "dated" / "articles.jsonl"


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("dated") / "archive"
    index_paths([DATED], directory, embedder=FakeEmbedder())
    return directory


# Counted by hand from tests/fixtures/dated/articles.jsonl.
CASES = {
    "drone": {"d01", "d02", "d04", "d05", "d09", "d11"},  # drone, drones; Italian drone, droni (stem dron)
    "DRONES": {"d01", "d02", "d09", "d11"},  # any case; but Italian stems "drones" as itself, not as "dron"
    '"Black Sea"': {"d01", "d10"},
    '"mar nero"': {"d04", "d12"},
    "drone -exercise": {"d01", "d02", "d04", "d05", "d11"},
    "drone NOT exercise": {"d01", "d02", "d04", "d05", "d11"},
    'drone AND source:"Corriere del Porto"': {"d04", "d05"},
    "language:ru": {"d07", "d08"},
    "published:2025-01": {"d01", "d02", "d03", "d04", "d07"},
    "published:2025-01-03": {"d01", "d02", "d07"},  # d04 is 2025-01-04 09:00 UTC
    "published:2025-03-01..2025-03-15": {"d08", "d09", "d10"},
    "published:..2025-01-03": {"d01", "d02", "d07"},
    "author:lee": {"d01", "d03", "d10"},
    "title:drone*": {"d01", "d02", "d04", "d05", "d09"},
    'title:"black sea"': {"d01", "d10"},
    "MQ-9": {"d01", "d04", "d07"},
    "(grain OR grano) Odessa": {"d02", "d05", "d10", "d12"},
    'NOT source:"Harbour Times"': {"d04", "d05", "d06", "d07", "d08", "d12"},
    "ferry OR traghetti OR паромов": {"d03", "d06", "d08"},
    "dron*": {"d01", "d02", "d04", "d05", "d09", "d11"},
    "беспилотник": {"d07"},
    "drone published:2025-01 -language:it": {"d01", "d02"},
    "submarine": set(),
}


@pytest.fixture(params=["from the lookup files", "scanning every article"])
def candidates(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a match list is read: the few articles a query bounds, or the whole ``_articles`` view."""
    if request.param == "scanning every article":
        monkeypatch.setattr(match, "CANDIDATES", -1)
    return request.param


@pytest.mark.parametrize("query", CASES)
def test_queries_match_the_articles_counted_by_hand(dated: Path, query: str, candidates: str) -> None:
    with Snapshot(dated) as snapshot:
        found = matches(snapshot, query)
        faceted = facets(snapshot, query)
    assert set(found.column("article_id").to_pylist()) == CASES[query]
    assert sum(faceted["source"].column("count").to_pylist()) == len(CASES[query])


def test_an_updated_article_is_matched_as_it_now_reads(tmp_path: Path, candidates: str) -> None:
    directory, changed = tmp_path / "archive", tmp_path / "articles.jsonl"
    changed.write_bytes(DATED.read_bytes())  # the file that owns the articles is what changes
    index_paths([changed], directory, embedder=FakeEmbedder())
    rows = [json.loads(line) for line in DATED.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        if row["id"] == "d01":
            row["title"], row["text"] = (row[k].replace("Black Sea", "Baltic") for k in ("title", "text"))
        if row["id"] == "d10":
            row["source"] = "Corriere del Porto"
    changed.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    index_paths([changed], directory, embedder=FakeEmbedder())
    with Snapshot(directory) as snapshot:
        assert matches(snapshot, '"black sea"').column("article_id").to_pylist() == ["d10"]
        found = matches(snapshot, '"black sea" source:"Corriere del Porto"')
        assert found.column("article_id").to_pylist() == ["d10"]
        assert found.column("source").to_pylist() == ["Corriere del Porto"]


def test_matches_come_newest_first_or_by_relevance_with_their_passage(dated: Path) -> None:
    with Snapshot(dated) as snapshot:
        by_date = matches(snapshot, "drone").to_pylist()
        by_relevance = matches(snapshot, "drone", sort="relevance").to_pylist()
    dated_ones = [row["published"] for row in by_date if row["published"] is not None]
    assert dated_ones == sorted(dated_ones, reverse=True)
    assert by_date[-1]["article_id"] == "d11"  # undated last
    scores = [row["score"] for row in by_relevance]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert all("dron" in row["text"].lower() for row in by_relevance)  # the cited passage holds the word


def test_coverage_equals_a_plain_group_by(dated: Path) -> None:
    wanted = sorted(CASES["drone"])
    with duckdb.connect(str(dated / "archive.duckdb"), read_only=True) as db:
        expected = db.execute(
            "SELECT CAST(date_trunc('month', published AT TIME ZONE 'UTC') AS DATE) AS period, "
            "count(*) FILTER (WHERE article_id IN (SELECT unnest(?))) AS matching, count(*) AS total "
            "FROM articles WHERE published IS NOT NULL GROUP BY 1 ORDER BY 1",
            [wanted],
        ).fetchall()
        by_source = db.execute(
            "SELECT CAST(date_trunc('week', published AT TIME ZONE 'UTC') AS DATE), source, "
            "count(*) FILTER (WHERE article_id IN (SELECT unnest(?))), count(*) "
            "FROM articles WHERE published IS NOT NULL AND source = 'Harbour Times' GROUP BY 1, 2 ORDER BY 1, 2",
            [wanted],
        ).fetchall()
    with Snapshot(dated) as snapshot:
        months = coverage(snapshot, "drone", by="month").to_pylist()
        weeks = coverage(snapshot, "drone", by="week", sources=["harbour times"], by_source=True).to_pylist()
    assert [(r["period"], r["matching"], r["total"]) for r in months] == expected
    assert [r["share"] for r in months] == [round(m / t, 6) for _, m, t in expected]
    assert [(r["period"], r["source"], r["matching"], r["total"]) for r in weeks] == by_source


def test_facets_count_the_matches_by_source_language_and_day(dated: Path) -> None:
    with Snapshot(dated) as snapshot:
        found = {name: table.to_pylist() for name, table in facets(snapshot, "drone").items()}
    assert found["source"] == [{"value": "Harbour Times", "count": 4}, {"value": "Corriere del Porto", "count": 2}]
    assert {row["value"]: row["count"] for row in found["language"]} == {"en": 4, "it": 2}
    assert sum(row["count"] for row in found["day"]) == 6


def test_a_deleted_article_is_not_matched(tmp_path: Path) -> None:
    from indexer.ingest.index import remove_articles

    directory = tmp_path / "archive"
    index_paths([DATED], directory, embedder=FakeEmbedder())
    remove_articles(["d01"], directory)
    with Snapshot(directory) as snapshot:
        assert set(matches(snapshot, '"black sea" OR MQ-9').column("article_id").to_pylist()) == {"d04", "d07", "d10"}


def test_a_chinese_word_needs_all_its_pairs_of_characters(tmp_path: Path) -> None:
    articles = [
        {"id": "z1", "title": "访问", "text": "泽连斯基总统访问了华盛顿。" * 5, "language": "zh"},
        {"id": "z2", "title": "比赛", "text": "泽连的球队赢得了比赛，斯基没有参加。" * 5, "language": "zh"},
    ]
    source = tmp_path / "zh.jsonl"
    source.write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in articles) + "\n", encoding="utf-8")
    index_paths([source], tmp_path / "archive", embedder=FakeEmbedder())
    with Snapshot(tmp_path / "archive") as snapshot:
        # z2 holds 泽连 and 斯基 but not 连斯: it does not hold the name.
        assert matches(snapshot, "泽连斯基").column("article_id").to_pylist() == ["z1"]
        assert sorted(matches(snapshot, "泽连").column("article_id").to_pylist()) == ["z1", "z2"]


@pytest.mark.parametrize(
    ("query", "where", "reason"),
    [
        ("(drone", 6, '"(" is never closed'),
        ("drone)", 6, "unexpected ')'"),
        ("drone AND", 9, "ends too early"),
        ("foo:bar", 1, "unknown field 'foo'"),
        ("published:2025-13", 11, "is not a date"),
        ("published:2025-03..2025-01", 11, "ends before it starts"),
        ("dro*ne", 1, "wildcard goes at the end"),
        ('"unclosed', 1, "unexpected '\"'"),
        ("", None, "empty query"),
    ],
)
def test_malformed_queries_say_where_and_what(query: str, where: int | None, reason: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse(query)
    assert raised.value.column == where and reason in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_stopword_alone_is_an_error_not_an_empty_answer(dated: Path) -> None:
    with Snapshot(dated) as snapshot, pytest.raises(QueryError, match="stopword"):
        matches(snapshot, "the")


_PIECES = st.sampled_from(
    ["drone", "Sea", '"black sea"', '"', "(", ")", "AND", "OR", "NOT", "-", "*", "dron*", "source:", "title:",
     "published:", "2025-01", "..", "author:lee", "language:it", ":", "MQ-9", "беспилотник", " ", "\t", "x"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=8).map(" ".join))
def test_random_queries_parse_or_raise_only_the_clear_error(query: str) -> None:
    try:
        parse(query)
    except QueryError as error:
        assert "\n" not in str(error)


@settings(max_examples=60, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=6).map(" ".join))
def test_random_queries_run_or_raise_only_the_clear_error(dated: Path, query: str) -> None:
    with Snapshot(dated) as snapshot, contextlib.suppress(QueryError):
        matches(snapshot, query)


def test_the_cli_counts_and_exports(dated: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["search", "--match", "drone", "--json", "-d", str(dated)])
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    assert {row["article_id"] for row in output["matches"]} == CASES["drone"]
    assert output["facets"]["source"] == [
        {"value": "Harbour Times", "count": 4},
        {"value": "Corriere del Porto", "count": 2},
    ]
    result = runner.invoke(cli, ["coverage", "drone", "--by", "month", "--csv", "-d", str(dated)])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()  # plain CSV: what produced it is in the JSON and Parquet only
    assert header == '"period","matching","total","share"'
    assert len(rows) == 3  # January, February and March 2025
    parquet = tmp_path / "drone.parquet"
    result = runner.invoke(
        cli, ["search", "--match", "drone", "--sort", "relevance", "--parquet", parquet, "-d", dated]
    )
    assert result.exit_code == 0, result.output
    from indexer.exact.export import described_by

    assert described_by(parquet)["query"] == "drone" and described_by(parquet)["commit"] >= 1
    exported = duckdb.sql(f"SELECT score, text FROM '{parquet}'").fetchall()
    assert [score for score, _ in exported] == sorted((score for score, _ in exported), reverse=True)
    assert all(score > 0 and "dron" in text.lower() for score, text in exported)  # each with its cited passage
    assert duckdb.sql(f"SELECT count(*) FROM '{parquet}'").fetchall() == [(len(CASES["drone"]),)]
    result = runner.invoke(cli, ["search", "--match", "drone (", "-d", str(dated)])
    assert result.exit_code == 1 and "never closed" in result.output and "Traceback" not in result.output


@pytest.mark.model
def test_a_question_is_counted_by_meaning_with_the_rule_stated(tmp_path: Path, real_model) -> None:
    from indexer.exact.counts import by_meaning

    directory = tmp_path / "archive"
    index_paths([DATED], directory, embedder=real_model)
    with Snapshot(directory) as snapshot:
        near = by_meaning(snapshot, real_model, "a US drone downed over the Black Sea by Russian jets", 0.05)
        found = set(matches(snapshot, near).column("article_id").to_pylist())
        everything = set(
            matches(snapshot, by_meaning(snapshot, real_model, "drone", -1.0)).column("article_id").to_pylist()
        )
    # The downed drone in English and Italian; the Russian report scores 0.042, under the margin (across scripts
    # the model prefers the question's language: issue "Language-neutral retrieval").
    assert {"d01", "d04"} <= found
    assert not found & {"d03", "d06", "d08"}  # ferry timetables
    assert len(everything) == 12
    result = CliRunner().invoke(
        cli,
        ["coverage", "--semantic", "a US drone downed over the Black Sea", "--by", "year", "--json", "-d", directory],
    )
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    assert "at least 0.05" in output["approximate"] and output["periods"][0]["matching"] >= 3


def test_sessions_sharing_a_snapshot_count_at_the_same_time(dated: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    queries = [*CASES][:8] * 4
    with Snapshot(dated) as snapshot, ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda q: set(matches(snapshot, q).column("article_id").to_pylist()), queries))
        counted = list(pool.map(lambda q: coverage(snapshot, q, by="month").num_rows, queries))
    assert found == [CASES[q] for q in queries]
    assert all(rows <= 3 for rows in counted)


@pytest.mark.parametrize(
    ("text", "phrase", "held"),
    [
        ("Il caffè nero di Città del Capo", '"caffe nero"', True),  # accents in the text only
        ("il caffe nero", '"caffè nero"', True),  # in the phrase only
        ("e\u0301tat des lieux", '"tat des"', False),  # decomposed: the mark joins, it does not separate
        ("x\u2122tat des", '"tat des"', False),  # ™ folds to letters
        ("ＭＱ-９ down", '"mq-9 down"', True),  # full-width forms fold to plain ones
        ("mare e nero", '"mar nero"', False),
    ],
)
def test_a_phrase_is_checked_on_the_folded_text(text: str, phrase: str, held: bool) -> None:
    pattern = re.compile(match._pattern(parse(phrase), ["it", "fr", "en"], match._PYTHON))
    assert match._holds(pattern, None, None, text) is held
