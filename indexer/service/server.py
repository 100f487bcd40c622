"""Running the API: ``newsarchive serve`` hands uvicorn an app factory, which each worker process calls, with the
settings in the environment (a worker is a fresh interpreter)."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict
from pathlib import Path

from fastapi import FastAPI

from indexer.errors import NewsarchiveError
from indexer.service.api import create_app
from indexer.service.keys import listed
from indexer.service.limits import Limits

SETTINGS_ENV = "NEWSARCHIVE_SERVE"  # set by `serve` for its workers; not for people to set


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: whatever it resolves to, assume others can reach it


def needs_keys(directory: Path, host: str, no_auth: bool) -> bool:
    """Whether requests must carry a key: when keys exist, unless ``no_auth``.

    Raises:
        NewsarchiveError: No key exists and ``host`` is not loopback, without ``no_auth``: the archive would be
            open to anyone who can reach it.
    """
    if no_auth:
        return False
    if listed(directory):
        return True
    if not is_loopback(host):
        raise NewsarchiveError(
            f"no API key exists for {directory}/, and {host} is reachable from other machines: create one with "
            "`newsarchive keys create NAME`, or serve without keys with --no-auth"
        )
    return False


def app_from_environment() -> FastAPI:
    """The app of one worker, from the settings ``serve`` left in the environment."""
    from indexer.answers.llm import Generator

    settings = json.loads(os.environ[SETTINGS_ENV])
    directory, limits = Path(settings["index_dir"]), Limits(**settings["limits"])
    return create_app(directory, auth=settings["auth"], limits=limits, generator=Generator.configured())


def run(directory: Path, host: str, port: int, workers: int, auth: bool, limits: Limits) -> None:
    """Serve the API until interrupted."""
    import uvicorn

    os.environ[SETTINGS_ENV] = json.dumps({"index_dir": str(directory), "auth": auth, "limits": asdict(limits)})
    uvicorn.run(
        "indexer.service.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        server_header=False,
        timeout_graceful_shutdown=30,
    )
