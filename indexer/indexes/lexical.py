"""Lexical search over passages (BM25), knowing which language each passage and the query are in.

Two BM25 indexes share the passages' row order:

- ``words``: stemmed words and whole codes (:func:`indexer.text.tokens.tokenize`). A query searches the passages in its
  own language with all its words, and passages in other languages of its script only with its codes, numbers and
  names, the words that survive translation.
- ``grams``: character 4-grams of words, which let cognates meet across languages, and of a passage's names in
  another script than Latin, spelt in Latin letters (:func:`indexer.text.tokens.passage_grams`), which a query's names
  meet across scripts.

Each one's scores are divided by their best in each passage language and weighted by :data:`WEIGHTS` (lexical
search). Hybrid search adds :meth:`LexicalIndex.evidence` to centered similarities (:mod:`indexer.models.centering`):
there words reorder the passages of one language without lifting one language above another, and only a passage
holding most of the question's words in its own language gains over the others (see the method).

The indexes keep term counts (not scores) by term, in NumPy files that searches memory-map, one set per segment: a
search scores every segment's with the whole archive's statistics (:class:`Bm25Set`), a merge combines segments'
counts without reading their text again, and a search reads only its terms' postings. (bm25s, which
this replaced, builds from Python token lists -- tens of GB for a million passages -- and cannot update.)
"""

from __future__ import annotations

import bisect
import functools
import json
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

from indexer import workers
from indexer.indexes.lexical_merge import stored_counts, write_merged
from indexer.text.language import CASED_SCRIPTS, script
from indexer.text.tokens import grams, name_grams, names_and_codes, passage_grams, tokenize

# Weight of each index's normalized score, for passages in the query's language and in another one ("names": the
# query's names' 4-grams, for passages in another script; as other grams). Measured on SQuAD-it (Italian passages,
# Italian and English questions) with multilingual-e5-small: see bench/retrieval.py.
WEIGHTS = {"same": {"words": 0.04, "grams": 0.03}, "other": {"words": 0.01, "grams": 0.03, "names": 0.03}}
# Hybrid search's weights beside centered similarities, which spread about four times wider than plain ones (other
# languages' evidence twice today's: English questions over SQuAD-it's Italian passages needed it), and
# the bonus of a passage in the question's language holding more than COVERAGE_FROM of its words (by idf): tuned on
# XQuAD's dev languages, single and mixed archives, and checked on SQuAD-it (bench/xquad.py, bench/retrieval.py);
# names across scripts left every XQuAD row within 0.001 of R@1 at 0.03, and at 0.06 cost its mixed archive 0.005.
HYBRID_WEIGHTS = {"same": {"words": 0.16, "grams": 0.12}, "other": {"words": 0.02, "grams": 0.06, "names": 0.03}}
COVERAGE_WEIGHT, COVERAGE_FROM = 0.2, 0.5
K1, B = 1.5, 0.75  # BM25's usual term-frequency saturation and length normalization (Lucene's defaults)
ROWS = "rows.json"
KINDS = {"words": tokenize, "grams": passage_grams}
PARTS = ("indptr", "indices", "data", "lengths")
CHUNK = 5_000  # passages per sparse block of term counts
# Candidates of top_rows beyond one passage in this many are scored whole: searching each token's postings for them
# costs more than reading the postings (measured at 1M passages, bench/search.py).
CANDIDATES_UP_TO = 64
DENSE_FROM = 8  # tokens whose postings could reach one passage in this many are added over the whole archive's array

Row = tuple[int, str, str | None]  # (passage_id, text, language)


class Bm25:
    """BM25 (Lucene's variant) over one kind of token: term counts by term, scored when a query comes.

    Args:
        vocabulary: Token -> term number.
        indptr, indices, data: Term counts as a compressed sparse column matrix (one column per term, one row per
            passage); memory-mapped when loaded.
        lengths: Each passage's token count.
    """

    def __init__(
        self, vocabulary: dict[str, int], indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, lengths: np.ndarray
    ) -> None:
        self.vocabulary = vocabulary
        self.indptr, self.indices, self.data, self.lengths = indptr, indices, data, lengths
        average = float(lengths.mean()) if len(lengths) and lengths.any() else 1.0
        # The length part of BM25's denominator, per passage: computed once, not per query.
        self._norms = norms(lengths, average)

    def frequency(self, token: str) -> int:
        """How many passages hold ``token``."""
        term = self.vocabulary.get(token)
        return 0 if term is None else int(self.indptr[term + 1] - self.indptr[term])

    def rows_of(self, terms: Iterable[int]) -> np.ndarray:
        """The sorted rows of passages holding any of these term numbers."""
        found = [self.indices[self.indptr[term] : self.indptr[term + 1]] for term in terms]
        if len(found) == 1:
            return found[0]  # one term's postings are sorted and distinct already
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int32)

    def terms_starting(self, prefix: str) -> list[int]:
        """The term numbers of the tokens beginning with ``prefix``."""
        start = bisect.bisect_left(self._sorted_tokens, prefix)
        end = bisect.bisect_left(self._sorted_tokens, prefix + "\U0010ffff", start)
        return [self.vocabulary[token] for token in self._sorted_tokens[start:end]]

    @functools.cached_property
    def _sorted_tokens(self) -> list[str]:
        return sorted(self.vocabulary)

    @classmethod
    def _of(cls, vocabulary: dict[str, int], counts: sparse.csr_matrix) -> Bm25:
        lengths = np.asarray(counts.sum(axis=1), dtype=np.float32).reshape(-1)
        columns = counts.tocsc()
        columns.sort_indices()
        indptr, indices = columns.indptr.astype(np.int64), columns.indices.astype(np.int32)
        return cls(vocabulary, indptr, indices, stored_counts(columns.data), lengths)

    @classmethod
    def build(cls, token_lists: Iterable[list[str]]) -> Bm25:
        return cls._of(*_counts(token_lists))

    def save(self, directory: Path, name: str) -> None:
        (directory / f"{name}.vocabulary.json").write_text(json.dumps(list(self.vocabulary)), encoding="utf-8")
        for part in PARTS:
            np.save(directory / f"{name}.{part}.npy", getattr(self, part))

    @classmethod
    def load(cls, directory: Path, name: str) -> Bm25:
        tokens = json.loads((directory / f"{name}.vocabulary.json").read_text(encoding="utf-8"))
        # Mapped, but as plain arrays: a query slices postings hundreds of times, and each slice of a np.memmap
        # builds a new memmap object (a third of a search's lexical time).
        parts = {part: np.asarray(np.load(directory / f"{name}.{part}.npy", mmap_mode="r")) for part in PARTS}
        parts["lengths"] = np.array(parts["lengths"])
        return cls({token: number for number, token in enumerate(tokens)}, **parts)

    def scores(
        self, tokens: Sequence[str], idf: dict[str, float] | None = None, norms: np.ndarray | None = None
    ) -> np.ndarray:
        """Every passage's BM25 score for ``tokens`` (a token given twice counts twice); :meth:`scores_at` scores a
        few passages alone. ``idf`` and ``norms`` replace this index's own statistics with those of a larger
        collection (:class:`Bm25Set`).
        """
        passages = len(self.lengths)
        norms = self._norms if norms is None else norms
        matched, parts = [], []
        for weight, start, end in self._terms(tokens, idf):
            row, count = self.indices[start:end], self.data[start:end].astype(np.float32)
            matched.append(row)
            parts.append(weight * count / (count + norms[row]))
        if not matched:
            return np.zeros(passages, dtype=np.float32)
        return np.bincount(np.concatenate(matched), np.concatenate(parts), minlength=passages).astype(np.float32)

    def scores_at(
        self,
        tokens: Sequence[str],
        rows: np.ndarray,
        idf: dict[str, float] | None = None,
        norms: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`scores` of ``rows`` (sorted row numbers) alone, in their order: each term's postings are searched,
        not read, which keeps a common term cheap in a large archive. The same sums in the same order as
        :meth:`scores`, so the same scores to the last bit."""
        norms = self._norms if norms is None else norms
        terms = list(self._terms(tokens, idf))
        if not terms or not len(rows):
            return np.zeros(len(rows), dtype=np.float32)
        # One binary search per term, the rest for all terms at once: a query has dozens of 4-grams, and per-term
        # NumPy calls cost more than the searches (bench/search.py at 1M passages).
        starts = np.array([start for _, start, _ in terms], dtype=np.int64)
        sizes = np.array([end - start for _, start, end in terms], dtype=np.int64)
        places = np.empty((len(terms), len(rows)), dtype=np.int64)
        keys = rows.astype(self.indices.dtype)  # of another type, NumPy would convert each term's whole postings
        for place, (_, start, end) in zip(places, terms):
            place[:] = np.searchsorted(self.indices[start:end], keys)
        found = places < sizes[:, None]
        places += starts[:, None]
        found[found] = self.indices[places[found]] == np.broadcast_to(rows, places.shape)[found]
        term, row = np.nonzero(found)  # term by term, as the sums below must go to give the same floats
        count = self.data[places[found]].astype(np.float32)
        weights = np.array([weight for weight, _, _ in terms], dtype=np.float32)
        parts = weights[term] * count / (count + norms[rows[row]])
        return np.bincount(row, parts, minlength=len(rows)).astype(np.float32)

    def idf(self, tokens: Iterable[str]) -> dict[str, float]:
        """The inverse document frequency of each of ``tokens`` this index holds."""
        passages = len(self.lengths)
        return {token: inverse_frequency(passages, f) for token in set(tokens) if (f := self.frequency(token))}

    def contributions(
        self, token: str, weight: float, norms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sorted rows of the passages holding ``token``, and what it adds to their score with this
        inverse document frequency (``weight``)."""
        term = self.vocabulary.get(token)
        if term is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows, count = (
            self.indices[self.indptr[term] : self.indptr[term + 1]],
            self.data[self.indptr[term] : self.indptr[term + 1]].astype(np.float32),
        )
        return rows, weight * count / (count + (self._norms if norms is None else norms)[rows])

    def _terms(self, tokens: Sequence[str], idf: dict[str, float] | None) -> Iterable[tuple[float, int, int]]:
        """(inverse document frequency, postings' start, end) of each of ``tokens`` some passage holds."""
        passages = len(self.lengths)
        for token in tokens:
            term = self.vocabulary.get(token)
            if term is None or (idf is not None and token not in idf):
                continue
            start, end = self.indptr[term], self.indptr[term + 1]
            if start < end:
                yield idf[token] if idf is not None else inverse_frequency(passages, end - start), start, end


def norms(lengths: np.ndarray, average: float) -> np.ndarray:
    """The length part of BM25's denominator, per passage."""
    return (K1 * (1 - B + B * lengths / average)).astype(np.float32)


def inverse_frequency(passages: int, frequency: int) -> float:
    return float(np.log1p((passages - frequency + 0.5) / (frequency + 0.5)))


def top_rows(
    index: Bm25 | Bm25Set, tokens: Sequence[str], k: int, mask: np.ndarray, count: int | None = None
) -> np.ndarray | None:
    """Sorted rows among ``mask`` that hold every passage of the ``k`` best BM25 scores for ``tokens`` (ties at the
    k-th too), found without reading the postings of tokens too common to lift a passage there (MaxScore); or
    ``None`` when they would be a good part of the archive, which is then cheaper scored whole.

    A token adds less than its idf to a passage's score (count / (count + norm) < 1). Tokens are taken rarest
    first, the passages holding them become candidates, and once the k-th best candidate scores more on the tokens
    taken than the idf of all the others together, a passage holding none of those taken cannot reach the k best.
    """
    times = dict.fromkeys(tokens, 0)
    for token in tokens:
        times[token] += 1  # a token given twice counts twice
    idf = index.idf(times)
    bounds = sorted(((idf[token] * n, token) for token, n in times.items() if token in idf), reverse=True)
    left = [sum(bound for bound, _ in bounds[i + 1 :]) for i in range(len(bounds))]  # what the tokens not taken can add
    candidates, partial = np.zeros(0, np.int64), np.zeros(0)
    count = np.count_nonzero(mask) if count is None else count  # the rows of mask, if the caller knows them
    share = count / max(len(mask), 1)  # of the passages, those that may be candidates
    for (_, token), rest in zip(bounds, left):
        if (len(candidates) + index.frequency(token) * share) * CANDIDATES_UP_TO > len(mask):
            return None  # known from its frequency, before its postings are read
        rows, scores = index.contributions(token, idf[token] * times[token])
        inside = mask[rows]
        # Both sorted by row: a stable sort merges them in linear time; a row's partial scores are then summed.
        merged = np.concatenate([candidates, rows[inside]])
        order = np.argsort(merged, kind="stable")
        merged, summed = merged[order], np.concatenate([partial, scores[inside]])[order]
        if not len(merged):
            continue
        starts = np.flatnonzero(np.concatenate([[True], merged[1:] != merged[:-1]]))
        candidates, partial = merged[starts], np.add.reduceat(summed, starts)
        if len(candidates) * CANDIDATES_UP_TO > len(mask):
            return None
        if len(candidates) >= k and rest > 0:
            kth = np.partition(partial, len(partial) - k)[len(partial) - k]
            if rest * (1 + 1e-6) < kth:  # the margin covers float32 rounding in the exact scores
                break
    return candidates


class Bm25Set:
    """Several segments' :class:`Bm25` indexes scored as one, rows one after the other.

    Document frequencies and the average length are the whole set's, so a passage scores the same whichever
    segment holds it. Tombstoned passages still count in them until a merge drops them: a small lag, since
    deletions are few beside an archive.
    """

    def __init__(self, parts: Sequence[Bm25]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(part.lengths) for part in self.parts])
        total = sum(float(part.lengths.sum()) for part in self.parts)
        average = total / self.offsets[-1] if self.offsets[-1] and total else 1.0
        self._norms = [norms(np.asarray(part.lengths), average) for part in self.parts]

    def idf(self, tokens: Sequence[str]) -> dict[str, float]:
        """The inverse document frequency, over every segment, of each of ``tokens`` the archive holds."""
        passages = int(self.offsets[-1])
        found = {}
        for token in set(tokens):
            frequency = self.frequency(token)
            if frequency:
                found[token] = inverse_frequency(passages, frequency)
        return found

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """:meth:`Bm25.scores` over every segment's rows."""
        idf = self.idf(tokens)
        if idf and len(self.parts) == 1:  # no copy of an array as long as the archive
            return self.parts[0].scores(tokens, idf, self._norms[0])
        total = np.zeros(int(self.offsets[-1]), dtype=np.float32)
        if idf:
            for part, part_norms, start, end in zip(self.parts, self._norms, self.offsets[:-1], self.offsets[1:]):
                total[start:end] = part.scores(tokens, idf, part_norms)
        return total

    def scores_at(self, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """:meth:`Bm25.scores_at` over every segment's rows."""
        idf = self.idf(tokens)
        found = np.zeros(len(rows), dtype=np.float32)
        if not idf:
            return found
        slices = np.searchsorted(rows, self.offsets)  # rows are sorted: each segment's are a slice of them
        for part, part_norms, start, first, last in zip(self.parts, self._norms, self.offsets, slices, slices[1:]):
            if first < last:
                found[first:last] = part.scores_at(tokens, rows[first:last] - start, idf, part_norms)
        return found

    def frequency(self, token: str) -> int:
        """How many passages of every segment hold ``token``."""
        return sum(part.frequency(token) for part in self.parts)

    def contributions(self, token: str, weight: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`Bm25.contributions` over every segment's rows."""
        found = [part.contributions(token, weight, norms) for part, norms in zip(self.parts, self._norms)]
        rows = [rows + start for (rows, _), start in zip(found, self.offsets)]
        return np.concatenate(rows or [np.zeros(0, np.int64)]), np.concatenate([s for _, s in found] or [np.zeros(0)])

    def coverage(self, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """For each of ``rows`` (sorted), the share of ``tokens``' inverse document frequency its passage holds:
        1 when it holds every token, however often. A token no passage holds counts as much as the question's
        average known one: the place a question names may be in no passage of its language ("Vietnam" beside an
        English passage on Brazil's coffee), and that passage then holds less of the question, not all of it. (Its
        own rarity cannot be known, and in a small archive ordinary words are missing too.)"""
        idf = self.idf(tokens)
        held = np.zeros(len(rows), dtype=np.float32)
        if not idf:
            return held
        unique = list(idf)
        for part, start, end in zip(self.parts, self.offsets[:-1], self.offsets[1:]):
            inside = (rows >= start) & (rows < end)
            if inside.any():
                # With no length part, a term's share is count / count: its idf once, however often it occurs.
                no_lengths = np.zeros(len(part.lengths), dtype=np.float32)
                held[inside] = part.scores_at(unique, rows[inside] - start, idf, no_lengths)
        known = sum(idf.values())
        return held / (known + len(set(tokens) - set(idf)) * known / len(idf))


def _counts(token_lists: Iterable[list[str]]) -> tuple[dict[str, int], sparse.csr_matrix]:
    """The tokens' numbers (as first met) and their counts, one row per token list."""
    numbers: defaultdict[str, int] = defaultdict()
    numbers.default_factory = numbers.__len__  # a token first met is numbered as it is added: one lookup a token
    blocks: list[sparse.csr_matrix] = []
    indptr, terms = [0], array("i")  # 4 bytes a token: a block of token lists stays small
    for tokens in token_lists:
        terms.extend(map(numbers.__getitem__, tokens))
        indptr.append(len(terms))
        if len(indptr) > CHUNK:
            blocks.append(_block(indptr, terms, len(numbers)))
            indptr, terms = [0], array("i")
    if len(indptr) > 1 or not blocks:
        blocks.append(_block(indptr, terms, len(numbers)))
    for block in blocks:
        block.resize(block.shape[0], len(numbers))
    return dict(numbers), sparse.vstack(blocks, format="csr")


def _stacked(blocks: Iterable[tuple[list[str], sparse.csr_matrix]]) -> tuple[dict[str, int], sparse.csr_matrix]:
    """Blocks of term counts, each with its own terms (column order), as one vocabulary and one matrix."""
    vocabulary: dict[str, int] = {}
    renumbered = []
    for terms, block in blocks:
        numbers = np.fromiter((vocabulary.setdefault(t, len(vocabulary)) for t in terms), np.int32, len(terms))
        shape = (block.shape[0], len(vocabulary))
        renumbered.append(sparse.csr_matrix((block.data, numbers[block.indices], block.indptr), shape=shape))
    for block in renumbered:
        block.resize(block.shape[0], len(vocabulary))
    if not renumbered:
        return vocabulary, sparse.csr_matrix((0, 0), dtype=np.float32)
    return vocabulary, sparse.vstack(renumbered, format="csr")


def chunk_counts(rows: Sequence[tuple[str, str | None]]) -> dict[str, tuple[list[str], sparse.csr_matrix]]:
    """Per kind of token, the term counts of these (text, language) rows, with terms of their own (workers run
    this on a build's chunks of rows)."""
    counted = {}
    for kind, tokens in KINDS.items():
        vocabulary, counts = _counts(tokens(text, language) for text, language in rows)
        counted[kind] = (list(vocabulary), counts)
    return counted


def _block(indptr: list[int], terms: array, vocabulary_size: int) -> sparse.csr_matrix:
    columns = np.frombuffer(terms, dtype=np.int32) if len(terms) else np.zeros(0, np.int32)
    block = sparse.csr_matrix(
        (np.ones(len(columns), np.float32), columns, np.asarray(indptr, np.int64)),
        shape=(len(indptr) - 1, vocabulary_size),
    )
    block.sum_duplicates()  # a token repeated in a passage becomes one count, before blocks pile up
    return block


class LexicalBuilder:
    """A :class:`LexicalIndex` built as its rows come: each :data:`CHUNK` of rows is counted as soon as it is
    complete, in a worker process while the writer goes on (:func:`indexer.workers.submit`), and the counts are
    stacked at the end."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._languages: list[str | None] = []
        self._waiting: list[tuple[str, str | None]] = []
        self._counted: list[Callable[[], dict[str, tuple[list[str], sparse.csr_matrix]]]] = []

    def add(self, rows: Iterable[Row]) -> None:
        """Add ``(passage_id, text, language)`` rows, after those added before."""
        for passage_id, text, language in rows:
            self._ids.append(passage_id)
            self._languages.append(language)
            self._waiting.append((text, language))
            if len(self._waiting) == CHUNK:
                self._count()

    def build(self) -> LexicalIndex:
        """The index of every row added."""
        if self._waiting:
            self._count()
        counted = [result() for result in self._counted]
        indexes = {kind: Bm25._of(*_stacked(chunk[kind] for chunk in counted)) for kind in KINDS}
        return LexicalIndex(np.asarray(self._ids, dtype=np.int64), self._languages, indexes)

    def _count(self) -> None:
        self._counted.append(workers.submit(chunk_counts, (self._waiting,), len(self._waiting)))
        self._waiting = []


class LexicalIndex:
    """BM25 over passages, by passage id; see the module docstring.

    Args:
        ids: Passage ids, in row order.
        languages: Each passage's language (ISO 639-1) or None.
        indexes: Per kind of token in :data:`KINDS`, a :class:`Bm25` (one segment) or a :class:`Bm25Set`.
        deleted: Passage ids that searches skip (tombstones).
    """

    def __init__(
        self,
        ids: np.ndarray,
        languages: list[str | None],
        indexes: dict[str, Bm25 | Bm25Set],
        deleted: np.ndarray | None = None,
    ) -> None:
        self.ids = ids
        self.languages = list(languages)
        # Rows per language, computed once: a query scores each language's passages in its own way.
        codes = np.asarray([language or "" for language in languages], dtype=object)
        self._rows_by_language = {language or None: codes == (language or "") for language in set(languages)}
        self.indexes = indexes
        self._alive = ~np.isin(ids, deleted) if deleted is not None and len(deleted) else None
        # Ids grow with time, so one segment's are in order; several segments' after a merge may not be.
        self._order = np.arange(len(ids)) if len(ids) < 2 or (ids[1:] > ids[:-1]).all() else np.argsort(ids)
        self._sorted_ids = ids[self._order]

    @classmethod
    def build(cls, rows: Sequence[Row]) -> LexicalIndex:
        """Index ``(passage_id, text, language)`` rows; the text should carry the title, as embeddings do."""
        builder = LexicalBuilder()
        builder.add(rows)
        return builder.build()

    @staticmethod
    def write_merged(parts: Sequence[LexicalIndex], keeps: Sequence[np.ndarray], directory: Path) -> None:
        """Write one segment's index of the rows of ``parts`` that ``keeps`` (masks) keep, in order, into
        ``directory``, from their term counts and in bounded memory (:mod:`indexer.indexes.lexical_merge`)."""
        directory.mkdir(parents=True, exist_ok=True)
        ids = np.concatenate([part.ids[keep] for part, keep in zip(parts, keeps)] or [np.zeros(0, np.int64)])
        languages = [lang for part, keep in zip(parts, keeps) for lang, kept in zip(part.languages, keep) if kept]
        (directory / ROWS).write_text(json.dumps({"ids": ids.tolist(), "languages": languages}), encoding="utf-8")
        for kind in KINDS:
            indexes = [part.indexes[kind] for part in parts]
            assert all(isinstance(index, Bm25) for index in indexes), "one segment's index each"
            write_merged(indexes, keeps, directory, kind)  # type: ignore[arg-type]

    @classmethod
    def combined(cls, parts: Sequence[LexicalIndex], deleted: np.ndarray | Sequence[np.ndarray]) -> LexicalIndex:
        """Several segments' indexes searched as one, skipping deleted passages: ``deleted`` holds each part's
        deleted passage ids, or is one array of ids deleted from every part. Tombstones are a segment's own: an
        article written again by ``sql --write`` keeps its passage ids, live in its new segment."""
        ids = np.concatenate([part.ids for part in parts] or [np.zeros(0, np.int64)])
        languages = [language for part in parts for language in part.languages]
        indexes = {kind: Bm25Set([part.indexes[kind] for part in parts]) for kind in KINDS}
        combined = cls(ids, languages, indexes)
        each = [deleted] * len(parts) if isinstance(deleted, np.ndarray) else deleted
        dead = [np.isin(part.ids, gone) for part, gone in zip(parts, each)]
        if any(mask.any() for mask in dead):
            combined._alive = ~np.concatenate(dead)
        return combined

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        rows = {"ids": self.ids.tolist(), "languages": self.languages}
        (directory / ROWS).write_text(json.dumps(rows), encoding="utf-8")
        for kind, index in self.indexes.items():
            index.save(directory, kind)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        rows = json.loads((directory / ROWS).read_text(encoding="utf-8"))
        indexes = {kind: Bm25.load(directory, kind) for kind in KINDS}
        return cls(np.asarray(rows["ids"], dtype=np.int64), rows["languages"], indexes)

    def __len__(self) -> int:
        return len(self.ids)

    def rows_holding(self, tokens_of: Callable[[str | None], Iterable[str]], prefix: bool = False) -> np.ndarray:
        """The sorted rows of the passages holding a word, read in each passage's language: ``tokens_of(language)``
        gives the word's tokens in that language (or the beginnings of tokens, with ``prefix``). A word of several
        tokens (a run of Chinese, cut into pairs of characters) needs them all; a prefix, any token it begins."""
        words = self.indexes["words"]
        assert isinstance(words, Bm25), "one segment's index"
        found = []
        for language, mask in self._rows_by_language.items():
            tokens = list(dict.fromkeys(tokens_of(language)))
            if prefix:
                rows = words.rows_of([term for token in tokens for term in words.terms_starting(token)])
            elif tokens and all(token in words.vocabulary for token in tokens):
                rows = functools.reduce(np.intersect1d, (words.rows_of([words.vocabulary[t]]) for t in tokens))
            else:
                continue
            found.append(rows[mask[rows]])
        found = [rows for rows in found if len(rows)]
        if len(found) == 1:
            return found[0]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int32)

    @property
    def present_languages(self) -> list[str | None]:
        """The languages of these passages, each once."""
        return list(self._rows_by_language)

    @functools.cached_property
    def _live_by_language(self) -> dict[str | None, tuple[np.ndarray, int]]:
        """Each language's live rows (a mask) and how many they are: what an unfiltered query starts from, once per
        index rather than once per query (a pass over every passage for each language)."""
        return self._by_language(self._alive)

    def _by_language(self, mask: np.ndarray | None) -> dict[str | None, tuple[np.ndarray, int]]:
        """Each language's rows within ``mask`` (``None``: all), and how many they are."""
        found = {}
        for language, in_language in self._rows_by_language.items():
            rows = in_language if mask is None else in_language & mask
            found[language] = rows, int(np.count_nonzero(rows))
        return found

    def search(
        self,
        query: str,
        language: str | None,
        k: int,
        allowed: np.ndarray | None = None,
        among: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` passages with the most lexical evidence for ``query`` (in ``language``), best first.

        Scores are the weighted sum of each index's BM25 score divided by its best; passages without a single
        matching token are left out. ``allowed``, when given, limits the search to those passage ids.

        ``among`` (passage ids) makes the 4-gram evidence, which reads far more postings than words do, count only
        for those passages and for the ``k`` best by words: hybrid search passes its dense candidates, since
        lexical evidence only breaks near-ties among them.
        """
        if not len(self):
            return []
        total, _, _, _ = self._weighted(query, language, k, WEIGHTS, allowed, among)
        return [(int(self.ids[row]), float(total[row])) for row in _best(total, k)]

    def evidence(
        self,
        query: str,
        language: str | None,
        k: int,
        among: np.ndarray,
        allowed: np.ndarray | None = None,
        centered: bool = True,
    ) -> list[tuple[int, float]]:
        """What hybrid search adds to the centered similarity of the passages ``among`` (the dense candidates) and
        of the ``k`` best by words, as (passage id, evidence): zero or less, but for a strong match.

        Within each passage language, a passage's weighted score (:data:`HYBRID_WEIGHTS`) less the best one's: the
        best lexical match of each language loses nothing, the others lose their distance to it, so words reorder
        a language's passages but cannot lift a language whose passages share the question's words (all of its
        own language's, only the names and numbers of another's) above one that shares fewer. A passage in the
        question's language that holds more than :data:`COVERAGE_FROM` of its words (by idf) gains
        :data:`COVERAGE_WEIGHT` times the excess: such a match, counting the words no passage holds
        (:meth:`Bm25Set.coverage`), is rarely an off-topic passage. Beside plain
        similarities (``centered`` false: an archive of one language), the weights are :data:`WEIGHTS` and there
        is no such gain: in one language this ranks as :meth:`search` does.
        """
        if not len(self):
            return []
        weights = HYBRID_WEIGHTS if centered else WEIGHTS
        total, groups, scored, floors = self._weighted(query, language, k, weights, allowed, among, same_script=True)
        assert scored is not None
        evidence = np.zeros(len(scored), dtype=np.float32)
        kept = np.zeros(len(scored), dtype=bool)
        for (rows, same, words), floor in zip(groups, floors):
            inside = rows[scored]
            if not inside.any():
                continue
            kept |= inside
            best = max(floor, total[scored[inside]].max())  # one of the passages scored, or the best by words
            evidence[inside] = total[scored[inside]] - best
            if centered and same and words:
                coverage = self.indexes["words"].coverage(words, scored[inside])
                evidence[inside] += COVERAGE_WEIGHT * np.maximum(coverage - COVERAGE_FROM, 0)
        return list(zip(self.ids[scored[kept]].tolist(), evidence[kept].tolist()))

    def _weighted(
        self,
        query: str,
        language: str | None,
        k: int,
        weights: dict[str, dict[str, float]],
        allowed: np.ndarray | None,
        among: np.ndarray | None,
        same_script: bool = False,
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, bool, list[str]]], np.ndarray | None, list[np.float32]]:
        """Each row's weighted lexical score; the (rows, same language as the query, word tokens) of each passage
        language; with ``among``, the sorted rows whose 4-grams were scored (``among``'s and the k best by words);
        and each language's floor. With ``among``, only rows that may be among the k best by words or are scored
        may get their words (see :func:`top_rows`), and only the rows scored get their 4-grams: a language's best
        passage may then be one left out, whose score is its floor, the weighted words score of its best passage by
        words (0 when no word matched), which no passage left out exceeds.

        Passages in another script than the query's are matched by their names' 4-grams, both spelt in Latin
        letters (:func:`indexer.text.tokens.name_grams`); with ``same_script`` by those alone, and only in a script
        with capitals: between scripts only numbers match as words, and on XQuAD they reordered a language's
        passages for the worse."""
        if allowed is None:
            by_language = self._live_by_language
        else:
            mask = np.isin(self.ids, allowed)
            if self._alive is not None:
                mask &= self._alive
            by_language = self._by_language(mask)
        groups, crossing, counts = [], [], []
        for passage_language, (rows, count) in by_language.items():
            if not count:
                continue
            same = language is None or passage_language == language
            crosses = language is not None and script(passage_language) != script(language)
            if crosses and same_script and script(passage_language) not in CASED_SCRIPTS:
                continue  # its names were not spelt in Latin letters: nothing of the question's can match it
            if same:
                words = tokenize(query, language)
            else:
                words = [] if crosses and same_script else names_and_codes(query, language, passage_language)
            groups.append((rows, same, words))
            crossing.append(crosses)
            counts.append(count)
        total = np.zeros(len(self), dtype=np.float32)
        added = self._add_words(total, groups, counts, weights, k, pruned=among is not None)
        scored = None
        if among is not None:
            dense = self._rows_of(among)
            scored = np.union1d(dense, _best_words(total, k, groups, added, dense))
            self._add_missing_words(total, groups, weights, scored, added)
        gram_scores = {}
        for crosses in set(crossing):
            tokens = name_grams(query, language) if crosses else grams(query, language)
            if scored is None:
                gram_scores[crosses] = _matched(self.indexes["grams"], tokens)
            else:  # a few rows: those matched and their scores, without an array as long as the archive
                found = self.indexes["grams"].scores_at(tokens, scored)
                gram_scores[crosses] = scored[found > 0], found[found > 0]
        add = _add_normalized if scored is None else _add_normalized_at
        for (rows, same, _), crosses in zip(groups, crossing):
            weight = weights["other"]["names"] if crosses else _weight(weights, same, "grams")
            add(total, *gram_scores[crosses], rows, weight)
        floors = [
            np.float32(_weight(weights, same, "words") if best > 0 else 0)
            for (_, same, _), (best, _) in zip(groups, added)
        ]
        return total, groups, scored, floors

    def _add_words(
        self,
        total: np.ndarray,
        groups: list[tuple[np.ndarray, bool, list[str]]],
        counts: list[int],
        weights: dict[str, dict[str, float]],
        k: int,
        pruned: bool,
    ) -> list[tuple[np.float32, np.ndarray | None]]:
        """Add each passage language's weighted word scores to ``total``, divided by that language's best; return
        each language's best and the rows added to (``None``: all); ``counts`` are how many rows each language
        has. ``pruned``: only to the rows that may be the k best of their language (:func:`top_rows`), all that is
        needed beside dense candidates, with :meth:`_add_missing_words` for the rows scored later."""
        words_index = self.indexes["words"]
        word_scores: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}  # languages often share words
        added = []
        for (rows, same, words), count in zip(groups, counts):
            weight = _weight(weights, same, "words")
            candidates = top_rows(words_index, words, k, rows, count) if words and pruned else None
            if candidates is not None:
                found = words_index.scores_at(words, candidates)
                best = found.max() if len(found) else np.float32(0)
                if best > 0:
                    total[candidates] += weight * (found / best)
            elif words:
                if tuple(words) not in word_scores:
                    word_scores[tuple(words)] = _matched(words_index, words)
                best = _add_normalized(total, *word_scores[tuple(words)], rows, weight)
            else:
                best = np.float32(0)
            added.append((best, candidates))
        return added

    def _add_missing_words(
        self,
        total: np.ndarray,
        groups: list[tuple[np.ndarray, bool, list[str]]],
        weights: dict[str, dict[str, float]],
        scored: np.ndarray,
        added: list[tuple[np.float32, np.ndarray | None]],
    ) -> None:
        """Add to ``total`` the word scores of the rows ``scored`` that :meth:`_add_words` left out."""
        for (rows, same, words), (best, candidates) in zip(groups, added):
            if candidates is None or best <= 0:
                continue
            missing = scored[rows[scored]]
            missing = missing[~np.isin(missing, candidates, assume_unique=True)]
            if len(missing):
                scores = self.indexes["words"].scores_at(words, missing)
                total[missing] += _weight(weights, same, "words") * (scores / best)

    def languages_of(self, passage_ids: Sequence[int]) -> list[str | None]:
        """The language of each of these passage ids (each must be in the index)."""
        places = np.searchsorted(self._sorted_ids, np.asarray(passage_ids, dtype=np.int64))
        return [self.languages[row] for row in self._order[places]]

    def _rows_of(self, passage_ids: np.ndarray) -> np.ndarray:
        """The rows of these passage ids, sorted; found by binary search over the ids in order."""
        ids = np.asarray(passage_ids, dtype=np.int64)
        places = np.searchsorted(self._sorted_ids, ids)
        inside = places < len(self._sorted_ids)
        places, ids = places[inside], ids[inside]
        return np.unique(self._order[places[self._sorted_ids[places] == ids]])


def _weight(weights: dict[str, dict[str, float]], same: bool, kind: str) -> float:
    """The weight of an index's scores (``kind``) in passages of the question's language or another one."""
    return weights["same" if same else "other"][kind]


def _best(scores: np.ndarray, k: int, hint: np.ndarray | None = None) -> np.ndarray:
    """The rows of the ``k`` best positive scores, best first (ties in row order), without sorting them all.
    ``hint``: rows that may score well; the k-th best of theirs is at most the k-th best of all, so only the rows
    scoring as much are gathered, not every row that scores."""
    floor = np.float32(0)
    if hint is not None and len(hint) >= k:
        floor = -np.partition(-scores[hint], k - 1)[k - 1]
    found = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    if len(found) > k:
        values = scores[found]
        kth = -np.partition(-values, k - 1)[k - 1]  # the k-th best score
        better = found[values > kth]
        found = np.concatenate([better, found[values == kth][: k - len(better)]])
    return found[np.argsort(-scores[found], kind="stable")]


def _best_words(
    total: np.ndarray,
    k: int,
    groups: list[tuple[np.ndarray, bool, list[str]]],
    added: list[tuple[np.float32, np.ndarray | None]],
    hint: np.ndarray,
) -> np.ndarray:
    """:func:`_best` of the word scores in ``total``: among the rows they were added to when every language's
    were pruned (:meth:`LexicalIndex._add_words`), not a pass over every passage; else bounded by the ``hint``
    rows' (the dense candidates, which often hold the words)."""
    candidates = [rows for (_, _, words), (_, rows) in zip(groups, added) if words]
    if any(rows is None for rows in candidates):
        return _best(total, k, hint)
    touched = np.unique(np.concatenate(candidates)) if candidates else np.zeros(0, np.int64)
    return touched[_best(total[touched], k)]  # in row order, as _best breaks ties


def _matched(index: Bm25Set, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Every passage's score for ``tokens`` and the rows where it is not zero: few beside a large archive, and all
    that is added -- or ``None`` when the tokens' postings could be a good part of the archive (common words)."""
    scores = index.scores(tokens)
    if sum(index.frequency(token) for token in set(tokens)) * DENSE_FROM > len(scores):
        return scores, None
    return scores, np.flatnonzero(scores > 0)  # scores are never negative; a mask is 3x faster than nonzero


def _add_normalized(
    total: np.ndarray, scores: np.ndarray, matched: np.ndarray | None, rows: np.ndarray, weight: float
) -> np.float32:
    """Add ``weight`` times ``scores`` on ``rows`` (a mask), divided by the best among them, to ``total``, and
    return that best; only the ``matched`` rows are read, not the whole archive -- unless they may be a good part
    of it (``None``: common words): then whole arrays, read in order, cost a seventh of gathering and scattering
    the matched rows, and are divided and weighed in place (new arrays as long as the archive cost page faults)."""
    if matched is None:
        inside = np.where(rows, scores, np.float32(0))  # a copy: ``scores`` may serve another language too
        best = inside.max()
        if best > 0:
            np.divide(inside, best, out=inside)
            np.multiply(inside, weight, out=inside)  # weight * (scores / best), as _add_normalized_at's
            total += inside
        return best
    return _add_normalized_at(total, matched, scores[matched], rows, weight)


def _add_normalized_at(
    total: np.ndarray, matched: np.ndarray, scores: np.ndarray, rows: np.ndarray, weight: float
) -> np.float32:
    """:func:`_add_normalized` of the ``scores`` of the ``matched`` rows alone (the others score nothing)."""
    inside = rows[matched]
    if not inside.any():
        return np.float32(0)
    found = scores[inside]
    best = found.max()
    total[matched[inside]] += weight * (found / best)
    return best
