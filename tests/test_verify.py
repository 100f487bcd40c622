"""The verifier: a generated sentence stands only on quotes that are in the sources it cites."""

from __future__ import annotations

import pytest

from indexer.answers.verify import KINDS, Citation, Claim, verify

SOURCES = [
    "Il drone MQ-9 Reaper è precipitato nel Mar Nero dopo che un caccia russo ne ha colpito l'elica. "
    "Lo ha detto il portavoce del Pentagono.",
    "The Kremlin said the drone fell into the Black Sea on its own — no Russian jet touched it.",
]


def one(text: str, *citations: tuple[int, str]) -> Claim:
    return Claim(text, tuple(citations))


def test_a_verbatim_quote_stands_with_its_offsets() -> None:
    quote = "un caccia russo ne ha colpito l'elica"
    kept, rejected = verify([one("A Russian jet hit its propeller.", (1, quote))], SOURCES, None)
    assert rejected == []
    ((sentence),) = kept
    start = SOURCES[0].index(quote)
    assert sentence.citations == (Citation(1, quote, start, start + len(quote)),)


@pytest.mark.parametrize(
    ("quote", "found"),
    [
        ("IL DRONE mq-9 reaper", "Il drone MQ-9 Reaper"),  # case
        ("drone  MQ-9\nReaper", "drone MQ-9 Reaper"),  # white space
        ("colpito l’elica", "colpito l'elica"),  # the apostrophe typed another way
        ("«Il drone MQ-9 Reaper»", "Il drone MQ-9 Reaper"),  # marks around the quote
        ("drone MQ‐9 Reaper", "drone MQ-9 Reaper"),  # a Unicode hyphen
        ("the Black Sea on its own - no Russian", "the Black Sea on its own — no Russian"),  # a dash
        ("ＭＱ-９ Reaper è precipitato", "MQ-9 Reaper è precipitato"),  # full-width forms (NFKC)
        ("Reaper e\u0300 precipitato", "Reaper è precipitato"),  # a combining accent
    ],
)
def test_matching_forgives_only_typing(quote: str, found: str) -> None:
    source = 2 if "Black Sea" in found else 1
    kept, rejected = verify([one("A claim.", (source, quote))], SOURCES, None)
    assert rejected == [] and kept[0].citations[0].quote == found


@pytest.mark.parametrize(
    ("citation", "kind", "reason"),
    [
        ((1, "il drone è stato abbattuto da un missile"), "quote not in source", "its quote is not in source 1"),
        (
            (1, "the drone fell into the Black Sea"),
            "quote in another source",
            "its quote is in source 2, not in source 1 it cites",
        ),
        ((1, "Il drone MQ-9 Reaper ... colpito l'elica"), "quote not in source", "its quote is not in source 1"),
        ((1, "Il drone MQ-9 Reaper colpito l'elica"), "quote not in source", "its quote is not in source 1"),
        ((3, "Il drone MQ-9 Reaper"), "source out of range", "it cites source 3, and there are 2"),
        ((0, "Il drone MQ-9 Reaper"), "source out of range", "it cites source 0, and there are 2"),
        (
            (1, "The MQ-9 Reaper drone crashed into the Black Sea"),  # translated
            "quote not in source",
            "its quote is not in source 1",
        ),
        ((1, "MQ-9"), "quote too short", "its quote 'MQ-9' is too short to support a claim"),
        ((1, "drone  MQ- 9"), "quote too short", "its quote 'drone  MQ- 9' is too short to support a claim"),
    ],
    ids=[
        "invented",
        "another source",
        "spliced",
        "spliced without marks",
        "out of range",
        "source 0",
        "translated",
        "too short",
        "too short when spaces go",
    ],  # fmt: skip
)
def test_a_sentence_whose_only_quote_fails_is_removed(citation: tuple[int, str], kind: str, reason: str) -> None:
    kept, rejected = verify([one("The drone was shot down.", citation)], SOURCES, None)
    assert kept == [] and [(r.sentence, r.reason, r.citation, r.kind) for r in rejected] == [
        ("The drone was shot down.", reason, None, kind)
    ]
    assert kind in KINDS


def test_a_sentence_keeps_its_verified_citations_and_loses_the_others() -> None:
    good = (2, "no Russian jet touched it")
    bad = (1, "the Kremlin denied everything")
    kept, rejected = verify([one("Moscow denied any contact.", bad, good)], SOURCES, None)
    assert [c.source for c in kept[0].citations] == [2]
    assert [(r.reason, r.citation, r.kind) for r in rejected] == [
        ("its quote is not in source 1", bad, "quote not in source")
    ]


def test_a_sentence_without_citations_and_an_empty_answer() -> None:
    kept, rejected = verify([one("The drone was lost.")], SOURCES, None)
    assert kept == [] and (rejected[0].reason, rejected[0].kind) == ("it cites no source", "no citation")
    assert verify([], SOURCES, None) == ([], [])


def test_a_quote_cited_twice_counts_once() -> None:
    quote = (1, "Lo ha detto il portavoce del Pentagono")
    kept, _ = verify([one("The Pentagon said so.", quote, quote)], SOURCES, None)
    assert len(kept[0].citations) == 1


@pytest.mark.model
def test_a_true_quote_under_a_claim_it_does_not_support_is_removed(real_model) -> None:
    quote = (1, "un caccia russo ne ha colpito l'elica")
    kept, rejected = verify(
        [
            one("A Russian fighter jet struck the drone's propeller.", quote),
            one("Italy won the football match two to one.", quote),
        ],
        SOURCES,
        real_model,
    )
    assert [s.text for s in kept] == ["A Russian fighter jet struck the drone's propeller."]
    assert rejected[0].sentence == "Italy won the football match two to one."
    assert rejected[0].reason.startswith("too far in meaning from what it quotes")
    assert rejected[0].kind == "too far in meaning"
