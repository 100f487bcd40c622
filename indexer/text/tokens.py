"""Words for lexical search: codes and numbers stay whole, ordinary words are stemmed in their own language.

"MQ-9", "F-16", "COVID-19", "55mila", "2023" and "1.200" are single tokens that match only themselves; the default
patterns of bm25s and DuckDB would cut "MQ-9" into "mq" and drop the "9". Words without digits are split at
hyphens and apostrophes, lowercased, stripped of stopwords, stemmed with the Snowball stemmer of their language and
folded to ASCII, so "città" and "citta" meet. A word keeps its combining marks (Devanagari's vowel signs, Arabic's
vowel marks), which folding then drops, so "हिन्दी" is one word and not five letters.

Chinese, Japanese, Thai, Lao, Khmer and Burmese are written without spaces between words: a run of their
characters becomes its overlapping pairs of characters (grapheme clusters), the usual way to index such text
without a dictionary, chosen by script, so it holds for any language written in one.

Across languages ordinary words rarely match, but cognates share letters ("parliament", "parlamento"): :func:`grams`
cuts words into character 4-grams for that. Names cross scripts when spelt in Latin letters: a passage's 4-grams
also hold those of its names in another script transliterated (:func:`passage_grams`), which a question's names,
transliterated too, meet (:func:`name_grams`): "Зеленский" as "zelenskiy" shares most of its 4-grams with
"Zelensky". A name is a capitalized word, so only scripts with capitals (Cyrillic, Greek, Armenian...) have names
to find; Arabic, Hebrew, Devanagari or Chinese names meet through the model's vectors alone.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import regex
import Stemmer
from anyascii import anyascii
from bm25s import stopwords as bm25s_stopwords

# A word: a letter or digit, then letters, digits and combining marks. Runs of words joined by single hyphens,
# dots, commas or slashes ("MQ-9", "1.200", "24/7") are one token when they hold a digit.
_WORD_PATTERN = r"[\p{L}\p{N}][\p{L}\p{M}\p{N}]*"
_RUN = regex.compile(rf"{_WORD_PATTERN}(?:[-./,]{_WORD_PATTERN})*")
_WORD = regex.compile(_WORD_PATTERN)
_DIGIT = regex.compile(r"\d")
# Scripts written without spaces between words; a run of them, marks included, is cut out of the text first.
_UNSPACED = regex.compile(r"(?:[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]\p{M}*)+")
_CLUSTER = regex.compile(r"\X")
# The same scripts as code points, for the standard library's faster re (a build fingerprints every article): one
# of their characters, or a run of other word characters.
_UNSPACED_CHARS = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b"
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua9e0-\ua9ff\uaa60-\uaa7f\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
_PLAIN_WORD = re.compile(f"[{_UNSPACED_CHARS}]|[^\\W{_UNSPACED_CHARS}]+")

_SNOWBALL = {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "et": "estonian", "eu": "basque", "fi": "finnish", "fr": "french", "ga": "irish",
    "hi": "hindi", "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "nl": "dutch", "no": "norwegian", "fa": "persian", "pl": "polish", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "sv": "swedish", "ta": "tamil", "tr": "turkish",
}  # fmt: skip
_STOPWORDS = {
    "da": bm25s_stopwords.STOPWORDS_DANISH, "de": bm25s_stopwords.STOPWORDS_GERMAN,
    "en": bm25s_stopwords.STOPWORDS_EN_PLUS, "es": bm25s_stopwords.STOPWORDS_SPANISH,
    "fr": bm25s_stopwords.STOPWORDS_FRENCH, "it": bm25s_stopwords.STOPWORDS_ITALIAN,
    "nl": bm25s_stopwords.STOPWORDS_DUTCH, "no": bm25s_stopwords.STOPWORDS_NORWEGIAN,
    "pt": bm25s_stopwords.STOPWORDS_PORTUGUESE, "ru": bm25s_stopwords.STOPWORDS_RUSSIAN,
    "sv": bm25s_stopwords.STOPWORDS_SWEDISH, "tr": bm25s_stopwords.STOPWORDS_TURKISH,
}  # fmt: skip


def tokenize(text: str, language: str | None) -> list[str]:
    """Every searchable token of ``text``, read as ``language`` (an ISO 639-1 code, or None if unknown)."""
    tokens: list[str] = []
    for spaced, unspaced in _pieces(text):
        for run in _RUN.findall(spaced):
            tokens.extend(_run_tokens(run, language))
        tokens.extend(pairs(unspaced))
    return tokens


@functools.lru_cache(maxsize=200_000)
def _run_tokens(run: str, language: str | None) -> tuple[str, ...]:
    """The tokens of one run of words: kept, as a build tokenizes the same runs again and again."""
    if _DIGIT.search(run):
        return (fold(run.lower()),)
    analyze = _analyzer(language)
    return tuple(token for word in _WORD.findall(run) if (token := analyze(word)))


def plain_words(text: str) -> list[str]:
    """The words of ``text`` as written, casefolded, unstemmed; each character of a script without spaces between
    words counts as one, or a Chinese paragraph would be a few long "words"."""
    return _PLAIN_WORD.findall(text.casefold())


def pairs(run: str) -> list[str]:
    """A run of text without spaces between words as its overlapping pairs of characters (one, if it is one)."""
    clusters = [folded for cluster in _CLUSTER.findall(run) if (folded := fold(cluster))]  # a lone mark folds away
    if len(clusters) <= 1:
        return clusters
    return [first + second for first, second in zip(clusters, clusters[1:])]


def _pieces(text: str) -> list[tuple[str, str]]:
    """``text`` as (spaced text, the run of unspaced script after it) pairs; most text is one spaced piece."""
    found = _UNSPACED.search(text)
    if found is None:
        return [(text, "")]
    pieces, start = [], 0
    for match in _UNSPACED.finditer(text):
        pieces.append((text[start : match.start()], match.group()))
        start = match.end()
    pieces.append((text[start:], ""))
    return pieces


def names_and_codes(text: str, language: str | None, passage_language: str | None) -> list[str]:
    """The tokens of a query that can match text in another language: codes, numbers and capitalized names.

    Names are analyzed as words of ``passage_language``, as the passages that may contain them were.
    """
    query_words = _analyzer(language)
    analyze = _analyzer(passage_language)
    tokens: list[str] = []
    for run in _RUN.findall(" ".join(spaced for spaced, _ in _pieces(text))):
        if _DIGIT.search(run):
            tokens.append(fold(run.lower()))
            continue
        for word in _WORD.findall(run):
            # A lowercase word is an ordinary word of the query's language; so is a capitalized stopword ("What").
            if word[0].isupper() and query_words(word) and (token := analyze(word)):
                tokens.append(token)
    return tokens


def grams(text: str, language: str | None, size: int = 4) -> list[str]:
    """Character ``size``-grams of the words of ``text`` that are not stopwords of ``language``, edges marked."""
    return _grams_of_words(_WORD.findall(text), language, size)


def _grams_of_words(words: list[str], language: str | None, size: int = 4) -> list[str]:
    tokens: list[str] = []
    for word in words:
        tokens.extend(_word_grams(word, language, size))
    return tokens


@functools.lru_cache(maxsize=200_000)
def _word_grams(word: str, language: str | None, size: int) -> tuple[str, ...]:
    """One word's :func:`grams` (kept, as :func:`_run_tokens` are)."""
    word = fold(word.lower())
    if len(word) > 2 and word not in _stopwords(language):
        return tuple(_grams_of(word, size))
    return ()


def _grams_of(word: str, size: int = 4) -> list[str]:
    marked = f"<{word}>"
    return [marked[i : i + size] for i in range(len(marked) - size + 1)]


def passage_grams(text: str, language: str | None) -> list[str]:
    """A passage's :func:`grams`, and those of its names written in a script other than Latin, transliterated."""
    words = _WORD.findall(text)
    tokens = _grams_of_words(words, language)
    if text.isascii():
        return tokens  # its names already are among its grams
    for name in _names_among(words, language):
        tokens.extend(_transliterated_grams(name))
    return tokens


@functools.lru_cache(maxsize=100_000)
def _transliterated_grams(name: str) -> tuple[str, ...]:
    """The 4-grams of a name spelt in Latin letters, if it is written in another script."""
    return () if fold(name).isascii() else tuple(_grams_of(anyascii(name).lower()))


def name_grams(text: str, language: str | None) -> list[str]:
    """The 4-grams of the names in a query, spelt in Latin letters: what can match a passage in another script."""
    return [gram for name in _names(text, language) for gram in _grams_of(anyascii(name).lower())]


def _names(text: str, language: str | None) -> list[str]:
    """The capitalized words of ``text`` that are not stopwords of ``language`` ("What" is not a name)."""
    return _names_among(_WORD.findall(text), language)


def _names_among(words: list[str], language: str | None) -> list[str]:
    analyze = _analyzer(language)
    return [word for word in words if word[0].isupper() and analyze(word)]


@functools.cache
def _stopwords(language: str | None) -> frozenset[str]:
    return frozenset(_STOPWORDS.get(language or "", ()))


@functools.cache
def _analyzer(language: str | None):
    stopwords = _stopwords(language)
    stemmer = Stemmer.Stemmer(_SNOWBALL[language]) if language in _SNOWBALL else None

    @functools.lru_cache(maxsize=200_000)
    def analyze(word: str) -> str:
        word = word.lower()
        if len(word) < 2 or word in stopwords:
            return ""
        stem = stemmer.stemWord(word) if stemmer else word
        return fold(stem)

    return analyze


def fold(word: str) -> str:
    """Accents off, compatibility forms to plain ones ("２０２３" to "2023"), lowercase again after that."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).lower()
