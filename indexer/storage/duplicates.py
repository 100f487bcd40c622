"""Duplicate stories: one report run by several outlets -- copied, lightly edited, or translated.

Candidates come from the vector index: a copy's or a translation's passages lie next to the original's, so each
new article's passages look up their nearest neighbours there. The index does the work MinHash-LSH buckets would,
without a second index to keep, and finds translations, which share no shingles. Each candidate pair is then
checked on the text:

- ``exact``: the same words, case, punctuation and spacing aside;
- ``near``: at least ``NEAR`` of their word 3-shingles in common (Jaccard), as wire copy edited by an outlet has,
  and the same numbers (see below): templated reports -- markets, weather, results -- differ in little else. In
  scripts without spaces between words each character is a word (:func:`indexer.text.tokens.plain_words`);
- ``translation``: in two languages, each passage of the shorter article has a counterpart in the other (mean best
  cosine at least ``ALIGNED``), and the numbers of both -- dates, figures, "MQ-9", which translation keeps --
  mostly agree. Reports of one event by other reporters can align nearly as closely as a translation (the model
  sees the same topic); their numbers tell them apart.

Numbers agree when the Jaccard similarity of the two articles' numbers, counted with repeats, is at least
``NUMBERS`` (or neither has any).

Pairs are stored with the segment of the newer article (the ``duplicates`` view); pairs that connect make one
story, whose id (``articles.story_id``) is the article_id of its earliest article.

Most candidate pairs are other reports on a topic, and a large build meets millions (bench/search.py's synthetic
passages each have 19 neighbours above ``CANDIDATE``). Each article is first reduced to a :class:`Sketch` -- its
word count, its words' hash and a MinHash of its 3-shingles, as MinHash-LSH keeps -- which a writer keeps for the
articles it has met (:class:`Sketches`), so that a build reads each article's body once, not once per commit. A pair
is compared in full only when its sketches allow a match: the same words, or an estimated shingle Jaccard within
``SKETCH_ERROR`` of ``NEAR`` or above, or two languages and numbers (a possible translation). Which pairs match is
unchanged: a pair of Jaccard ``NEAR`` has an estimate below ``NEAR - SKETCH_ERROR`` with a probability of about
one in 300,000 (4.5 standard deviations).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from indexer import workers
from indexer.text.tokens import plain_words

if TYPE_CHECKING:
    from indexer.storage.snapshot import Snapshot

NEIGHBOURS = 20  # per passage: a translation's passages rank below same-language articles on the same event
CANDIDATE = 0.88  # cosine of a passage to its copy or translation (multilingual-e5-small: translations 0.9+)
NEAR = 0.5
ALIGNED = 0.865  # translations 0.867-0.907 on tests/fixtures/stories*; other reports of the event up to 0.879
NUMBERS = 0.6  # copies and translations keep all their numbers; other reports of the event shared at most half
# Less text than this (a headline, a caption) is too little to call two articles one; a character of Chinese,
# Japanese or Thai counts as a word (indexer.text.tokens.plain_words).
MIN_WORDS = 20
BATCH = 4096  # passages looked up at once
SKETCH = 128  # MinHash values per article: an estimate's standard deviation at Jaccard 0.5 is 0.044
SKETCH_ERROR = 0.2
SKETCHES_KEPT = 4_000_000  # articles whose sketch a writer keeps (about 700 B each), for the commits after
PAIRS_AT_ONCE = 100_000  # candidate pairs whose sketches are compared at once (110 MB of arrays)
SKETCHED_AT_ONCE = 20_000  # articles' texts read and sketched at once (in worker processes, in a build)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# MinHash by multiply-shift: (a * x + b) mod 2^64, its high 32 bits, for SKETCH random odd a and random b.
_MULTIPLIERS, _OFFSETS = (np.random.default_rng(seed).integers(1, 2**63, SKETCH, dtype=np.uint64) for seed in (1, 2))
_MULTIPLIERS |= np.uint64(1)
_SHINGLE = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], np.uint64)  # a 3-shingle's hash


@dataclass(frozen=True)
class Match:
    """Why two articles are one story: ``kind`` (exact, near, translation) and its measure (see the module)."""

    kind: str
    similarity: float


@dataclass(frozen=True)
class Fingerprint:
    """What comparing an article takes: its words (counted, and hashed whole), their 3-shingles, its numbers.

    Shingles are hashed and kept in a sorted array: a set of Python ints would take eight times the memory. The
    hashes are the same in every process (CRC-32 of each word, BLAKE2 of them all), so that worker processes can
    sketch articles for the writer. Numbers are a set of (number, occurrence) pairs, so that sets compare as the
    multisets they stand for, and a build's many comparisons cost set operations, not new Counters.
    """

    article_id: str
    words: int
    digest: int
    shingles: np.ndarray
    numbers: frozenset[tuple[str, int]]
    language: str | None

    @classmethod
    def of(cls, article_id: str, body: str, language: str | None) -> Fingerprint:
        words = plain_words(body)
        keys = np.fromiter((zlib.crc32(word.encode()) for word in words), np.uint64, len(words))
        if len(keys) >= 3:
            hashed = keys[:-2] * _SHINGLE[0] + keys[1:-1] * _SHINGLE[1] + keys[2:] * _SHINGLE[2]
        else:  # one shingle of the whole (short) text
            hashed = (keys * _SHINGLE[: len(keys)]).sum(keepdims=True, dtype=np.uint64) + np.uint64(len(keys))
        # 32 bits: two articles' few hundred shingles rarely collide
        shingles = np.unique((hashed >> np.uint64(32)).astype(np.uint32).view(np.int32))
        digest = hashlib.blake2b("\x1f".join(words).encode(), digest_size=8).digest()
        counted = Counter(re.sub(r"[.,]", "", number) for number in _NUMBER.findall(body))
        numbers = frozenset((number, n) for number, count in counted.items() for n in range(count))
        return cls(article_id, len(words), int.from_bytes(digest, "little", signed=True), shingles, numbers, language)


@dataclass(frozen=True)
class Sketch:
    """What the first look at a pair takes (:meth:`Sketches.possible`): an article's word count, its words' hash,
    whether it has numbers, its language, and the MinHash of its 3-shingles (:data:`SKETCH` values)."""

    words: int
    digest: int
    numbers: bool
    language: str | None
    minhash: np.ndarray

    @classmethod
    def of(cls, fingerprint: Fingerprint) -> Sketch:
        keys = fingerprint.shingles.astype(np.uint64)[:, None]
        minhash = ((keys * _MULTIPLIERS + _OFFSETS) >> np.uint64(32)).min(axis=0).astype(np.uint32)
        return cls(fingerprint.words, fingerprint.digest, bool(fingerprint.numbers), fingerprint.language, minhash)


class Sketches:
    """The sketches of the articles a writer has met, by article id, in arrays (a build of ten million passages
    meets two million articles); the oldest half goes when :data:`SKETCHES_KEPT` are held."""

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}
        self._used = 0  # rows written; those of forgotten articles stay until the arrays are compacted
        self._minhash = np.zeros((0, SKETCH), np.uint32)
        self._scalars = np.zeros((0, 4), np.int64)  # words, digest, has numbers, language (its number, or -1)
        self._languages: dict[str, int] = {}

    def __contains__(self, article_id: str) -> bool:
        return article_id in self._rows

    def add(self, article_id: str, sketch: Sketch) -> None:
        if self._used >= SKETCHES_KEPT:
            self._keep(list(self._rows)[-SKETCHES_KEPT // 2 :])
        if self._used == len(self._minhash):  # grown by half each time, as a list is
            grown = max(1024, len(self._minhash) * 3 // 2)
            self._minhash = np.resize(self._minhash, (grown, SKETCH))
            self._scalars = np.resize(self._scalars, (grown, 4))
        self._rows.pop(article_id, None)
        self._rows[article_id] = row = self._used
        self._minhash[row] = sketch.minhash
        language = -1 if sketch.language is None else self._languages.setdefault(sketch.language, len(self._languages))
        self._scalars[row] = (sketch.words, sketch.digest, sketch.numbers, language)
        self._used += 1

    def forget(self, article_ids: Iterable[str]) -> None:
        """Drop these articles' sketches (they were deleted, or are being written again)."""
        for article_id in article_ids:
            self._rows.pop(article_id, None)

    def possible(self, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
        """Which pairs (``first[i]``, ``second[i]``) might be one story, by their sketches alone (see the module)."""
        a = np.fromiter((self._rows[article_id] for article_id in first), np.int64, len(first))
        b = np.fromiter((self._rows[article_id] for article_id in second), np.int64, len(second))
        words, digest, numbers, language = (self._scalars[:, column] for column in range(4))
        enough = np.minimum(words[a], words[b]) >= MIN_WORDS
        same = (words[a] == words[b]) & (digest[a] == digest[b])
        estimate = (self._minhash[a] == self._minhash[b]).mean(axis=1)
        translated = (language[a] >= 0) & (language[b] >= 0) & (language[a] != language[b])
        return enough & (same | (estimate >= NEAR - SKETCH_ERROR) | (translated & ((numbers[a] | numbers[b]) > 0)))

    def _keep(self, article_ids: list[str]) -> None:
        rows = np.fromiter((self._rows[article_id] for article_id in article_ids), np.int64, len(article_ids))
        self._minhash, self._scalars = self._minhash[rows], self._scalars[rows]
        self._rows = {article_id: row for row, article_id in enumerate(article_ids)}
        self._used = len(article_ids)


def find(
    snapshot: Snapshot, passage_ids: Sequence[int], sketches: Sketches | None = None
) -> list[tuple[str, str, str, float]]:
    """The duplicates of the articles these new passages belong to: (article_id, duplicate_id, kind, similarity)
    pairs, the smaller id first.

    Candidates are gathered first, as pairs of article numbers; then the candidates not in ``sketches`` (a writer's,
    kept from commit to commit) are read in one pass (a query per batch would read the bodies of half the archive
    each time) and sketched, and only the pairs their sketches allow are compared in full, their texts read again.
    """
    sketches = Sketches() if sketches is None else sketches
    numbers: dict[str, int] = {}
    segments: dict[str, str] = {}
    found = []
    for start in range(0, len(passage_ids), BATCH):
        found.append(_candidates(snapshot, passage_ids[start : start + BATCH], numbers, segments))
        snapshot.vectors.release()  # a build's pass reads every vector once: they need not stay resident
    pairs = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    if not len(pairs):
        return []
    names = list(numbers)
    met = np.unique(np.concatenate([pairs >> 32, pairs & 0xFFFFFFFF])).tolist()
    unseen = [names[number] for number in met if names[number] not in sketches]
    texts = snapshot.article_texts(_by_segment(unseen, segments))
    while read := list(itertools.islice(texts, SKETCHED_AT_ONCE)):
        # len(read) stands for the job's passages: each article has one at least
        for (article_id, _, _), made in zip(read, workers.starmap(sketch_article, read, len(read))):
            sketches.add(article_id, made)
    compared = []
    for start in range(0, len(pairs), PAIRS_AT_ONCE):
        block = pairs[start : start + PAIRS_AT_ONCE]
        first, second = [names[n] for n in (block >> 32).tolist()], [names[n] for n in (block & 0xFFFFFFFF).tolist()]
        allowed = sketches.possible(first, second).tolist()
        compared += [(a, b) for a, b, keep in zip(first, second, allowed) if keep]
    wanted = sorted({article_id for pair in compared for article_id in pair})
    fingerprints = {
        article_id: Fingerprint.of(article_id, body, language)
        for article_id, body, language in snapshot.article_texts(_by_segment(wanted, segments))
    }
    article_vectors = functools.cache(lambda article_id: snapshot.vectors.vectors(snapshot.locate([article_id])[0][2]))
    matches = []
    for pair in compared:
        a, b = sorted(pair)
        match = compare(fingerprints[a], fingerprints[b], article_vectors)
        if match is not None:
            matches.append((a, b, match.kind, match.similarity))
    return sorted(matches)


def sketch_article(article_id: str, body: str, language: str | None) -> Sketch:
    """An article's :class:`Sketch` (a top-level function: worker processes run it)."""
    return Sketch.of(Fingerprint.of(article_id, body, language))


def _by_segment(article_ids: Iterable[str], segments: dict[str, str]) -> dict[str, list[str]]:
    """These articles grouped by the segment that holds each."""
    grouped: dict[str, list[str]] = {}
    for article_id in article_ids:
        grouped.setdefault(segments[article_id], []).append(article_id)
    return grouped


def _candidates(
    snapshot: Snapshot, passage_ids: Sequence[int], numbers: dict[str, int], segments: dict[str, str]
) -> np.ndarray:
    """Pairs of articles in which one of these passages has a close neighbour, as ``(i << 32) | j`` of their
    numbers in ``numbers`` (which it extends, as it does ``segments``: article -> the segment holding it), the
    smaller number first."""
    ids = np.asarray(passage_ids, dtype=np.int64)
    neighbours, similarities = snapshot.vectors.neighbours(snapshot.vectors.vectors(ids), NEIGHBOURS, ids, CANDIDATE)
    close = (similarities >= CANDIDATE) & (neighbours >= 0)
    rows, columns = np.nonzero(close)
    if not len(rows):
        return np.zeros(0, np.int64)
    owners, places = snapshot.owners(np.concatenate([ids[rows], neighbours[rows, columns]]))
    segments.update(zip(owners, places))
    own = np.fromiter((numbers.setdefault(a, len(numbers)) for a in owners), np.int64, len(owners))
    first, second = own[: len(rows)], own[len(rows) :]
    differ = first != second
    low, high = np.minimum(first, second)[differ], np.maximum(first, second)[differ]
    return np.unique((low << 32) | high)


def compare(a: Fingerprint, b: Fingerprint, vectors: Callable[[str], np.ndarray]) -> Match | None:
    """Whether two articles are one story, and how; ``vectors`` gives an article's passage vectors."""
    if min(a.words, b.words) < MIN_WORDS:
        return None
    if (a.words, a.digest) == (b.words, b.digest):
        return Match("exact", 1.0)
    numbers_agree = _jaccard(a.numbers, b.numbers) >= NUMBERS if a.numbers or b.numbers else True
    if not numbers_agree:
        return None
    common = len(np.intersect1d(a.shingles, b.shingles, assume_unique=True))
    shared = common / (len(a.shingles) + len(b.shingles) - common)
    if shared >= NEAR:
        return Match("near", shared)
    if a.language and b.language and a.language != b.language and a.numbers:
        similarities = vectors(a.article_id) @ vectors(b.article_id).T
        alignment = float(max(similarities.max(axis=1).mean(), similarities.max(axis=0).mean()))
        if alignment >= ALIGNED:
            return Match("translation", alignment)
    return None


def _jaccard(a: frozenset, b: frozenset) -> float:
    """|a ∩ b| / |a ∪ b|."""
    common = len(a & b)
    union = len(a) + len(b) - common
    return common / union if union else 0.0


def stories(pairs: Iterable[tuple[str, str]], published: dict[str, datetime | None]) -> dict[str, str]:
    """article_id -> story_id of every article that ``pairs`` join to another: its story's earliest article."""
    found = {}
    for component in _components(pairs):
        first = min(component, key=lambda article_id: story_order(published[article_id], article_id))
        found.update(dict.fromkeys(component, first))
    return found


def story_order(published: datetime | None, article_id: str) -> tuple:
    """The sort key of a story's articles: by publication date, undated ones last, then by id."""
    return (published is None, published or datetime.min, article_id)


def _components(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The connected groups of articles that ``pairs`` link (union-find)."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for node in parent:
        groups.setdefault(root(node), []).append(node)
    return list(groups.values())
