"""Sentence boundaries inside a paragraph, as character spans, in every script.

Wikimedia's sentencex knows how sentences end in about 300 languages: "。", "؟" and "।" end them as "." does,
and it knows each language's abbreviations ("г." in Russian, "sig." in Italian, "Dr." in English), whose full
stop does not. A paragraph's language picks the rules; without one, English's still end sentences in every
script, and only another language's abbreviations may cut a sentence short.
"""

from __future__ import annotations

from sentencex import get_sentence_boundaries

DEFAULT_LANGUAGE = "en"


def sentence_spans(text: str, language: str | None = None) -> list[tuple[int, int]]:
    """Split ``text`` into sentences: (start, end) spans without surrounding white space, in order.

    Args:
        text: A paragraph, or any text.
        language: Its ISO 639-1 code, when known (``"ru"``, ``"zh"``): its abbreviations then stay whole.
    """
    spans = []
    for boundary in get_sentence_boundaries(language or DEFAULT_LANGUAGE, text):
        start, end = boundary["start_index"], boundary["end_index"]
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans
