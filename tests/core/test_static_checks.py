"""The project's own code passes its linters: ruff (lint and format) and mypy (strict) on the shipped code.

The tool versions are pinned in the ``dev`` extra, so a new release cannot turn this red on its own. The
tests folder itself is linted and formatted, but type-checked only where the shipped code imports it
(``bench/`` uses ``tests.rpc.conftest``): its tests pass strings where the APIs' enum parameters also
accept them at run time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPED = ("service", "models", "export", "tools", "bench")


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
    result = _run("mypy", "--cache-dir", str(tmp_path / "cache"), *TYPED)
    assert result.returncode == 0, result.stdout + result.stderr
