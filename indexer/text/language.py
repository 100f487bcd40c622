"""Which language a text is written in, offline (py3langid), as an ISO 639-1 code."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import pickle
import tempfile
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import sparse

from indexer import config

# The languages news is most often written in. Restricting the classifier to them keeps short questions from being
# read as Venetian or Latin, which py3langid's full set of 97 languages does for a few in a hundred.
LANGUAGES = (
    "ar", "bg", "ca", "cs", "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "ga", "he", "hi", "hr",
    "hu", "hy", "id", "it", "ja", "ko", "lt", "lv", "ne", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sl", "sr",
    "sv", "ta", "th", "tr", "uk", "vi", "zh",
)  # fmt: skip
MIN_LETTERS = 3
# The script each of LANGUAGES is written in, where it is not Latin: lexical evidence crosses between languages of
# one script (names, cognates), not between scripts.
_SCRIPTS = {
    "ar": "Arabic", "fa": "Arabic", "bg": "Cyrillic", "ru": "Cyrillic", "sr": "Cyrillic", "uk": "Cyrillic",
    "el": "Greek", "he": "Hebrew", "hi": "Devanagari", "ne": "Devanagari", "hy": "Armenian", "ta": "Tamil",
    "th": "Thai", "ja": "Japanese", "zh": "Han", "ko": "Hangul",
}  # fmt: skip

# Scripts with capital letters, where a capitalized word can be taken for a name
# (:func:`indexer.text.tokens.name_grams`).
CASED_SCRIPTS = frozenset({"Latin", "Cyrillic", "Greek", "Armenian"})


def script(language: str | None) -> str:
    """The script ``language`` is written in (Latin unless :data:`_SCRIPTS` says otherwise, or when unknown)."""
    return _SCRIPTS.get(language or "", "Latin")


READ_CHARS = 5000  # a text's language is told from its beginning
SIDE_BY_SIDE = 512  # texts walked through the automaton at once, of similar lengths
SIDE_BY_SIDE_FROM = 64  # texts; fewer are classified one by one: a step side by side costs ~12 us however few walk
RAW_FLOOR = float(np.finfo(np.float32).min)  # py3langid's score of a language no feature speaks for


def detect(text: str) -> str | None:
    """The language of ``text``, or None when it has too few letters to tell."""
    return detect_all([text])[0]


def detect_all(texts: Sequence[str]) -> list[str | None]:
    """:func:`detect` of each of ``texts``, many texts at once (see :func:`_told`)."""
    found: list[str | None] = [None] * len(texts)
    told = [place for place, text in enumerate(texts) if _letters(text) >= MIN_LETTERS]
    for place, language in zip(told, _told([texts[place] for place in told])):
        found[place] = language
    return found


def _told(texts: Sequence[str]) -> list[str]:
    """py3langid's language of each of ``texts``.

    py3langid finds a text's features (byte n-grams) by walking an automaton one byte at a time in Python: a
    third of a build's CPU. Many texts walk it side by side here, those of similar lengths together, each step
    one NumPy operation for all of them, and are scored together with the same model: the same languages (a test
    compares them), but for two languages scored within float rounding of each other, which py3langid's order of
    sums may decide otherwise. A few texts are classified one by one, as walking side by side costs by the step."""
    identifier = _identifier()
    if len(texts) < SIDE_BY_SIDE_FROM:
        return [str(identifier.classify(text[:READ_CHARS])[0]) for text in texts]
    encoded = [identifier._encode(text[:READ_CHARS]) for text in texts]  # noqa: SLF001 -- as classify encodes
    found = [""] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
    for start in range(0, len(order), SIDE_BY_SIDE):
        group = order[start : start + SIDE_BY_SIDE]
        for i, language in zip(group, _classified([encoded[i] for i in group])):
            found[i] = language
    return found


def _classified(texts: list[bytes]) -> list[str]:
    """py3langid's ``classify`` of these UTF-8 texts (longest first), walked and scored together."""
    automaton, identifier = _automaton(), _identifier()
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    data = np.frombuffer(b"".join(texts), np.uint8)
    # Each text's state after each byte; 0 (the start, which ends no feature) after its end.
    states = np.zeros((int(lengths[0]), len(texts)), np.int32)
    state = np.zeros(len(texts), np.int32)
    walking = len(texts)
    for step, after in enumerate(states):
        while lengths[walking - 1] <= step:  # texts are longest first: the ended ones are the last
            walking -= 1
        state = automaton.next[automaton.row[state[:walking]] + data[starts[:walking] + step]]
        after[:walking] = state
    feature = automaton.output[states]
    _, text = np.nonzero(feature >= 0)
    visits = sparse.csr_matrix(
        (np.ones(len(text), np.float32), (text, feature[feature >= 0])), shape=(len(texts), len(automaton.table))
    )
    visits.sum_duplicates()
    np.log1p(visits.data, out=visits.data)
    scores = np.asarray(visits @ automaton.table, dtype=np.float32) + identifier.nb_pc
    scores[np.diff(visits.indptr) == 0] = RAW_FLOOR  # no feature: py3langid's floor, the first language wins
    # py3langid folds a language's two columns (Serbian in two scripts) into one before its argmax: the label won is
    # the same either way.
    return [str(identifier.nb_classes[i]) for i in scores.argmax(axis=1)]


class _Automaton(NamedTuple):
    next: np.ndarray  # state -> next state, at the state's row plus the byte read
    row: np.ndarray  # each state's row in ``next``
    output: np.ndarray  # the feature each state ends, or -1
    table: np.ndarray  # each feature's log-probability in each language, in float32 as classify computes it


@functools.cache
def _automaton() -> _Automaton:
    identifier = _identifier()
    return _Automaton(
        np.asarray(identifier.tk_nextmove, dtype=np.int32),
        np.asarray(identifier._rowbase, dtype=np.int64),  # noqa: SLF001
        np.asarray(identifier.tk_output, dtype=np.int32),
        np.ascontiguousarray(identifier.nb_ptc, dtype=np.float32),
    )


@functools.cache
def _identifier():
    """py3langid's classifier for :data:`LANGUAGES`, kept ready in the model cache: unpacking py3langid's own
    compressed model costs a process 0.6 s and a 65 MB temporary file, reading it back from the cache 0.07 s."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    key = hashlib.sha256(f"{importlib.metadata.version('py3langid')} {LANGUAGES}".encode()).hexdigest()[:16]
    cached = config.cache_dir() / f"py3langid-{key}.pickle"
    try:
        with cached.open("rb") as file:
            identifier = pickle.load(file)  # noqa: S301 -- our own file, in the user's own cache
        if isinstance(identifier, LanguageIdentifier):
            return identifier
    except Exception:  # noqa: BLE001 -- missing, partial or from another version: unpack it again
        pass
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(LANGUAGES)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".partial", delete=False) as file:
            pickle.dump(identifier, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(file.name, cached)
    except OSError:
        pass  # a cache that cannot be written: unpacked again next time
    return identifier


PASSAGE_LETTERS = 100  # fewer, and a passage takes its article's language


def article_languages(
    text: str, passages: Sequence[str], language: str | None = None
) -> tuple[str | None, list[str | None]]:
    """The language of an article and of each of its passages.

    Passages long enough to tell are detected one by one; the others take the article's language: ``language``
    when the article states it, else the one most of the detected passages' letters are in, else the whole
    ``text``'s. Reading each passage once is half of what detecting the article as well would cost.
    """
    return articles_languages([(text, passages, language)])[0]


def articles_languages(
    articles: Sequence[tuple[str, Sequence[str], str | None]],
) -> list[tuple[str | None, list[str | None]]]:
    """:func:`article_languages` of each (text, passages, stated language), their passages detected together."""
    letters = [[_letters(p) for p in passages] for _, passages, _ in articles]
    asked = [
        p
        for (_, passages, _), counts in zip(articles, letters)
        for p, n in zip(passages, counts)
        if n >= PASSAGE_LETTERS
    ]
    told = iter(_told(asked))
    detected = [[next(told) if n >= PASSAGE_LETTERS else None for n in counts] for counts in letters]
    languages: list[str | None] = []
    for (_, _, stated), counts, found in zip(articles, letters, detected):
        by_language: Counter[str] = Counter()
        for count, language in zip(counts, found):
            if language:
                by_language[language] += count
        languages.append(stated if stated is not None else by_language.most_common(1)[0][0] if by_language else None)
    undecided = [place for place, language in enumerate(languages) if language is None]
    for place, language in zip(undecided, detect_all([articles[place][0] for place in undecided])):
        languages[place] = language  # nothing in its passages to tell by: the whole text
    return [(language, [passage or language for passage in found]) for language, found in zip(languages, detected)]


def _letters(text: str) -> int:
    """Letters among the first thousand characters."""
    return sum(map(str.isalpha, text[:1000]))
