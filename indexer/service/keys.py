"""API keys: made once, shown once, kept only as a hash, in ``keys.json`` beside the index.

The file is outside the DuckDB contract: ``newsarchive sql`` reads only the files a commit names, so no reader of
the archive sees it. A key is 32 random bytes: a SHA-256 of it is as hard to reverse as the key is to guess, so
no slow password hash is needed (the same reasoning as GitHub's and Stripe's tokens).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from indexer.errors import NewsarchiveError
from indexer.live.alerts import NAME_RULE, valid_name
from indexer.storage.layout import KEYS, KEYS_LOCK

SCOPES = ("read", "write")  # write: also add articles; a write key reads too
PREFIX = "nak_"  # newsarchive key: a secret scanner, or a person, can tell what leaked


class KeyProblem(NewsarchiveError):
    """A key that cannot be made or revoked as asked, or a keys file that cannot be read."""


@dataclass(frozen=True)
class Key:
    """A key as stored: never the key itself."""

    name: str
    scope: str
    sha256: str
    created: str

    def allows(self, scope: str) -> bool:
        return self.scope == "write" or scope == "read"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(directory: Path, name: str, scope: str) -> str:
    """Make a key called ``name``; returns the key, which is not kept anywhere."""
    if not valid_name(name):
        raise KeyProblem(f"{name!r} is not a key name: {NAME_RULE}")
    if scope not in SCOPES:
        raise KeyProblem(f"{scope!r} is not a scope: {' or '.join(SCOPES)}")
    key = PREFIX + secrets.token_urlsafe(32)
    with _editing(directory) as keys:
        if any(k.name == name for k in keys):
            raise KeyProblem(f"a key called {name!r} exists: revoke it first (`newsarchive keys revoke {name}`)")
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        keys.append(Key(name, scope, digest(key), created))
    return key


def revoke(directory: Path, name: str) -> None:
    with _editing(directory) as keys:
        if not any(k.name == name for k in keys):
            raise KeyProblem(f"no key is called {name!r} in {directory}/")
        keys[:] = [k for k in keys if k.name != name]


def listed(directory: Path) -> list[Key]:
    return _read(directory / KEYS)


class KeyRing:
    """The keys of ``directory`` for a server: read again whenever the file changes, so that a key made or revoked
    while it serves counts from the next request."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / KEYS
        self._seen: tuple[int, int] | None = None
        self._by_digest: dict[str, Key] = {}

    def find(self, key: str) -> Key | None:
        """The stored key that ``key`` is, if any."""
        try:
            stat = self.path.stat()
            seen = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._by_digest = {k.sha256: k for k in _read(self.path)}
            self._seen = seen
        return self._by_digest.get(digest(key))


def _read(path: Path) -> list[Key]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["keys"]
        return [Key(**row) for row in rows]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as error:
        raise KeyProblem(f"{path} is damaged ({type(error).__name__}): remove it and create the keys again") from None


@contextlib.contextmanager
def _editing(directory: Path) -> Iterator[list[Key]]:
    """The keys, to change in place; written back (readable by the owner only) if no exception ends the block."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / (KEYS_LOCK), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two `keys create` at once: both keys are kept
        keys = _read(directory / KEYS)
        yield keys
        data = json.dumps({"keys": [asdict(k) for k in keys]}, indent=2) + "\n"
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".keys-")
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, directory / KEYS)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
