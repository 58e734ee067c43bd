"""Atomic outputs: write into a temporary sibling, then rename into place.

A failed write leaves nothing at the destination (the temporary is removed), so a
reader never sees half a DICOM series or half a NIfTI file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from service.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_permissions(root: Path) -> None:
    """Give what mkdtemp/mkstemp created owner-only the modes a normal write would have (umask)."""
    mask = _umask()
    paths = [root, *root.rglob("*")] if root.is_dir() else [root]
    for path in paths:
        if path.is_symlink():
            continue
        mode = 0o777 if path.is_dir() else 0o666
        os.chmod(path, mode & ~mask)


def _check_destination(path: Path, *, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputError(
            f"output {str(path)!r} already exists: choose another path or pass overwrite=True (--overwrite)."
        )
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise OutputError(f"folder {str(parent)!r} is not writable: choose a writable output location.")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes ``path`` when the block succeeds.

    On an exception the temporary folder is deleted and ``path`` is untouched.
    With ``overwrite=True`` an existing ``path`` is replaced only after the new
    content is complete.
    """
    final = Path(path)
    _check_destination(final, overwrite=overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
        _publish_permissions(tmp)
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, trash / "old")
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary file path (same folder, same suffixes) that becomes ``path`` on success."""
    final = Path(path)
    _check_destination(final, overwrite=overwrite)
    suffix = "".join(final.suffixes) or ".tmp"
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".partial{suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _publish_permissions(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
