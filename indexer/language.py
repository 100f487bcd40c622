"""Which language a text is written in, offline (py3langid), as an ISO 639-1 code."""

from __future__ import annotations

import functools

# The languages news is most often written in. Restricting the classifier to them keeps short questions from being
# read as Venetian or Latin, which py3langid's full set of 97 languages does for a few in a hundred.
LANGUAGES = (
    "ar", "bg", "ca", "cs", "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "ga", "he", "hi", "hr",
    "hu", "hy", "id", "it", "ja", "ko", "lt", "lv", "ne", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sl", "sr",
    "sv", "ta", "th", "tr", "uk", "vi", "zh",
)  # fmt: skip
MIN_LETTERS = 3


def detect(text: str) -> str | None:
    """The language of ``text``, or None when it has too few letters to tell."""
    if _letters(text) < MIN_LETTERS:
        return None
    language, _ = _identifier().classify(text[:5000])
    return str(language)


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(LANGUAGES)
    return identifier


def passage_language(text: str, article_language: str | None, min_letters: int = 100) -> str | None:
    """A passage's language: detected from the passage if it is long enough to tell, else its article's."""
    if _letters(text) < min_letters:
        return article_language
    return detect(text)


def _letters(text: str) -> int:
    """Letters among the first thousand characters."""
    return sum(map(str.isalpha, text[:1000]))
