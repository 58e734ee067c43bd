"""Run dicom3tools' dciodvfy on written files (tests skip when it is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def dciodvfy_errors(path: Path) -> list[str]:
    """The "Error" lines dciodvfy reports for one file."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy is not installed (Debian package dicom3tools): apt-get install -y dicom3tools")
    result = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert "PETImage" in output or "CTImage" in output, output
    return [line for line in output.splitlines() if "Error" in line]
