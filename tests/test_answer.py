"""The answer engine on small archives built with the fake embedder."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.answers.quotes import ask
from indexer.cli.main import cli
from indexer.ingest.index import index_paths
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import Filters

ARTICLES = [
    {
        "id": "drone",
        "title": "Drone lost over the sea",
        "text": "Officials met in the capital on Monday.\n"
        "The drone crashed into the sea after a fighter jet clipped its propeller. Nobody was hurt.\n"
        "Talks will continue next month.",
        "source": "Wire",
        "published": "2023-03-15",
    },
    # The same wire paragraph in another outlet: it must be cited once.
    {
        "id": "drone-copy",
        "title": "Drone lost over the sea",
        "text": "The drone crashed into the sea after a fighter jet clipped its propeller. Nobody was hurt.",
        "source": "Other paper",
    },
    {"id": "bread", "title": "Baking", "text": "Knead the dough for ten minutes, then let it rest overnight."},
]


@pytest.fixture
def archive(tmp_path: Path, fake_embedder) -> Archive:
    source = tmp_path / "articles.jsonl"
    source.write_text("\n".join(json.dumps(a) for a in ARTICLES), encoding="utf-8")
    index_paths([source], tmp_path / "archive", embedder=fake_embedder)
    with Archive(tmp_path / "archive", embedder=fake_embedder) as opened:
        yield opened


def test_answer_quotes_the_best_sentence_and_cites_it(archive: Archive) -> None:
    answer = ask(archive, "why did the drone crash into the sea")
    assert answer.found
    first = answer.sentences[0]
    assert first.source == 1
    assert first.text == "The drone crashed into the sea after a fighter jet clipped its propeller."
    source = answer.sources[0]
    assert source.hit.text[first.start : first.end] == first.text
    assert (first.start, first.end) in source.highlights
    assert answer.text().startswith(first.text + " [1]")


def test_citations_are_numbered_in_order_of_first_use_and_identical_passages_cited_once(archive: Archive) -> None:
    answer = ask(archive, "drone crashed sea fighter jet propeller")
    assert [source.number for source in answer.sources] == list(range(1, len(answer.sources) + 1))
    assert sorted({s.source for s in answer.sentences}) == [source.number for source in answer.sources]
    texts = [hit.text for hit in answer.retrieved]
    assert len(texts) == len(set(texts))
    assert (
        texts.count("The drone crashed into the sea after a fighter jet clipped its propeller. Nobody was hurt.") == 1
    )


def test_at_most_three_sentences(archive: Archive) -> None:
    assert 1 <= len(ask(archive, "drone sea talks capital dough").sentences) <= 3


def test_nothing_relevant_gives_no_answer(archive: Archive) -> None:
    answer = ask(archive, "zyxwv qwerty")
    assert not answer.found and answer.sources == () and answer.text() == ""
    assert answer.to_dict()["found"] is False


def test_answer_json_from_the_cli(tmp_path: Path, use_fake_model) -> None:
    source = tmp_path / "articles.jsonl"
    source.write_text("\n".join(json.dumps(a) for a in ARTICLES), encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(source), "-d", str(tmp_path / "a")]).exit_code == 0
    result = runner.invoke(cli, ["ask", "--json", "-d", str(tmp_path / "a"), "why did the drone crash into the sea"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["found"] and "[1]" in data["answer"]
    assert data["sources"][0]["number"] == 1 and data["sources"][0]["title"] == "Drone lost over the sea"
    assert data["sources"][0]["highlights"]
    text = runner.invoke(cli, ["ask", "-d", str(tmp_path / "a"), "why did the drone crash into the sea"]).output
    assert "[1]" in text and "Drone lost over the sea" in text


def test_filters_restrict_the_sources(archive: Archive) -> None:
    answer = ask(archive, "drone crashed into the sea", filters=Filters(sources=("Other paper",)))
    assert {hit.source for hit in answer.retrieved} == {"Other paper"}
    dated = ask(archive, "drone crashed into the sea", filters=Filters(since=date(2023, 3, 1)))
    assert {hit.article_id for hit in dated.retrieved} == {"drone"}


KREMLIN = {
    "ru": (
        "Что заявил Кремль о беспилотнике?",
        "Кремль заявил, что беспилотник MQ-9 упал в Чёрное море после столкновения с российским истребителем. "
        "Об этом сообщил пресс-секретарь г. Песков журналистам в Москве. "
        "Тем временем «Спартак» обыграл «Зенит» со счётом 2:1.",
    ),
    "zh": (
        "克里姆林宫对无人机说了什么？",
        "克里姆林宫表示，MQ-9无人机在与俄罗斯战斗机相撞后坠入黑海。"
        "发言人佩斯科夫在莫斯科向记者宣布了这一消息。"
        "与此同时，斯巴达克队以2比1击败了泽尼特队。",
    ),
}


@pytest.mark.model
@pytest.mark.parametrize("language", sorted(KREMLIN))
def test_a_quoted_answer_is_a_sentence_in_every_script(tmp_path: Path, real_model, language: str) -> None:
    """A paragraph in a script without Latin capitals is split into its sentences, so the answer quotes the one
    that answers, not the whole paragraph with the football score."""
    question, paragraph = KREMLIN[language]
    source = tmp_path / "kremlin.jsonl"
    source.write_text(json.dumps({"id": "kremlin", "title": "MQ-9", "text": paragraph}) + "\n", encoding="utf-8")
    index_paths([source], tmp_path / "archive", embedder=real_model)
    with Archive(tmp_path / "archive", embedder=real_model) as archive:
        answer = ask(archive, question)
    assert answer.found
    first = answer.sentences[0]
    assert paragraph.startswith(first.text) and first.text.endswith(("。", "."))
    assert all("2" not in sentence.text.replace("MQ-9", "") for sentence in answer.sentences)
