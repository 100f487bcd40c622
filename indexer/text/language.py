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


def detect(text: str) -> str | None:
    """The language of ``text``, or None when it has too few letters to tell."""
    if _letters(text) < MIN_LETTERS:
        return None
    language, _ = _identifier().classify(text[:5000])
    return str(language)


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
    letters = [_letters(p) for p in passages]
    detected = [detect(p) if count >= PASSAGE_LETTERS else None for p, count in zip(passages, letters)]
    if language is None:
        by_language: Counter[str] = Counter()
        for count, found in zip(letters, detected):
            if found:
                by_language[found] += count
        language = by_language.most_common(1)[0][0] if by_language else detect(text)
    return language, [found or language for found in detected]


def _letters(text: str) -> int:
    """Letters among the first thousand characters."""
    return sum(map(str.isalpha, text[:1000]))
