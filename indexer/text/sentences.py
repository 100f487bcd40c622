"""Sentence boundaries inside a paragraph, as character spans."""

from __future__ import annotations

import re

# A boundary: sentence-final punctuation, any closing quotes or brackets, white space, then something that can
# open a sentence. Good enough for splitting long paragraphs; it never splits inside a word.
_BOUNDARY = re.compile(r"(?<=[.!?…])([\"'»”’)\]]*)\s+(?=[\"'«“‘(\[]?[A-ZÀ-ÖØ-Þ0-9])")
_LAST_WORD = re.compile(r"(\w+)\W*$")
# Abbreviations whose full stop does not end a sentence.
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "st",
    "jr",
    "sr",
    "vs",
    "etc",
    "inc",
    "ltd",
    "co",
    "corp",
    "gen",
    "col",
    "lt",
    "sgt",
    "gov",
    "sen",
    "rep",
    "no",
    "sig",
    "dott",
    "ing",
    "avv",
    "on",
    "pag",
    "ecc",
    "art",
}


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences: (start, end) spans without surrounding white space, in order."""
    spans = []
    start = len(text) - len(text.lstrip())
    for match in _BOUNDARY.finditer(text):
        word = _LAST_WORD.search(text, start, match.start())
        token = word.group(1) if word else ""
        if token.lower() in _ABBREVIATIONS or (len(token) == 1 and token.isupper()):
            continue  # "Dr. Rossi", "J. Smith", "U.S. forces"
        spans.append((start, match.end(1)))
        start = match.end()
    spans.append((start, len(text.rstrip())))
    return [span for span in spans if span[1] > span[0]]
