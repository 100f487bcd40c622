"""Retrieval quality does not regress: a fixed SQuAD-it sample, the real model, every search mode.

``bench/retrieval.py`` measured the same sample when it wrote ``bench/results/retrieval.json``; a drop of more than
a point (0.01) in R@10 or MRR@10 fails. The sample is a few hundred questions over an archive of their passages and
distractors, small enough to embed in about a minute.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from indexer.ingest.index import index_paths
from indexer.retrieval.archive import Archive

from .conftest import ROOT

TOLERANCE = 0.01
pytestmark = pytest.mark.model


def _bench():
    spec = importlib.util.spec_from_file_location("retrieval_bench", ROOT / "bench" / "retrieval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, real_model) -> dict:
    bench = _bench()
    lines, questions = bench.regression_sample()
    directory = tmp_path_factory.mktemp("squad-sample")
    (directory / "passages.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = index_paths([directory / "passages.jsonl"], directory / "index", embedder=real_model)
    assert report.articles == len(lines) and not report.problems
    with Archive(directory / "index", embedder=real_model) as archive:
        return bench.measure(archive, questions)


@pytest.mark.parametrize("language", ["it", "en"])
@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("metric", ["recall@10", "mrr@10"])
def test_quality_holds_on_the_fixed_sample(measured: dict, language: str, mode: str, metric: str) -> None:
    results = json.loads((ROOT / "bench" / "results" / "retrieval.json").read_text(encoding="utf-8"))
    expected = results["regression_sample"][language][mode][metric]
    assert measured[language][mode][metric] >= expected - TOLERANCE, (language, mode, metric, expected)


def test_hybrid_beats_both_halves_in_italian_and_dense_across_languages(measured: dict) -> None:
    italian, english = measured["it"], measured["en"]
    assert italian["hybrid"]["mrr@10"] > max(italian["dense"]["mrr@10"], italian["lexical"]["mrr@10"])
    # Lexical evidence must not hurt English questions over Italian passages, as plain fusion does.
    assert english["hybrid"]["mrr@10"] >= english["dense"]["mrr@10"]
