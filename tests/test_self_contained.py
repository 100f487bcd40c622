"""A clone carries everything its tests and benchmarks read: nothing points outside the repository."""

from __future__ import annotations

import re
import subprocess

import pytest

from .conftest import ROOT, SQUAD_IT

# A folder beside the checkout, as `..` + `/shared` or a path built up to a sibling `shared/eval`.
OUTSIDE = re.compile(r"\.\.[/\\]" + "shared" + r"\b|" + '"shared"' + r'\s*/\s*"eval"')


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [name for name in listed.stdout.splitlines() if not name.startswith("bench/data/")]


def test_no_file_reads_outside_the_repository() -> None:
    offenders = []
    for name in _tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        offenders += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}" for m in OUTSIDE.finditer(text)]
    assert not offenders, f"these read a folder outside the clone: {offenders}"


def test_the_benchmarks_are_carried_with_their_licences() -> None:
    data = SQUAD_IT.parent
    for name in ("squad-it", "xquad"):
        assert (data / name / "LICENSE-CC-BY-SA-4.0.txt").is_file()
        assert "CC BY-SA 4.0" in (data / name / "README.md").read_text(encoding="utf-8")
    assert sum(1 for _ in (SQUAD_IT / "passages.jsonl").open(encoding="utf-8")) == 2010
    for language in ("en", "de", "es", "ru", "zh", "ar"):
        assert (data / "xquad" / f"passages_{language}.jsonl").is_file()
        assert (data / "xquad" / f"queries_{language}.jsonl").is_file()
