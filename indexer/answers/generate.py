"""Answers written by a language model in the asker's language, every sentence standing on verified quotes.

The question's best passages go to the model numbered from 1, with their title, source, date and language. It
replies with JSON: sentences in the asker's language, each citing the sources that support it with their exact
words (:data:`SCHEMA`). The verifier (:mod:`indexer.answers.verify`) keeps a sentence only on quotes that are in the
source it cites. When nothing survives, or the endpoint fails, the answer is the quoted one
(:func:`indexer.answers.quotes.ask`), with a line saying why: never worse than without a model.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import time
from collections.abc import Callable

from indexer.answers import quotes
from indexer.answers.llm import Generator, GeneratorFailed
from indexer.answers.quotes import Answer, AnswerSentence, Source, cited_sources
from indexer.answers.verify import Claim, Supported, verify
from indexer.errors import NewsarchiveError
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import Filters, Hit
from indexer.text.language import detect

SOURCES = 5  # passages the model reads: the best retrieved, as many as a small model's context holds
MAX_TOKENS = 512  # one to three sentences with their quotes fit; a model that rambles on is cut short sooner
SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "citations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"source": {"type": "integer"}, "quote": {"type": "string"}},
                            "required": ["source", "quote"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["text", "citations"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["answer"],
    "additionalProperties": False,
}
INSTRUCTIONS = """\
You answer a question about the news from numbered source passages, using only what they say.
Write the answer in {language}: one to three short sentences that answer the question.
After each sentence, cite the sources that support it. A citation is the source's number and a quote: words \
copied exactly, character for character, from that source, in the source's own language. Never translate, \
shorten or rephrase a quote.
Reply with JSON only, of this shape:
{{"answer": [{{"text": "...", "citations": [{{"source": 1, "quote": "..."}}]}}]}}
If the sources do not answer the question, reply {{"answer": []}}."""


class ReplyUnreadable(ValueError):
    """The model's reply is not an answer of the protocol's shape."""


def ask(
    archive: Archive,
    question: str,
    generator: Generator,
    k: int = 8,
    filters: Filters | None = None,
    mode: str = "hybrid",
    language: str | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Answer:
    """Answer ``question`` in its own language (or ``language``), each sentence on quotes verified in its sources.

    Args:
        archive: An opened index.
        question: In any language.
        generator: The endpoint and model that write the answer.
        k: Passages retrieved; the best :data:`SOURCES` go to the model.
        filters: Restrict the passages to some sources, languages or dates.
        mode: How passages are retrieved: ``hybrid``, ``dense`` or ``lexical``.
        language: The answer's language, an ISO 639-1 code; by default the question's.
        on_text: Hears the reply as it is streamed, for a page that shows it coming.

    Returns:
        A generated :class:`~indexer.answers.quotes.Answer`, or the quoted one with ``fallback`` saying why.

    Raises:
        NewsarchiveError: ``language`` is not a language code.
    """
    if language is not None and language_name(language) is None:
        raise NewsarchiveError(f"{language!r} is not a language code: use an ISO 639-1 code, such as ru or zh")
    quoted = quotes.ask(archive, question, k, filters, mode)
    language = language or detect(question) or "en"
    if not quoted.found:
        return dataclasses.replace(quoted, fallback="no passage is relevant enough to answer from", language=language)
    hits = list(quoted.retrieved[:SOURCES])
    started = time.perf_counter()
    try:
        reply = generator.chat(prompt(question, hits, language), SCHEMA, on_text, MAX_TOKENS)
    except GeneratorFailed as failure:
        return _fallback(quoted, language, f"the generator failed: {failure.reason}", _about(generator, started))
    about = _about(generator, started)
    seconds = about["seconds"]
    try:
        claims = parse(reply)
    except ReplyUnreadable as error:
        return _fallback(quoted, language, f"the generator's reply is not an answer: {error}", about)
    if not claims:
        return _fallback(quoted, language, "the generator's answer was empty", about)
    kept, rejected = verify(claims, [hit.text for hit in hits], archive.embedder)
    if not kept:
        reason = f"none of the generator's {len(claims)} sentences is supported by the sources it cites"
        return _fallback(quoted, language, reason, about, tuple(rejected))
    sentences, sources = _numbered(kept, hits)
    timings = {**quoted.timings, "generate": seconds}
    return Answer(question, sentences, sources, quoted.retrieved, timings, True, None, about, tuple(rejected), language)


def prompt(question: str, hits: list[Hit], language: str) -> list[dict[str, str]]:
    """The chat messages: the instructions, then the numbered sources and the question."""
    blocks = []
    for number, hit in enumerate(hits, start=1):
        about = [hit.source, hit.published.date().isoformat() if hit.published else None, language_name(hit.language)]
        details = ", ".join(part for part in about if part)
        blocks.append(f"[{number}] {hit.title}" + (f" ({details})" if details else "") + f"\n{hit.text}")
    sources = "\n\n".join(blocks)
    return [
        {"role": "system", "content": INSTRUCTIONS.format(language=language_name(language) or language)},
        {"role": "user", "content": f"Sources:\n\n{sources}\n\nQuestion: {question}"},
    ]


def translate(generator: Generator, text: str, language: str) -> str:
    """``text`` translated into ``language`` (an ISO 639-1 code) by the generator: a machine translation.

    Raises:
        GeneratorFailed: The endpoint failed, or replied with nothing.
    """
    name = language_name(language) or language
    messages = [
        {"role": "system", "content": f"Translate the user's text into {name}. Reply with the translation only."},
        {"role": "user", "content": text},
    ]
    translated = generator.chat(messages, max_tokens=2048).strip()
    if not translated:
        raise GeneratorFailed("the translation was empty")
    return translated


def translations(generator: Generator, answer: Answer) -> tuple[dict[int, str], dict[int, str]]:
    """Each cited passage of ``answer`` in another language than the answer's, translated: (source number ->
    translation, source number -> why it was not translated)."""
    found, failures = {}, {}
    for source in answer.sources:
        if source.in_another_language(answer.language):
            try:
                found[source.number] = translate(generator, source.hit.text, answer.language)
            except GeneratorFailed as failure:
                failures[source.number] = failure.reason
    return found, failures


def parse(reply: str) -> list[Claim]:
    """The sentences and citations of a reply: JSON of :data:`SCHEMA`'s shape, alone or inside other text.

    Raises:
        ReplyUnreadable: No JSON object, or not one of that shape.
    """
    start, end = reply.find("{"), reply.rfind("}")
    if start < 0 or end < start:
        raise ReplyUnreadable("no JSON object in it")
    try:
        data = json.loads(reply[start : end + 1])
    except ValueError as error:
        raise ReplyUnreadable(f"its JSON does not parse ({error})") from None
    except RecursionError:
        raise ReplyUnreadable("its JSON is nested deeper than it can be read") from None
    items = data.get("answer") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ReplyUnreadable('it has no "answer" list')
    claims = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ReplyUnreadable('a sentence of its "answer" has no "text"')
        text = " ".join(item["text"].split())
        cited = item.get("citations") or []
        if not isinstance(cited, list):
            raise ReplyUnreadable(f'"citations" of {text!r} is not a list')
        citations = tuple(
            (_number(citation.get("source")), citation["quote"])
            for citation in cited
            if isinstance(citation, dict) and isinstance(citation.get("quote"), str)
        )
        if text:
            claims.append(Claim(_MARKERS.sub("", text).strip(), citations))
    return claims


@functools.lru_cache(maxsize=256)
def language_name(code: str | None) -> str | None:
    """A language's English name (``ru`` -> ``Russian``), ``None`` for an unknown or missing code."""
    if not code:
        return None
    from babel import Locale, UnknownLocaleError  # imported here: its locale data takes a moment to load

    try:
        return Locale.parse(code.replace("-", "_")).get_display_name("en")
    except (UnknownLocaleError, ValueError, TypeError):
        return None


_MARKERS = re.compile(r"\s*\[\d+\]")  # markers a model writes into its sentence: the answer adds its own


def _number(value: object) -> int:
    """A citation's source number as the model wrote it (1, "1", "[1]"); 0, which no source has, otherwise."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    digits = re.fullmatch(r"\s*\[?(\d{1,3})\]?\s*", str(value))
    return int(digits.group(1)) if digits else 0


def _numbered(kept: list[Supported], hits: list[Hit]) -> tuple[tuple[AnswerSentence, ...], tuple[Source, ...]]:
    """The verified sentences with their sources renumbered in order of first use, as quoted answers number them."""
    numbers: dict[int, int] = {}
    sentences = []
    for supported in kept:
        citations = tuple(
            dataclasses.replace(citation, source=numbers.setdefault(citation.source, len(numbers) + 1))
            for citation in supported.citations
        )
        first = citations[0]
        sentences.append(
            AnswerSentence(supported.text, first.source, supported.support, first.start, first.end, citations)
        )
    sources = cited_sources({number: hits[given - 1] for given, number in numbers.items()}, sentences)
    return tuple(sentences), sources


def _about(generator: Generator, started: float) -> dict[str, object]:
    return {"model": generator.model, "seconds": round(time.perf_counter() - started, 3)}


def _fallback(quoted: Answer, language: str, reason: str, about: dict | None = None, removed: tuple = ()) -> Answer:
    return dataclasses.replace(quoted, fallback=reason, generator=about, removed=removed, language=language)
