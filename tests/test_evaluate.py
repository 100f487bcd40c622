"""Retrieval metrics: the arithmetic on controlled rankings, and the command on a real (fake-model) index."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.errors import InputProblem
from indexer.retrieval import evaluate as evaluation
from indexer.retrieval.evaluate import Question, evaluate, load_questions


def test_metrics_on_controlled_rankings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Passage hits per question, best first; repeated articles count once, at their best passage.
    rankings = {
        "q1": ["a", "b", "c"],  # gold a at rank 1
        "q2": ["b", "b", "c", "a"],  # gold a at article rank 3
        "q3": ["x"] * 5 + [f"n{i}" for i in range(20)] + ["g"],  # gold g at article rank 22
        "q4": ["b", "c"],  # gold never found
    }
    # Each article has one passage, whose id is the article's name with a "p".
    monkeypatch.setattr(
        evaluation, "rank", lambda archive, text, vector, k, mode: [("p" + a, 1.0) for a in rankings[text]]
    )
    passages = [("p" + a, a) for ranking in rankings.values() for a in ranking]
    archive = SimpleNamespace(
        store=SimpleNamespace(db=SimpleNamespace(execute=lambda sql: SimpleNamespace(fetchall=lambda: passages)))
    )
    questions = [
        Question("1", "q1", frozenset({"a"})),
        Question("2", "q2", frozenset({"a"})),
        Question("3", "q3", frozenset({"g"})),
        Question("4", "q4", frozenset({"a", "z"})),
    ]
    result = evaluate(archive, questions, modes=["lexical"])["lexical"]  # lexical: no model needed
    assert result.recall == {1: 0.25, 5: 0.5, 10: 0.5, 100: 0.75}
    assert result.mrr_at_10 == pytest.approx((1 + 1 / 3) / 4)
    assert result.ndcg_at_10 == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert result.queries_per_second > 0


def test_load_questions_limit_sample_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "text": f"t{i}", "gold": [f"a{i}"]}) for i in range(10)) + "\n")
    assert [q.id for q in load_questions(path, limit=3)] == ["0", "1", "2"]
    sampled = load_questions(path, limit=3, sample=True)
    assert len(sampled) == 3 and sampled == load_questions(path, limit=3, sample=True)
    path.write_text('{"id": 1, "text": "x", "gold": ["a"]}\n{"id": 2, "text": "y"}\n')
    with pytest.raises(InputProblem, match=r"q.jsonl:2"):
        load_questions(path)


def test_eval_command_on_a_small_archive(tmp_path: Path, use_fake_model) -> None:
    articles = tmp_path / "articles.jsonl"
    topics = {"harbour": "ships cargo harbour cranes dock", "orchard": "apples pears orchard harvest trees"}
    articles.write_text("\n".join(json.dumps({"id": k, "title": k, "text": v}) for k, v in topics.items()))
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps({"id": k, "text": v.split()[0] + " " + v.split()[2], "gold": [k]}) for k, v in topics.items()
        )
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(articles), "-d", str(tmp_path / "a")]).exit_code == 0
    result = runner.invoke(cli, ["eval", str(queries), "-d", str(tmp_path / "a"), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["questions"] == 2 and set(figures["modes"]) == {"hybrid", "dense", "lexical"}
    for mode in ("hybrid", "lexical"):  # the queries share words with their articles; the fake model is no judge
        assert figures["modes"][mode]["recall@1"] == 1.0 and figures["modes"][mode]["mrr@10"] == 1.0
    table = runner.invoke(cli, ["eval", str(queries), "-d", str(tmp_path / "a"), "--mode", "dense"])
    assert "recall@10" in table.output and "ndcg@10" in table.output
    assert "dense" in table.output and "hybrid" not in table.output
    queries.write_text("not json\n")
    bad = runner.invoke(cli, ["eval", str(queries), "-d", str(tmp_path / "a")])
    assert bad.exit_code == 1 and "queries.jsonl:1" in bad.output and "Traceback" not in bad.output


def test_eval_by_language_splits_by_question_and_answer_language(tmp_path: Path, use_fake_model) -> None:
    articles = tmp_path / "articles.jsonl"
    rows = [
        {"id": "harbour", "title": "Harbour", "text": "ships cargo harbour cranes dock", "language": "en"},
        {"id": "orchard", "title": "Frutteto", "text": "mele pere frutteto raccolta alberi", "language": "it"},
    ]
    articles.write_text("\n".join(json.dumps(row) for row in rows))
    queries = tmp_path / "queries.jsonl"
    questions = [
        {"id": "1", "text": "cargo cranes", "gold": ["harbour"], "lang": "en"},  # found by its words
        {"id": "2", "text": "mele raccolta", "gold": ["orchard"], "lang": "it"},  # found
        {"id": "3", "text": "apples harvest", "gold": ["orchard"], "lang": "en"},  # no word in common
        {"id": "4", "text": "apples harvest trees", "gold": ["orchard"]},  # no lang: detected as English
    ]
    queries.write_text("\n".join(json.dumps(q) for q in questions))
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(articles), "-d", str(tmp_path / "a")]).exit_code == 0
    command = ["eval", str(queries), "-d", str(tmp_path / "a"), "--mode", "lexical", "--by-language"]
    figures = json.loads(runner.invoke(cli, [*command, "--json"]).output)
    pairs = figures["by_language"]["lexical"]
    assert {pair: f["questions"] for pair, f in pairs.items()} == {"en→en": 1, "en→it": 2, "it→it": 1}
    assert pairs["en→en"]["recall@1"] == pairs["it→it"]["recall@1"] == 1.0
    assert pairs["en→it"]["mrr@10"] < 1.0
    assert figures["modes"]["lexical"]["questions"] == 4
    table = runner.invoke(cli, command).output
    assert "languages" in table and "en→it" in table and "it→it" in table
    plain = json.loads(runner.invoke(cli, command[:-1] + ["--json"]).output)
    assert "by_language" not in plain
    assert {k: v for k, v in plain["modes"]["lexical"].items() if k != "queries_per_second"} == {
        k: v for k, v in figures["modes"]["lexical"].items() if k != "queries_per_second"
    }
