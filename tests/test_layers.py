"""The package's layers (pyproject.toml's ``[tool.importlinter]``) hold, and import-linter would catch a break.

``make lint`` runs the same check in CI; these tests also show that each contract fails on the import it forbids,
on a copy of the package, so a contract that had stopped checking anything would not pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # before the editable install's path to this checkout
    return subprocess.run(
        [str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_its_layers() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The package, the app and the contracts, copied where an import can be added."""
    for package in ("indexer", "search_app"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "contracts"),
    [
        # up across the pipeline: live imports text, so the two folders make a circle too
        ("indexer/text/tokens.py", "from indexer.live import alerts", {"Layers", "No import circles"}),
        ("indexer/retrieval/search.py", "from indexer.ingest import index", {"Layers"}),  # siblings stay apart
        ("indexer/storage/layout.py", "from indexer.storage import writer", {"No import circles"}),
        ("indexer/storage/writer.py", "import click", {"The core never imports"}),
    ],
)
def test_each_contract_catches_the_import_it_forbids(copy: Path, module: str, line: str, contracts: set) -> None:
    with (copy / module).open("a", encoding="utf-8") as source:
        source.write(f"\n{line}  # noqa\n")
    result = lint_imports(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [text for text in result.stdout.splitlines() if text.endswith(" BROKEN")]
    assert {name for name in contracts for text in broken if text.startswith(name)} == contracts, result.stdout
    assert len(broken) == len(contracts), result.stdout
