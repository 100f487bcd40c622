"""Splitting articles into passages, and sentence boundaries; token counts are word counts (the fake embedder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.reading.article import Article, plain_paragraphs
from indexer.reading.inputs import read_articles
from indexer.text.passages import Passage, embedding_text, split_article
from indexer.text.sentences import sentence_spans
from tests.conftest import SEED, FakeEmbedder


def words(text: str) -> int:
    return len(text.split())


def article_from(tmp_path: Path, text: str, name: str = "story.txt") -> Article:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    (article,) = read_articles([path])
    assert isinstance(article, Article), article
    return article


def check_offsets(article: Article, passages: list[Passage]) -> None:
    for passage in passages:
        assert passage.text == article.text[passage.char_start : passage.char_end]
        assert passage.article_id == article.article_id


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


def test_short_paragraphs_are_one_passage_each(fake_embedder: FakeEmbedder) -> None:
    (article,) = read_articles([SEED])
    assert isinstance(article, Article)
    passages = split_article(article, fake_embedder.count_tokens, max_tokens=1000)
    assert len(passages) == len(article.paragraphs) == 17
    assert [p.seq for p in passages] == list(range(17))
    assert [p.paragraph for p in passages] == list(range(1, 18))
    assert [p.heading for p in passages] == [p.heading for p in article.paragraphs]
    assert [(p.char_start, p.char_end) for p in passages] == [(p.start, p.end) for p in article.paragraphs]
    assert [p.tokens for p in passages] == [words(p.text) for p in passages]
    check_offsets(article, passages)


def test_long_paragraph_is_cut_at_sentence_boundaries(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    body = (
        "One two three four. Five six seven eight! Nine ten eleven twelve? "
        "Thirteen fourteen fifteen sixteen. Seventeen eighteen nineteen twenty."
    )
    article = article_from(tmp_path, f"Counting\n{body}\nA short closing paragraph.\n")
    passages = split_article(article, fake_embedder.count_tokens, max_tokens=10)
    check_offsets(article, passages)
    # Five sentences of four words: greedily two per passage (8 words), the fifth alone.
    assert [p.text for p in passages] == [
        "One two three four. Five six seven eight!",
        "Nine ten eleven twelve? Thirteen fourteen fifteen sixteen.",
        "Seventeen eighteen nineteen twenty.",
        "A short closing paragraph.",
    ]
    assert [p.paragraph for p in passages] == [1, 1, 1, 2]
    assert [p.seq for p in passages] == [0, 1, 2, 3]
    assert [p.tokens for p in passages] == [8, 8, 4, 4]


def test_cut_passages_respect_budget_and_cover_all_sentences(fake_embedder: FakeEmbedder) -> None:
    (article,) = read_articles([SEED])
    assert isinstance(article, Article)
    checked = 0
    for number, paragraph in enumerate(article.paragraphs, start=1):
        text = article.text[paragraph.start : paragraph.end]
        lengths = [words(s) for s in sentences(text)]
        if len(lengths) < 2:
            continue
        budget = max(lengths)  # every sentence fits, the paragraph does not
        assert budget < words(text)
        passages = split_article(article, fake_embedder.count_tokens, budget)
        check_offsets(article, passages)
        mine = [p for p in passages if p.paragraph == number]
        assert len(mine) >= 2
        for passage in mine:
            assert paragraph.start <= passage.char_start < passage.char_end <= paragraph.end
            assert words(passage.text) == passage.tokens <= budget
            assert passage.text.rstrip("\"'»”’)]").endswith((".", "!", "?", "…"))
        # Together, in order, they are exactly the paragraph's sentences.
        assert [s for p in mine for s in sentences(p.text)] == sentences(text)
        assert " ".join(p.text for p in mine).split() == text.split()
        checked += 1
    assert checked >= 5  # the seed has several paragraphs of two sentences


def test_sentence_longer_than_budget_is_cut_between_words(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    article = article_from(tmp_path, "Long\nShort one. A b c d e f g h i j k last. Tail end here.\n")
    passages = split_article(article, fake_embedder.count_tokens, max_tokens=5)
    check_offsets(article, passages)
    # "Short one." (2), then the 12-word sentence as single words, then "Tail end here." (3), packed greedily.
    assert [p.text for p in passages] == ["Short one. A b c", "d e f g h", "i j k last.", "Tail end here."]
    assert all(p.tokens <= 5 for p in passages)


def test_embedding_text_has_title_and_heading() -> None:
    assert embedding_text("The title", "A section", "The passage.") == "The title\nA section\nThe passage."
    assert embedding_text("The title", None, "The passage.") == "The title\nThe passage."


def test_passages_carry_headings(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    article = article_from(tmp_path, "# Title\n\nIntro.\n\n## Background\n\nFirst. Second.\n", name="h.md")
    passages = split_article(article, fake_embedder.count_tokens, max_tokens=1)
    assert [(p.text, p.heading, p.paragraph) for p in passages] == [
        ("Intro.", None, 1),
        ("First.", "Background", 2),
        ("Second.", "Background", 2),
    ]


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Dr. Rossi arrived late. He apologised.", "en", ["Dr. Rossi arrived late.", "He apologised."]),
        ("Il Sig. Bianchi parla. Poi tace.", "it", ["Il Sig. Bianchi parla.", "Poi tace."]),
        ("J. Smith and K. Jones met. They talked.", None, ["J. Smith and K. Jones met.", "They talked."]),
        ("The U.S. Army moved. Others stayed.", None, ["The U.S. Army moved.", "Others stayed."]),
        ("Stop! Who goes there? Nobody.", None, ["Stop!", "Who goes there?", "Nobody."]),
        ('He said "Enough." Then he left.', None, ['He said "Enough."', "Then he left."]),
        ("«Basta!» Poi se ne andò.", "it", ["«Basta!»", "Poi se ne andò."]),
        ("It cost 3.5 million. 2024 was worse.", None, ["It cost 3.5 million.", "2024 was worse."]),
        ("  Padded text.  ", None, ["Padded text."]),
        ("", None, []),
        # Every script: each of these was one "sentence" when only a Latin capital could start one.
        (
            "Кремль заявил, что беспилотник упал. Об этом сообщил г. Песков. Матч закончился со счётом 2:1.",
            "ru",
            ["Кремль заявил, что беспилотник упал.", "Об этом сообщил г. Песков.", "Матч закончился со счётом 2:1."],
        ),
        (
            "无人机坠毁了。克里姆林宫发表了声明！比赛以2比1结束。",
            "zh",
            ["无人机坠毁了。", "克里姆林宫发表了声明！", "比赛以2比1结束。"],
        ),
        (
            "قال الكرملين إن الطائرة سقطت. وأضاف المتحدث أن التحقيق جار؟ انتهت المباراة.",
            "ar",
            ["قال الكرملين إن الطائرة سقطت.", "وأضاف المتحدث أن التحقيق جار؟", "انتهت المباراة."],
        ),
        (
            "Το drone έπεσε στη θάλασσα. Ο αγώνας έληξε 2-1.",
            "el",
            ["Το drone έπεσε στη θάλασσα.", "Ο αγώνας έληξε 2-1."],
        ),
        ("無人機が墜落した。試合は2対1で終わった。", None, ["無人機が墜落した。", "試合は2対1で終わった。"]),
    ],
)
def test_sentence_spans(text: str, language: str | None, expected: list[str]) -> None:
    assert [text[start:end] for start, end in sentence_spans(text, language)] == expected


# Property: any article text splits cleanly.

_WORDS = st.sampled_from(["word", "Word", "Dr.", "U.S.", "end.", "Why?", "Yes!", '"quoted."', "«Ciao»", "3.5", "—"])
_LINE = st.one_of(st.text(max_size=40), st.lists(_WORDS, max_size=25).map(" ".join), st.just(""))
_TEXT = st.one_of(st.text(), st.lists(_LINE, min_size=1, max_size=8).map("\n".join))


@settings(max_examples=200, deadline=None, database=None)
@given(body=_TEXT, max_tokens=st.integers(5, 30))
def test_split_article_property(body: str, max_tokens: int) -> None:
    paragraphs = plain_paragraphs(body)
    article = Article("a", "Title", body, tuple(paragraphs), "a.txt")
    fake = FakeEmbedder()
    passages = split_article(article, fake.count_tokens, max_tokens)
    check_offsets(article, passages)
    assert [p.seq for p in passages] == list(range(len(passages)))
    # With word counts every word fits the budget, so every passage does.
    assert all(0 < p.tokens <= max_tokens for p in passages)
    assert all(p.tokens == words(p.text) for p in passages)
    # Passages are in order, do not overlap, stay inside their paragraph and lose nothing.
    ends = [0] + [p.char_end for p in passages]
    assert all(p.char_start >= end for p, end in zip(passages, ends))
    for number, paragraph in enumerate(paragraphs, start=1):
        inside = [p for p in passages if p.paragraph == number]
        assert all(paragraph.start <= p.char_start and p.char_end <= paragraph.end for p in inside)
        assert all(p.heading == paragraph.heading for p in inside)
        text = body[paragraph.start : paragraph.end]
        # no character lost; a cut may fall between two characters without a space, as between Chinese sentences
        assert "".join("".join(p.text.split()) for p in inside) == "".join(text.split())


def test_split_article_property_on_words_only() -> None:
    """Sanity check for the strategy above: word-only lines are split, so the property is not vacuous."""
    body = " ".join(["word"] * 40) + "."
    article = Article("a", "T", body, tuple(plain_paragraphs(body)), "a.txt")
    passages = split_article(article, FakeEmbedder().count_tokens, 7)
    assert len(passages) == 6 and re.fullmatch(r"(word ){4}word\.", passages[-1].text)
