"""Generated answers against a scripted OpenAI-compatible endpoint on 127.0.0.1, with the fake embedder: the
protocol, the fallback to the quoted answer, the command line. The real model's path is in test_generate_real.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.answers import generate
from indexer.answers.generate import ReplyUnreadable, parse
from indexer.answers.llm import Generator
from indexer.cli.main import cli
from indexer.ingest.index import index_paths
from indexer.retrieval.archive import Archive
from tests.chat_server import ChatServer

pytestmark = pytest.mark.usefixtures("clean_cli_environment")

CRASH = "The drone crashed into the sea after a fighter jet clipped its propeller."
ARTICLES = [
    {"id": "talks", "title": "Talks", "text": "Officials met in the capital on Monday. Talks will continue."},
    {"id": "drone", "title": "Drone lost over the sea", "text": f"{CRASH} Nobody was hurt.", "source": "Wire"},
    {"id": "bread", "title": "Baking", "text": "Knead the dough for ten minutes, then let it rest overnight."},
]
QUESTION = "why did the drone crash into the sea"


def reply(*sentences: tuple[str, list[tuple[int, str]]]) -> str:
    answer = [{"text": text, "citations": [{"source": s, "quote": q} for s, q in cited]} for text, cited in sentences]
    return json.dumps({"answer": answer})


@pytest.fixture
def archive_dir(tmp_path: Path, fake_embedder) -> Path:
    source = tmp_path / "articles.jsonl"
    source.write_text("\n".join(json.dumps(a) for a in ARTICLES), encoding="utf-8")
    index_paths([source], tmp_path / "archive", embedder=fake_embedder)
    return tmp_path / "archive"


@pytest.fixture
def archive(archive_dir: Path, fake_embedder) -> Archive:
    with Archive(archive_dir, embedder=fake_embedder) as opened:
        yield opened


@pytest.fixture
def endpoint():
    servers = []

    def start(answer, hangs: bool = False) -> ChatServer:
        servers.append(ChatServer(answer if callable(answer) else lambda request: answer, hangs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def source_of(request: dict, text: str) -> int:
    """The number the prompt gave the passage holding ``text``."""
    sources = request["messages"][-1]["content"].split("\n\n")
    return next(int(block[1]) for block in sources if block.startswith("[") and text in block)


def test_a_generated_answer_keeps_its_verified_sentences(archive: Archive, endpoint) -> None:
    def answer(request: dict) -> str:
        drone = source_of(request, CRASH)
        return reply(
            ("The drone crashed into the sea after a fighter jet clipped its propeller [1].", [(drone, CRASH)]),
            ("The pilot was arrested.", [(drone, "the pilot was arrested by the police")]),
        )

    server = endpoint(answer)
    result = generate.ask(archive, QUESTION, Generator(server.url, "scripted"))
    assert result.generated and result.fallback is None and result.generator["model"] == "scripted"
    ((sentence),) = result.sentences
    assert sentence.text == f"{CRASH[:-1]}." and [c.source for c in sentence.citations] == [1]
    ((source),) = result.sources  # renumbered: the cited passage is [1], whatever its number in the prompt
    citation = sentence.citations[0]
    assert source.hit.article_id == "drone" and source.hit.text[citation.start : citation.end] == citation.quote
    assert source.highlights == ((citation.start, citation.end),)
    assert result.text() == f"{sentence.text} [1]"
    ((removed),) = result.removed
    assert (removed.sentence, removed.citation) == ("The pilot was arrested.", None)
    assert removed.reason.startswith("its quote is ") and "not in source" in removed.reason
    request = server.requests[0]
    assert request["response_format"]["type"] == "json_schema" and request["temperature"] == 0
    assert "in English" in request["messages"][0]["content"] and QUESTION in request["messages"][-1]["content"]
    assert "[1] " in request["messages"][-1]["content"] and "Wire" in request["messages"][-1]["content"]


def test_the_answer_is_asked_in_the_questions_language_or_the_one_given(archive: Archive, endpoint) -> None:
    server = endpoint(reply())
    russian = "drone crashed sea fighter jet propeller почему беспилотник упал в море"  # English words: the fake
    # model matches words, and knows no Russian
    generate.ask(archive, russian, Generator(server.url, "m"))
    generate.ask(archive, QUESTION, Generator(server.url, "m"), language="it")
    assert "in Russian" in server.requests[0]["messages"][0]["content"]
    assert "in Italian" in server.requests[1]["messages"][0]["content"]


@pytest.mark.parametrize(
    ("answer", "hangs", "fallback"),
    [
        (
            (500, '{"error": {"message": "model crashed"}}'),
            False,
            "the generator failed: the endpoint answered HTTP 500: model crashed",
        ),
        ((404, "no such route"), False, "the generator failed: the endpoint answered HTTP 404"),
        ("I think the drone fell.", False, "the generator's reply is not an answer: no JSON object in it"),
        ('{"answer": [{"text": "x", }]}', False, "the generator's reply is not an answer: its JSON does not parse"),
        ('{"answer": "the drone fell"}', False, 'the generator\'s reply is not an answer: it has no "answer" list'),
        ('{"answer": []}', False, "the generator's answer was empty"),
        ("", False, "the generator's reply is not an answer: no JSON object in it"),
        (
            reply(("It fell.", [(1, "the drone was shot down by a missile")])),
            False,
            "none of the generator's 1 sentences",
        ),
        (reply(), True, "the generator failed: no complete reply within 1 s"),
    ],
)
def test_a_failing_endpoint_gives_the_quoted_answer_and_says_why(
    archive: Archive, endpoint, answer, hangs: bool, fallback: str
) -> None:
    from indexer.answers.quotes import ask as quoted

    server = endpoint(answer, hangs)
    # Only the endpoint that never answers meets the short deadline: the others have time to spare on a busy machine.
    result = generate.ask(archive, QUESTION, Generator(server.url, "m", timeout=1 if hangs else 60))
    assert not result.generated and result.fallback.startswith(fallback), result.fallback
    assert result.generator["model"] == "m"  # which model failed, and after how long
    if hangs:
        assert result.generator["seconds"] >= 1  # given up at the deadline, not before
    assert result.sentences == quoted(archive, QUESTION).sentences and result.found


def test_an_endpoint_nobody_listens_on_gives_the_quoted_answer(archive: Archive) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = generate.ask(archive, QUESTION, Generator(f"http://127.0.0.1:{port}/v1", "m"))
    assert not result.generated and result.fallback.startswith(
        f"the generator failed: cannot reach http://127.0.0.1:{port}/v1"
    )


@pytest.mark.parametrize("understood", ["json_schema", "json_object", None])
def test_a_server_is_asked_for_json_the_ways_it_understands(archive: Archive, endpoint, understood) -> None:
    def answer(request: dict):
        asked = request.get("response_format", {}).get("type")
        if asked != understood:
            return 422, '{"error": "response_format: input should be text or json_object"}'
        if asked == "json_object":
            assert request["response_format"]["schema"] == generate.SCHEMA
        return "Here it is:\n```json\n" + reply((CRASH, [(source_of(request, CRASH), CRASH)])) + "\n```"

    server = endpoint(answer)
    result = generate.ask(archive, QUESTION, Generator(server.url, "m"))
    assert result.generated
    asked = [request.get("response_format", {}).get("type") for request in server.requests]
    assert asked == ["json_schema", "json_object", None][: asked.index(understood) + 1]


def test_a_streamed_reply_is_heard_as_it_comes(archive: Archive, endpoint) -> None:
    server = endpoint(lambda request: reply((CRASH, [(source_of(request, CRASH), CRASH)])))
    heard: list[str] = []
    result = generate.ask(archive, QUESTION, Generator(server.url, "m"), on_text=heard.append)
    assert result.generated and server.requests[0]["stream"] is True
    assert len(heard) > 3 and all(later.startswith(earlier) for earlier, later in zip(heard, heard[1:]))
    assert json.loads(heard[-1])["answer"][0]["text"] == CRASH


def test_nothing_relevant_asks_no_model(archive: Archive, endpoint) -> None:
    server = endpoint(reply())
    result = generate.ask(archive, "quantum chromodynamics lattice gauge", Generator(server.url, "m"))
    assert not result.found and result.fallback == "no passage is relevant enough to answer from"
    assert server.requests == []


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        ('{"answer": [{"text": "A [2].", "citations": [{"source": "[2]", "quote": "q"}]}]}', [("A.", ((2, "q"),))]),
        ('```json\n{"answer": [{"text": " A\\n b ", "citations": []}]}\n```', [("A b", ())]),
        ('{"answer": [{"text": "A", "citations": [{"source": true, "quote": "q"}, "x"]}]}', [("A", ((0, "q"),))]),
        ('{"answer": [{"text": "", "citations": []}]}', []),
    ],
)
def test_replies_are_read_leniently_in_form_and_strictly_in_shape(text: str, claims: list) -> None:
    assert [(claim.text, claim.citations) for claim in parse(text)] == claims


@pytest.mark.parametrize(
    "text", ['{"answer": [{"citations": []}]}', '{"answer": [{"text": "A", "citations": "q"}]}', "[1, 2]", "}{"]
)
def test_a_reply_of_another_shape_is_unreadable(text: str) -> None:
    with pytest.raises(ReplyUnreadable):
        parse(text)


# --- The command line ----------------------------------------------------------------------------------------------


def test_ask_with_a_model_from_the_command_line(archive_dir: Path, use_fake_model, endpoint) -> None:
    server = endpoint(lambda request: reply((CRASH, [(source_of(request, CRASH), CRASH)])))
    args = ["ask", QUESTION, "-d", str(archive_dir), "--llm", server.url, "--llm-model", "scripted"]
    shown = CliRunner().invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    assert f"{CRASH} [1]" in shown.output and "Written by scripted in " in shown.output
    assert f"quoted: “{CRASH}”" in " ".join(shown.output.split())
    data = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert data["generated"] is True and data["fallback"] is None and data["generator"]["model"] == "scripted"
    assert data["answer"] == f"{CRASH} [1]"
    ((citation),) = data["sentences"][0]["citations"]
    assert citation["source"] == 1 and citation["quote"] == CRASH
    assert data["sources"][0]["text"][citation["start"] : citation["end"]] == CRASH


def test_without_a_model_ask_is_quoted_and_says_so_in_json(archive_dir: Path, use_fake_model) -> None:
    data = json.loads(CliRunner().invoke(cli, ["ask", QUESTION, "-d", str(archive_dir), "--json"]).output)
    assert data["generated"] is False and data["fallback"] is None and data["generator"] is None
    assert data["sentences"][0]["citations"][0]["quote"] == data["sentences"][0]["text"]
    refused = CliRunner().invoke(cli, ["ask", QUESTION, "-d", str(archive_dir), "--translate"])
    assert refused.exit_code == 2 and "--translate and --answer-language need a language model" in refused.output


def test_the_key_is_sent_and_never_shown(
    archive_dir: Path, use_fake_model, endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-0123456789abcdef"
    monkeypatch.setenv("NEWSARCHIVE_LLM_API_KEY", key)
    monkeypatch.setenv("NEWSARCHIVE_LLM_URL", "")
    server = endpoint((401, json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}})))
    monkeypatch.setenv("NEWSARCHIVE_LLM_URL", server.url)
    monkeypatch.setenv("NEWSARCHIVE_LLM_MODEL", "scripted")
    shown = CliRunner().invoke(cli, ["ask", QUESTION, "-d", str(archive_dir)])
    assert shown.exit_code == 0 and server.headers[0]["Authorization"] == f"Bearer {key}"
    assert "Quoted answer: the generator failed: the endpoint answered HTTP 401: Incorrect API key provided: [key]" in (
        shown.output
    )
    assert key not in shown.output
    info = CliRunner().invoke(cli, ["info", "-d", str(archive_dir)])
    assert f"scripted at {server.url}" in info.output and key not in info.output
    assert not any(key.encode() in path.read_bytes() for path in archive_dir.rglob("*") if path.is_file())


def test_translate_shows_a_machine_translation_below_the_original(
    tmp_path: Path, use_fake_model, endpoint, fake_embedder
) -> None:
    italian = "Il drone è precipitato in mare dopo che un caccia ne ha colpito l'elica."
    source = tmp_path / "it.jsonl"
    source.write_text(json.dumps({"id": "it", "title": "Drone", "text": italian, "language": "it"}), encoding="utf-8")
    index_paths([source], tmp_path / "archive", embedder=fake_embedder)

    def answer(request: dict) -> str:
        if "Translate" in request["messages"][0]["content"]:
            return "The drone fell into the sea after a fighter hit its propeller."
        return reply((italian, [(1, italian)]))

    server = endpoint(answer)
    args = ["ask", "perché il drone è precipitato in mare", "-d", str(tmp_path / "archive")]
    shown = CliRunner().invoke(
        cli, [*args, "--llm", server.url, "--llm-model", "m", "--answer-language", "en", "--translate"]
    )
    assert shown.exit_code == 0, shown.output
    assert "machine translation (m): The drone fell into the sea" in shown.output and italian in shown.output
    data = json.loads(
        CliRunner()
        .invoke(
            cli, [*args, "--llm", server.url, "--llm-model", "m", "--answer-language", "en", "--translate", "--json"]
        )
        .output
    )
    assert data["translations"] == {"1": "The drone fell into the sea after a fighter hit its propeller."}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llm", "http://127.0.0.1:9/v1"], "a generator needs a model: --llm-model NAME"),
        (["--llm", "ftp://example.org/v1", "--llm-model", "m"], "the generator's URL must be http(s)://HOST/…/v1"),
        (["--llm", "http://127.0.0.1:9/v1", "--llm-model", "m", "--llm-timeout", "0"], "--llm-timeout"),
        (["--llm", "http://127.0.0.1:9/v1", "--llm-model", "m", "--answer-language", "Klingon"], "'Klingon' is not a"),
    ],
)
def test_a_bad_generator_setting_is_one_line(archive_dir: Path, use_fake_model, args: list, message: str) -> None:
    shown = CliRunner().invoke(cli, ["ask", QUESTION, "-d", str(archive_dir), *args])
    assert shown.exit_code in (1, 2) and message in shown.output and "Traceback" not in shown.output


# --- Hostile replies --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("answer", "fallback"),
    [
        ("[" * 20_000 + "]" * 20_000, "the generator's reply is not an answer: no JSON object in it"),
        (
            '{"answer": ' + "[" * 20_000 + "]" * 20_000 + "}",
            "the generator's reply is not an answer: its JSON is nested",
        ),
        ("x" * 5_000, "the generator failed: the reply is longer than 4,096 bytes"),
    ],
)
def test_a_hostile_reply_is_one_line_and_the_quoted_answer(
    archive: Archive, endpoint, monkeypatch: pytest.MonkeyPatch, answer: str, fallback: str, stream: bool
) -> None:
    from indexer.answers import llm

    monkeypatch.setattr(llm, "MAX_REPLY_BYTES", 4096 if answer.startswith("x") else llm.MAX_REPLY_BYTES)
    server = endpoint(answer)
    heard: list[str] = []
    result = generate.ask(archive, QUESTION, Generator(server.url, "m"), on_text=heard.append if stream else None)
    assert not result.generated and result.found and result.fallback.startswith(fallback), result.fallback


def test_a_reply_nested_too_deep_for_the_parser_is_not_an_answer() -> None:
    with pytest.raises(ReplyUnreadable, match="nested deeper"):
        parse('{"answer": ' + "[" * 20_000 + "]" * 20_000 + "}")


def test_a_reply_with_terminal_controls_is_shown_inert(archive_dir: Path, use_fake_model, endpoint) -> None:
    hostile = "The drone crashed\x1b[2J\x1b]8;;http://evil.example\x07 into the sea after a fighter jet clipped"
    hostile += " its propeller."

    def answer(request: dict) -> str:
        return reply((hostile, [(source_of(request, CRASH), CRASH)]))

    server = endpoint(answer)
    shown = CliRunner().invoke(cli, ["ask", QUESTION, "-d", str(archive_dir), "--llm", server.url, "--llm-model", "m"])
    assert shown.exit_code == 0 and "\x1b" not in shown.output and "\x07" not in shown.output
    assert "The drone crashed" in shown.output and "[1]" in shown.output
