"""Atomic outputs leave nothing behind on failure and never clobber by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.atomic import atomic_directory, atomic_file
from service.errors import OutputError


def test_directory_appears_only_when_complete(tmp_path: Path) -> None:
    final = tmp_path / "series"
    with atomic_directory(final) as tmp:
        (tmp / "a.dcm").write_bytes(b"x")
        assert not final.exists()
    assert (final / "a.dcm").read_bytes() == b"x"
    assert [p.name for p in tmp_path.iterdir()] == ["series"]


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "series"
    with pytest.raises(RuntimeError), atomic_directory(final) as tmp:
        (tmp / "a.dcm").write_bytes(b"x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_refused_unless_overwrite(tmp_path: Path) -> None:
    final = tmp_path / "out.nii.gz"
    final.write_bytes(b"old")
    expected = r"already exists: choose another path or pass overwrite=True"
    with pytest.raises(OutputError, match=expected), atomic_file(final):
        pass
    with atomic_file(final, overwrite=True) as tmp:
        assert tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"


def test_overwrite_of_directory_keeps_old_until_new_is_complete(tmp_path: Path) -> None:
    final = tmp_path / "series"
    final.mkdir()
    (final / "old.dcm").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_directory(final, overwrite=True):
        raise RuntimeError("fail mid-write")
    assert (final / "old.dcm").read_bytes() == b"old"
    with atomic_directory(final, overwrite=True) as tmp:
        (tmp / "new.dcm").write_bytes(b"new")
    assert sorted(p.name for p in final.iterdir()) == ["new.dcm"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_outputs_get_umask_permissions_not_owner_only(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "series") as tmp:
            (tmp / "a.dcm").write_bytes(b"x")
        with atomic_file(tmp_path / "vol.nii") as tmp_file:
            tmp_file.write_bytes(b"y")
    finally:
        os.umask(old)
    assert (tmp_path / "series").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "series" / "a.dcm").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "vol.nii").stat().st_mode & 0o777 == 0o644
