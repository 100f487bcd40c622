"""Generated answers from a real language model: Qwen2.5-Coder-0.5B-Instruct behind llama-cpp-python's
OpenAI-compatible server on 127.0.0.1 (tests/local_llm.py), asked end to end; and its recorded replies (a
cassette, tests/chat_server.py) replayed, so that what the verifier does with a real model's words is checked in
seconds and the same on every CPU. docs/development.md says how to record them again."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.answers import generate
from indexer.answers.llm import Generator
from indexer.retrieval.archive import Archive
from indexer.text.language import detect
from tests.chat_server import Cassette, ChatServer

pytestmark = pytest.mark.model
VERIFIER_REASONS = ("its quote", "it cites", "too far in meaning")


def check_citations(answer) -> None:
    """Every citation of every sentence that stands is its source's text at its offsets."""
    numbered = {source.number: source.hit.text for source in answer.sources}
    for sentence in answer.sentences:
        for citation in sentence.citations:
            assert numbered[citation.source][citation.start : citation.end] == citation.quote


def test_a_real_model_answers_through_a_real_server(real_seed_index: Path, real_model) -> None:
    from tests.local_llm import served

    with served() as url, Archive(real_seed_index, embedder=real_model) as archive:
        answer = generate.ask(archive, "What happened to the MQ-9 drone?", Generator(url, "local", timeout=900))
    assert answer.generator["model"] == "local"
    # it replied, in time, and the reply was read: what follows is the verifier's doing
    assert not (answer.fallback or "").startswith(("the generator failed", "the generator's reply is not"))
    assert answer.found and answer.language == "en"
    if answer.generated:
        check_citations(answer)
    else:
        assert answer.fallback.startswith(("none of the generator's", "the generator's answer was empty"))
    assert all(rejected.reason.startswith(VERIFIER_REASONS) for rejected in answer.removed)


@pytest.fixture(scope="module")
def recorded():
    cassette = Cassette("qwen2.5-coder-0.5b")
    server = ChatServer(cassette)
    yield Generator(server.url, "local", timeout=900)
    server.close()


def ask(archive_dir: Path, model, generator: Generator, question: str):
    with Archive(archive_dir, embedder=model) as archive:
        return generate.ask(archive, question, generator)


def test_a_recorded_answer_whose_quotes_are_translated_falls_back_to_the_quoted_one(
    real_seed_index: Path, real_model, recorded: Generator
) -> None:
    """The model "quoted" the Italian sources in a half-English paraphrase: no quote stands, so the answer is the
    quoted one, and each removed sentence says its quote is not in the source it cites."""
    answer = ask(real_seed_index, real_model, recorded, "What happened to the MQ-9 drone?")
    assert not answer.generated and answer.fallback.startswith("none of the generator's 5 sentences")
    assert answer.sentences and "MQ-9" in answer.text()  # the quoted answer, as without a model
    assert [rejected.reason for rejected in answer.removed] == [f"its quote is not in source {n}" for n in range(1, 6)]


def test_a_recorded_answer_copied_from_its_source_stands_in_the_sources_language(
    real_seed_index: Path, real_model, recorded: Generator
) -> None:
    """Asked in Russian, the small model copied an Italian passage as its sentence, and cited it: the quote is
    verified, so the sentence stands, in Italian. The verifier vouches for quotes, not for the language; the
    benchmark counts answers in the question's language."""
    answer = ask(real_seed_index, real_model, recorded, "Что случилось с беспилотником MQ-9?")
    assert answer.generated and answer.language == "ru" and answer.removed == ()
    check_citations(answer)
    ((sentence),) = answer.sentences
    assert sentence.text.startswith("Mosca ha negato") and detect(sentence.text) == "it"
    assert sentence.citations[0].quote == sentence.text


def test_a_recorded_answer_whose_quote_is_an_ellipsis_falls_back(
    real_seed_index: Path, real_model, recorded: Generator
) -> None:
    answer = ask(real_seed_index, real_model, recorded, "MQ-9无人机发生了什么？")
    assert not answer.generated and answer.language == "zh"
    assert [rejected.reason for rejected in answer.removed] == ["its quote '...' is too short to support a claim"]
