"""The project's own code passes its linters: ruff (lint and format) and mypy (strict), tests included.

The tool versions are pinned in the ``dev`` extra, so a new release cannot turn this red on its own. The
tests folder is linted, formatted and type-checked too: tests pass enum members where the APIs declare
them, and a test that passes a string on purpose (to check that an API accepts or refuses it) says so
with a targeted ``# type: ignore[<code>]``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What mypy checks, in two runs: given the ``tools`` folder, mypy names its scripts as top-level modules
#: (``model_docs``), but the tests import them as ``tools.model_docs``, and one run may not hold a file
#: under two module names.
TYPED = (("service", "models", "export", "tools", "bench"), ("tests",))


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip(
        module, reason=f"{module} is not installed: install the dev extra (pip install -e '.[dev]')"
    )
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ruff_lint_is_clean() -> None:
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = _run("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, f"run 'ruff format .':\n{result.stdout}{result.stderr}"


def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    for paths in TYPED:
        result = _run("mypy", "--cache-dir", str(tmp_path / "cache"), *paths)
        assert result.returncode == 0, f"mypy {' '.join(paths)}:\n{result.stdout}{result.stderr}"
