"""Lexical search: tokens that keep codes whole, language detection, and BM25 that knows languages."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.indexes.lexical import LexicalIndex
from indexer.text import language as languages_module
from indexer.text.language import article_languages, detect, detect_all
from indexer.text.tokens import grams, name_grams, names_and_codes, passage_grams, plain_words, tokenize

CODES = ["mq-9", "f-16", "covid-19", "55mila", "2023", "1.200"]


def test_codes_and_numbers_stay_whole() -> None:
    tokens = tokenize("Il drone MQ-9, gli F-16 e il COVID-19: 55mila casi nel 2023, 1.200 morti.", "it")
    assert all(code in tokens for code in CODES)
    assert "mq" not in tokens and "9" not in tokens and "16" not in tokens


def test_words_are_stemmed_in_their_language_and_stopwords_dropped() -> None:
    assert tokenize("soldati soldato", "it") == ["sold", "sold"]
    assert tokenize("the soldiers were fighting", "en") == ["soldier", "fight"]
    assert tokenize("dell'esercito", "it") == ["eserc"]  # split at the apostrophe; "dell" is a stopword
    assert tokenize("città", "it") == tokenize("citta", "it")  # accents folded after stemming
    assert tokenize("anglo-sassone", "it") == ["anglo", "sasson"]  # hyphenated words without digits split
    assert tokenize("Ciao mondo", None) == ["ciao", "mondo"]  # unknown language: lowercased only


def test_names_and_codes_cross_languages() -> None:
    tokens = names_and_codes("What happened to the MQ-9 drone over the Black Sea in 2023?", "en", "it")
    assert tokens == ["mq-9", tokenize("Black", "it")[0], tokenize("Sea", "it")[0], "2023"]
    assert "what" not in tokens and "drone" not in tokens  # question words and ordinary words do not translate


def test_grams_mark_word_edges_and_meet_across_languages() -> None:
    assert grams("Parlamento", "it")[:2] == ["<par", "parl"]
    shared = set(grams("parliament", "en")) & set(grams("parlamento", "it"))
    assert {"<par", "parl", "amen", "ment"} <= shared
    assert grams("the of", "en") == []


def test_names_meet_across_scripts_spelt_in_latin_letters() -> None:
    russian, english = set(name_grams("Что сказал Зеленский?", "ru")), set(name_grams("What did Zelensky say?", "en"))
    assert len(russian & english) >= 5  # "<zel", "zele", "elen", "lens", "ensk"
    assert "what" not in "".join(english) and name_grams("что сказал", "ru") == []  # stopwords and lowercase: no names
    assert name_grams("Αθήνα", "el")[:2] == ["<ath", "athi"]
    # A passage keeps its own 4-grams and adds its names' in Latin letters; Latin text adds nothing.
    assert passage_grams("Зеленский посетил Киев.", "ru") == grams("Зеленский посетил Киев.", "ru") + name_grams(
        "Зеленский Киев", "ru"
    )
    assert passage_grams("Zelensky visited Kyiv.", "en") == grams("Zelensky visited Kyiv.", "en")
    assert passage_grams("زار زيلينسكي كييف", "ar") == grams("زار زيلينسكي كييف", "ar")  # no capitals, no names


def test_plain_words_count_each_character_of_a_script_without_spaces() -> None:
    assert plain_words("MQ-9无人机, Città! ひらがな ไทย") == ["mq", "9", "无", "人", "机", "città", *"ひらがな", *"ไทย"]


def test_language_detection() -> None:
    assert detect("Quanti soldati ucraini sono stati uccisi in combattimento?") == "it"
    assert detect("What happened to the MQ-9 drone?") == "en"
    assert detect("Was ist mit der Drohne passiert?") == "de"
    assert detect("MQ-9") is None  # too few letters to tell


def _one_by_one(texts: list[str]) -> list[str | None]:
    """py3langid's own classify, a text at a time: what :func:`detect_all` must agree with."""
    return [
        str(languages_module._identifier().classify(t[: languages_module.READ_CHARS])[0])
        if languages_module._letters(t) >= languages_module.MIN_LETTERS
        else None
        for t in texts
    ]


def test_many_texts_walked_side_by_side_get_the_languages_py3langid_gives_each() -> None:
    data = Path(__file__).parent.parent / "bench" / "data"
    passages = sorted(data.glob("*/passages*.jsonl"))
    questions = sorted(data.glob("*/queries_*.jsonl"))  # short: the close calls
    texts = [
        json.loads(line)["text"]
        for path in passages + questions
        for line in path.read_text(encoding="utf-8").splitlines()[: 100 if path in passages else None]
    ]
    # Too few letters, a stated upper case, no feature the model knows ("ǅǅǅ": py3langid's floor), a long text
    texts += ["MQ-9", "", "Sì.", "ЧТО ЭТО ТАКОЕ", "東京", "😀 abc", "ǅǅǅ", "x" * 20_000, "\ud800 broken surrogate"]
    assert len({detect(text) for text in texts}) >= 6  # Arabic, Chinese, English, German, Russian, Spanish...
    assert detect_all(texts) == _one_by_one(texts)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=300), max_size=20))
def test_any_texts_side_by_side_get_py3langid_s_languages(texts: list[str]) -> None:
    with (
        mock.patch.object(languages_module, "SIDE_BY_SIDE_FROM", 1),
        mock.patch.object(languages_module, "SIDE_BY_SIDE", 7),
    ):
        assert detect_all(texts) == _one_by_one(texts)  # groups of 7 texts, of every length


def test_an_articles_language_is_its_passages_and_short_passages_take_it() -> None:
    english = "The drone was lost over the Black Sea after two Russian jets intercepted it in March. " * 2
    italian = "Il drone è precipitato nel Mar Nero dopo l'incontro con due caccia russi, ha detto il Pentagono. " * 2
    more_italian = "I soldati ucraini hanno difeso la città per tre mesi, secondo il ministero della difesa. " * 2
    texts = [italian, "Sì.", english, more_italian]
    assert article_languages(" ".join(texts), texts) == ("it", ["it", "it", "en", "it"])
    assert article_languages("Sì.", texts, "de") == ("de", ["it", "de", "en", "it"])  # stated: kept
    assert article_languages("Das ist der Artikel, auf Deutsch.", ["Sì."]) == ("de", ["de"])  # nothing to tell by


ROWS = [
    (10, "Il drone MQ-9 Breacher è precipitato nel Mar Nero dopo l'incontro con due caccia russi.", "it"),
    (11, "I soldati ucraini hanno difeso la città per tre mesi.", "it"),
    (12, "Il parlamento ha approvato la legge sul bilancio.", "it"),
    (20, "The parliament passed the budget law after a long debate.", "en"),
    (21, "Russian jets intercepted an American drone near Crimea.", "en"),
]


@pytest.fixture
def lexical(tmp_path: Path) -> LexicalIndex:
    built = LexicalIndex.build(ROWS)
    built.save(tmp_path / "lexical")
    return LexicalIndex.load(tmp_path / "lexical")  # every test goes through a save and a load


def test_a_code_finds_only_its_passage(lexical: LexicalIndex) -> None:
    hits = lexical.search("MQ-9", None, k=5)
    assert [passage_id for passage_id, _ in hits] == [10]


def test_same_language_uses_every_word(lexical: LexicalIndex) -> None:
    hits = lexical.search("soldati ucraini", "it", k=5)
    assert hits[0][0] == 11


def test_other_languages_match_only_names_codes_and_cognates(lexical: LexicalIndex) -> None:
    # "drone" is an ordinary English word: it ranks the English passage above the Italian one that also says it.
    hits = dict(lexical.search("Which drone did the jets hit?", "en", k=5))
    assert hits[21] > hits.get(10, 0)
    # A name and a code reach across: the Italian MQ-9 passage ranks first for an English question about it.
    assert lexical.search("What happened to the MQ-9 Breacher?", "en", k=5)[0][0] == 10
    # Cognates meet through 4-grams: "parliament" finds "parlamento".
    assert 12 in dict(lexical.search("parliament", "en", k=5))


def test_names_find_passages_in_another_script(tmp_path: Path) -> None:
    rows = [
        (1, "Зеленский встретился с министрами в Киеве.", "ru"),
        (2, "Министры обсудили бюджет на следующий год.", "ru"),
        (3, "Zelensky met the ministers in Kyiv on Monday.", "en"),
        (4, "The ministers discussed next year's budget.", "en"),
    ]
    LexicalIndex.build(rows).save(tmp_path / "lexical")
    lexical = LexicalIndex.combined([LexicalIndex.load(tmp_path / "lexical")], np.zeros(0, np.int64))
    assert [hit for hit, _ in lexical.search("What did Zelensky say?", "en", k=5)] == [3, 1]
    assert [hit for hit, _ in lexical.search("Что сказал Зеленский?", "ru", k=5)] == [1, 3]
    # In hybrid search the name reorders the other script's passages, without lifting them above their own.
    evidence = dict(lexical.evidence("What did Zelensky say?", "en", 4, np.array([1, 2, 3, 4])))
    assert evidence[1] == 0 and evidence[2] < 0


def test_a_word_no_passage_holds_counts_against_coverage() -> None:
    rows = [(1, "Coffee prices rose in Brazil this year.", "en"), (2, "The rice harvest fell.", "en")]
    words = LexicalIndex.combined([LexicalIndex.build(rows)], np.zeros(0, np.int64)).indexes["words"]
    first = np.array([0])
    assert words.coverage(tokenize("coffee prices", "en"), first)[0] == pytest.approx(1.0)
    # "Vietnam" is in no passage: the Brazilian report holds a third of the question (by idf), not half of it.
    assert words.coverage(tokenize("Vietnam coffee harvest", "en"), first)[0] == pytest.approx(1 / 3)


def test_allowed_ids_restrict_the_search(lexical: LexicalIndex) -> None:
    assert lexical.search("parliament budget", "en", k=5, allowed=np.array([12]))[0][0] == 12
    assert lexical.search("MQ-9", None, k=5, allowed=np.array([11, 12])) == []


def test_scores_are_ordered_and_nothing_matches_nothing(lexical: LexicalIndex) -> None:
    hits = lexical.search("drone jets Crimea", "en", k=5)
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
    assert lexical.search("zzzz qqqq", "en", k=5) == []


def test_an_empty_index_finds_nothing(tmp_path: Path) -> None:
    empty = LexicalIndex.build([])
    empty.save(tmp_path / "empty")
    assert len(LexicalIndex.load(tmp_path / "empty")) == 0
    assert LexicalIndex.load(tmp_path / "empty").search("anything", "en", k=3) == []


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(["it", "en", "de", None]))
def test_tokenizers_take_any_text(text: str, language: str | None) -> None:
    for tokens in (tokenize(text, language), grams(text, language), names_and_codes(text, language, "it")):
        assert all(token and token == token.lower() and not any(c.isspace() for c in token) for token in tokens)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1), min_size=1, max_size=5), st.text())
def test_lexical_search_takes_any_text(texts: list[str], query: str) -> None:
    index = LexicalIndex.build([(i, text, detect(text)) for i, text in enumerate(texts)])
    hits = index.search(query, detect(query), k=3)
    assert len(hits) <= 3 and all(0 <= passage_id < len(texts) and score > 0 for passage_id, score in hits)


def test_segments_score_as_one_index_and_merge_into_a_rebuild(tmp_path: Path) -> None:
    """Segments searched together score as one index of all their rows; a merge without the tombstoned rows equals
    an index built from the others, without tokenizing anything again."""
    stale = (99, "Un testo che verrà tolto, con parole sue: zibaldone MQ-9.", "it")
    LexicalIndex.build([*ROWS[:3], stale]).save(tmp_path / "first")
    LexicalIndex.build(ROWS[3:]).save(tmp_path / "second")
    parts = [LexicalIndex.load(tmp_path / "first"), LexicalIndex.load(tmp_path / "second")]
    queries = [("MQ-9", None), ("parliament budget", "en"), ("soldati ucraini", "it"), ("zibaldone", "it")]
    together, whole = LexicalIndex.combined(parts, np.zeros(0, np.int64)), LexicalIndex.build([*ROWS, stale])
    for query, language in queries:
        ours, theirs = together.search(query, language, k=5), whole.search(query, language, k=5)
        assert [i for i, _ in ours] == [i for i, _ in theirs] and ours
        assert [s for _, s in ours] == pytest.approx([s for _, s in theirs])
    without = LexicalIndex.combined(parts, np.array([99]))
    assert 99 not in {i for query, language in queries for i, _ in without.search(query, language, k=10)}
    keeps = [part.ids != 99 for part in parts]
    LexicalIndex.write_merged(parts, keeps, tmp_path / "merged")
    merged, rebuilt = LexicalIndex.load(tmp_path / "merged"), LexicalIndex.build(ROWS)
    assert sorted(merged.ids.tolist()) == sorted(row[0] for row in ROWS)
    for query, language in queries[:3]:
        ours, theirs = merged.search(query, language, k=5), rebuilt.search(query, language, k=5)
        assert [i for i, _ in ours] == [i for i, _ in theirs] and ours
        assert [s for _, s in ours] == pytest.approx([s for _, s in theirs])
    assert 99 not in {i for i, _ in merged.search("zibaldone", "it", k=10)}


@pytest.mark.parametrize("block", [1, 7, 1 << 22])
def test_a_merge_streamed_in_blocks_holds_the_kept_rows_counts(tmp_path: Path, monkeypatch, block: int) -> None:
    """Three segments' counts merged a few postings at a time, tombstoned rows dropped: every token's postings,
    counts and every passage's length are those of an index built from the kept rows' tokens."""
    from indexer.indexes import lexical_merge
    from indexer.indexes.lexical import Bm25

    monkeypatch.setattr(lexical_merge, "BLOCK", block)
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(40)]
    token_lists = [list(rng.choice(words, size=rng.integers(0, 12))) for _ in range(90)]
    cuts = [0, 25, 25, 90]  # the middle segment is empty
    parts, keeps = [], []
    for i, (start, end) in enumerate(zip(cuts, cuts[1:])):
        Bm25.build(token_lists[start:end]).save(tmp_path, f"part{i}")
        parts.append(Bm25.load(tmp_path, f"part{i}"))
        keeps.append(rng.random(end - start) < 0.7)
    lexical_merge.write_merged(parts, keeps, tmp_path, "merged")
    merged = Bm25.load(tmp_path, "merged")
    kept = [tokens for tokens, keep in zip(token_lists, np.concatenate(keeps)) if keep]
    rebuilt = Bm25.build(kept)
    assert merged.lengths.tolist() == rebuilt.lengths.tolist()
    for token in words:
        ours, theirs = merged.vocabulary.get(token), rebuilt.vocabulary.get(token)
        rows, counts = merged.contributions(token, 1.0, np.zeros(len(kept), np.float32))
        if theirs is None:
            assert len(rows) == 0  # only in dropped rows
            continue
        assert ours is not None
        assert rows.tolist() == rebuilt.contributions(token, 1.0)[0].tolist()
        assert merged.data[merged.indptr[ours] : merged.indptr[ours + 1]].tolist() == (
            rebuilt.data[rebuilt.indptr[theirs] : rebuilt.indptr[theirs + 1]].tolist()
        )


def test_term_counts_take_a_byte_each(tmp_path: Path) -> None:
    """A segment stores a term's count in a passage in a byte: 300 times counts as 255, which BM25's saturation
    scores within 1% of it anyway; a segment written with float32 counts scores the same."""
    from indexer.indexes.lexical import Bm25
    from indexer.indexes.lexical_merge import MAX_COUNT

    index = Bm25.build([["mare"] * 300 + ["nero"] * 45, ["mare"] * MAX_COUNT + ["nero"] * 90, ["nave"]])
    index.save(tmp_path, "words")
    loaded = Bm25.load(tmp_path, "words")
    assert loaded.data.dtype == np.uint8 and loaded.data.max() == MAX_COUNT
    scores = loaded.scores(["mare"])
    assert scores[0] == scores[1] > 0 and scores[2] == 0
    Bm25(loaded.vocabulary, loaded.indptr, loaded.indices, loaded.data.astype(np.float32), loaded.lengths).save(
        tmp_path, "before"
    )  # as segments before stored them
    assert (Bm25.load(tmp_path, "before").scores(["mare", "nero"]) == loaded.scores(["mare", "nero"])).all()


def test_bm25_scores_follow_lucenes_formula() -> None:
    """One document of three holding a term once: idf x tf / (tf + k1 (1 - b + b len / avg len))."""
    from indexer.indexes.lexical import K1, B, Bm25

    index = Bm25.build([["drone", "mare"], ["mare"], ["mare", "nero", "mare", "nero"]])
    average = (2 + 1 + 4) / 3
    idf = np.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    expected = idf * 1 / (1 + K1 * (1 - B + B * 2 / average))
    assert index.scores(["drone"]) == pytest.approx([expected, 0, 0])
    assert index.scores(["unknown"]).tolist() == [0, 0, 0]


@given(
    st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]), max_size=60),
    st.integers(1, 20),
    st.lists(st.integers(0, 59), max_size=40),
)
def test_best_rows_equal_a_full_stable_sort(scores: list[float], k: int, hint: list[int]) -> None:
    """With or without a hint of rows that may score well (any rows: it bounds the pass, not the answer)."""
    from indexer.indexes.lexical import _best

    array = np.asarray(scores, dtype=np.float32)
    expected = [row for row in np.argsort(-array, kind="stable") if array[row] > 0][:k]
    assert _best(array, k).tolist() == expected
    rows = np.unique([row for row in hint if row < len(array)]).astype(np.int64)
    assert _best(array, k, rows).tolist() == expected


@given(
    st.lists(st.tuples(st.sampled_from([0.0, 0.25, 1.0, 3.5]), st.booleans()), min_size=1, max_size=60),
    st.sampled_from([0.0, 0.5]),
)
def test_scores_add_alike_over_their_matches_or_the_whole_array(cells: list[tuple[float, bool]], start: float) -> None:
    from indexer.indexes import lexical

    scores = np.asarray([score for score, _ in cells], dtype=np.float32)
    rows = np.asarray([inside for _, inside in cells])
    totals = []
    for matched in (np.flatnonzero(scores > 0), None):  # the matched rows alone, or the whole array in place
        total = np.full(len(cells), start, dtype=np.float32)
        best = lexical._add_normalized(total, scores, matched, rows, 0.04)
        totals.append((total.tolist(), best))
    assert totals[0] == totals[1]
    assert scores.tolist() == [score for score, _ in cells]  # the scores themselves untouched


PARALLEL_CHECK = """
import json, os
import numpy as np
from indexer import workers
from indexer.indexes import lexical
from indexer.indexes.lexical import LexicalIndex
from indexer.text.language import article_languages
from tests.test_lexical import ROWS
rows = [(number, text, language) for number, (_, text, language) in enumerate(ROWS * 3)]
asked = [(text, [text, text[:20]], None) for _, text, _ in rows]
alone, languages = LexicalIndex.build(rows), [article_languages(*a) for a in asked]
workers.PARALLEL_FROM, lexical.CHUNK = 0, 4  # several chunks, as a large build's
with workers.enabled():
    pids = set(workers.starmap(os.getpid, [()] * 8, 1)) | {workers.submit(os.getpid, (), 1)()}
    shared, found = LexicalIndex.build(rows), workers.starmap(article_languages, asked, 1)
ours, theirs = shared.indexes, alone.indexes
same = all(
    ours[kind].vocabulary == theirs[kind].vocabulary
    and all(np.array_equal(getattr(ours[kind], part), getattr(theirs[kind], part)) for part in lexical.PARTS)
    for kind in lexical.KINDS
)
print(json.dumps({"elsewhere": bool(pids - {os.getpid()}), "same_index": same, "same_languages": found == languages}))
"""


def test_a_large_builds_text_work_runs_in_worker_processes_with_the_same_result() -> None:
    """Language detection and tokenizing go to worker processes in a large build, and give what one process does.
    Run in a program of its own, as the CLI is: the workers import its main module again."""
    import json
    import subprocess
    import sys

    from indexer import workers

    if workers._cores() < 2:  # noqa: SLF001
        pytest.skip("one core: the work stays in this process")
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", PARALLEL_CHECK], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"elsewhere": True, "same_index": True, "same_languages": True}


def test_text_work_is_done_here_when_the_workers_break(monkeypatch) -> None:
    """A worker that dies (or a script that indexes at import time, which spawned workers import again) leaves
    the work to this process: slower, never wrong."""
    from concurrent.futures.process import BrokenProcessPool

    from indexer import workers
    from indexer.indexes import lexical as lexical_index

    class Broken:
        def map(self, *args, **kwargs):
            raise BrokenProcessPool("a worker died")

        def submit(self, *args, **kwargs):
            raise BrokenProcessPool("a worker died")

    class DiesOnTheWay:
        def submit(self, *args, **kwargs):
            class Future:
                def result(self):
                    raise BrokenProcessPool("a worker died with the job")

            return Future()

    monkeypatch.setattr(workers, "_cores", lambda: 2)
    monkeypatch.setattr(workers, "PARALLEL_FROM", 0)
    texts = [(text, [text], None) for _, text, _ in ROWS]
    alone = LexicalIndex.build(list(ROWS))
    for pool in (Broken, DiesOnTheWay):
        monkeypatch.setattr(workers, "_pool", functools.cache(lambda cores, pool=pool: pool()))
        monkeypatch.setattr(lexical_index, "CHUNK", 2)  # several chunks, each submitted
        with workers.enabled():
            if pool is Broken:
                assert workers.starmap(article_languages, texts, 10**6) == [article_languages(*t) for t in texts]
            built = LexicalIndex.build(list(ROWS) * 1000)
        assert built.indexes["words"].vocabulary == alone.indexes["words"].vocabulary
        assert len(built) == 1000 * len(alone)


def test_workers_stay_off_unless_the_program_turns_them_on(monkeypatch) -> None:
    """A library call (the app, a test runner, someone's script) keeps the work in its own process."""
    import os

    from indexer import workers

    monkeypatch.setattr(workers, "PARALLEL_FROM", 0)
    assert set(workers.starmap(os.getpid, [()] * 4, 10**6)) == {os.getpid()}


def test_language_detection_keeps_its_classifier_unpacked_in_the_cache(tmp_path: Path, monkeypatch) -> None:
    """py3langid's model is unpacked once per cache, not once per process; a damaged cache file is replaced."""
    from py3langid.langid import LanguageIdentifier

    from indexer.text import language

    monkeypatch.setenv("NEWSARCHIVE_CACHE", str(tmp_path))
    text = "Il drone è precipitato nel Mar Nero dopo l'incontro con due caccia russi."
    language._identifier.cache_clear()
    try:
        unpacked = language._identifier()
        [cached] = tmp_path.glob("py3langid-*.pickle")
        language._identifier.cache_clear()
        with monkeypatch.context() as patched:
            patched.setattr(LanguageIdentifier, "from_model_file", None)  # unpacking again would fail
            assert language._identifier().classify(text) == unpacked.classify(text)
        cached.write_bytes(b"half a file")
        language._identifier.cache_clear()
        assert language._identifier().classify(text) == unpacked.classify(text)
        assert cached.stat().st_size > 1_000_000  # written again whole
    finally:
        language._identifier.cache_clear()


def _synthetic_rows(count: int, seed: int = 7) -> list[tuple[int, str, str]]:
    """Passages of made-up words and names drawn with Zipf's skew (a few in most passages, most in few, as in news),
    in Italian and English."""
    rng = np.random.default_rng(seed)
    syllables = ["ba", "ce", "di", "fo", "gu", "la", "me", "ni", "po", "ru", "sa", "te", "vi", "zo"]
    vocabulary = list(dict.fromkeys("".join(rng.choice(syllables, 3)) for _ in range(3000)))
    vocabulary = [word.title() if i % 5 == 0 else word for i, word in enumerate(vocabulary)]  # names: in any language
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** 1.1
    rows = []
    for number in range(count):
        drawn = rng.choice(len(vocabulary), size=int(rng.integers(5, 40)), p=weights / weights.sum())
        rows.append((1000 + number, " ".join(vocabulary[i] for i in drawn), "it" if number % 3 else "en"))
    return rows


def test_top_rows_hold_the_k_best_and_skip_the_rest(tmp_path: Path) -> None:
    """MaxScore's candidates hold every passage of the k best scores (ties included), scored to the last bit as
    exhaustive scoring does, in one segment and in several; and for most queries they are far fewer than the
    passages matching any token."""
    from indexer.indexes.lexical import top_rows

    rows = _synthetic_rows(4800)
    whole = LexicalIndex.build(rows)
    for number, start in enumerate(range(0, len(rows), 1600)):
        LexicalIndex.build(rows[start : start + 1600]).save(tmp_path / f"part{number}")
    parts = [LexicalIndex.load(tmp_path / f"part{number}") for number in range(3)]
    combined = LexicalIndex.combined(parts, np.zeros(0, np.int64))
    rng = np.random.default_rng(11)
    words = [word for _, text, _ in rows[:50] for word in text.split()]  # common words more often than rare ones
    queries = [" ".join(rng.choice(words, int(rng.integers(1, 8)))) for _ in range(30)]
    pruned = tried = 0
    for index in (whole.indexes["words"], combined.indexes["words"]):
        for query in queries:
            tokens = tokenize(query, "it")
            for k in (1, 10, 50):
                mask = np.ones(len(rows), dtype=bool)
                mask[::4] = False  # a filter: passages top_rows must leave out
                exact = np.where(mask, index.scores(tokens), np.float32(0))
                found = top_rows(index, tokens, k, mask)
                matching = np.flatnonzero(exact > 0)
                if found is None:
                    continue
                assert mask[found].all()
                kth = np.sort(exact[matching])[::-1][min(k, len(matching)) - 1] if len(matching) else 0
                assert set(matching[exact[matching] >= kth]) <= set(found.tolist())
                assert (index.scores_at(tokens, found) == exact[found]).all()  # to the last bit
                pruned += len(found) < len(matching)
                tried += 1
    assert tried >= 40 and pruned >= tried / 2, (pruned, tried)  # most read fewer passages than match
    for index in (whole.indexes["grams"], combined.indexes["grams"]):  # dozens of tokens, searched at a few rows
        for query in queries:
            tokens = grams(query, "it")
            some = np.unique(rng.integers(0, len(rows), 300))
            assert (index.scores_at(tokens, some) == index.scores(tokens)[some]).all()


def test_hybrid_evidence_is_the_same_with_and_without_skipping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hybrid search's lexical evidence, reading only the passages that can matter (:func:`top_rows`), is the
    exhaustive scoring's: the same passages, in the same order, with the same values, whatever the question, its
    language, the dense candidates, the filter and the tombstones."""
    from indexer.indexes import lexical

    rows = _synthetic_rows(1500)
    for number, start in enumerate(range(0, len(rows), 500)):
        LexicalIndex.build(rows[start : start + 500]).save(tmp_path / f"part{number}")
    parts = [LexicalIndex.load(tmp_path / f"part{number}") for number in range(3)]
    none = np.zeros(0, np.int64)
    indexes = [LexicalIndex.combined(parts[:1], none), LexicalIndex.combined(parts, np.asarray([1003, 1400, 1777]))]
    rng = np.random.default_rng(5)
    words = [word for _, text, _ in rows[:50] for word in text.split()]
    cases = []
    for _ in range(40):
        query = " ".join(rng.choice(words, int(rng.integers(1, 8))))
        among = rng.choice([row[0] for row in rows], 30, replace=False)
        allowed = rng.choice([row[0] for row in rows], 900, replace=False) if rng.random() < 0.3 else None
        cases.append((query, str(rng.choice(["it", "en"])), among, allowed, bool(rng.random() < 0.5)))

    def evidence() -> list:
        return [index.evidence(*case[:2], k, *case[2:]) for index in indexes for case in cases for k in (3, 20)]

    skipping = evidence()
    monkeypatch.setattr(lexical, "top_rows", lambda *args: None)  # every passage scored
    assert skipping == evidence()
    assert sum(len(found) for found in skipping) > len(cases)  # there was evidence to compare
