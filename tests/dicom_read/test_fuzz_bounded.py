"""A small bounded fuzz of the reader: mutated real files raise only RadTranslateError subclasses.

The long run is bench/fuzz_dicom_reader.py (results in docs/fuzzing.md); this keeps ≤ 40 cases.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydicom import config

from service.dicom import read_series, scan_folder
from service.errors import RadTranslateError

from ._series import series_datasets

TAGS: dict[str, list[Any]] = {
    "ImagePositionPatient": [["nan", "0", "0"], ["1", "2"], ["x", "y", "z"]],
    "ImageOrientationPatient": [
        ["0"] * 6,
        ["1", "0", "0", "1", "0", "0"],
        ["1e300", "0", "0", "0", "1", "0"],
    ],
    "PixelSpacing": [["0", "0"], ["-1", "1"], ["1"]],
    "Rows": [0, 1, 65535],
    "Columns": [0, 3, 65535],
    "BitsAllocated": [0, 1, 12, 64],
    "PixelRepresentation": [2],
    "RescaleSlope": ["0", "nan", "1e38"],
}


def _encode() -> list[bytes]:
    out = []
    for ds in series_datasets(2):
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


SEED = _encode()


def _mutate(raw: bytes, kind: str, data: st.DataObject) -> bytes:
    if kind == "flip":
        buf = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8))):
            buf[data.draw(st.integers(0, len(buf) - 1))] ^= data.draw(st.integers(1, 255))
        return bytes(buf)
    if kind == "truncate":
        return raw[: data.draw(st.integers(0, len(raw) - 1))]
    ds = pydicom.dcmread(io.BytesIO(raw))
    keyword = data.draw(st.sampled_from(sorted(TAGS)))
    out = io.BytesIO()
    try:
        setattr(ds, keyword, data.draw(st.sampled_from(TAGS[keyword])))
        ds.save_as(out, enforce_file_format=False)
    except ValueError:  # pydicom refuses some values (e.g. 'x' as DS) even unvalidated: no case
        assume(False)
    return out.getvalue()


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(kind=st.sampled_from(["flip", "truncate", "tag"]), target=st.integers(0, 1), data=st.data())
def test_mutated_series_raise_only_typed_errors(kind, target, data):
    mode = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            files = list(SEED)
            files[target] = _mutate(files[target], kind, data)
    finally:
        config.settings.writing_validation_mode = mode
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, raw in enumerate(files):
            (Path(folder) / f"s{i}.dcm").write_bytes(raw)
        try:
            scan_folder(folder)
            vol = read_series(folder)
        except RadTranslateError:
            return
        assert vol.shape[0] == 2 and np.all(np.isfinite(vol.array))
