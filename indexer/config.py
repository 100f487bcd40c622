"""Where things live: the index directory, the model cache, and the environment variables that move them."""

from __future__ import annotations

import os
from pathlib import Path

INDEX_DIR_ENV = "NEWSARCHIVE_INDEX_DIR"
MODEL_ENV = "NEWSARCHIVE_MODEL"
CACHE_ENV = "NEWSARCHIVE_CACHE"
PRECISION_ENV = "NEWSARCHIVE_PRECISION"
BACKEND_ENV = "NEWSARCHIVE_BACKEND"
THREADS_ENV = "NEWSARCHIVE_THREADS"
DEBUG_ENV = "NEWSARCHIVE_DEBUG"  # set: a failure nobody foresaw shows its traceback
# A language model that writes answers (indexer.answers.generate): an OpenAI-compatible endpoint, its model, its key.
LLM_URL_ENV = "NEWSARCHIVE_LLM_URL"
LLM_MODEL_ENV = "NEWSARCHIVE_LLM_MODEL"
LLM_KEY_ENV = "NEWSARCHIVE_LLM_API_KEY"
DEFAULT_INDEX_DIR = "archive"


def index_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """The index directory: ``given``, else ``$NEWSARCHIVE_INDEX_DIR``, else ``./archive``."""
    return Path(given or os.environ.get(INDEX_DIR_ENV) or DEFAULT_INDEX_DIR)


def cache_dir() -> Path:
    """Where converted models are kept: ``$NEWSARCHIVE_CACHE``, else the platform's user cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import platformdirs

    return Path(platformdirs.user_cache_dir("newsarchive"))


def threads() -> int:
    """Threads a model computes with: ``$NEWSARCHIVE_THREADS`` (a Ray actor sets it to the CPUs it was given),
    else every core of this machine."""
    return int(os.environ.get(THREADS_ENV) or 0) or os.cpu_count() or 1
