"""RT dose reading against values read independently with pydicom."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from service.errors import DicomError, OptionError, SeriesGeometryError
from service.validation.dose_io import dose_from_dataset, read_dose
from service.volume import Modality, Unit, Volume


def _path(name: str) -> str:
    return str(get_testdata_file(name, download=False))


def _dataset() -> pydicom.Dataset:
    return pydicom.dcmread(_path("rtdose.dcm"))


def test_relative_dose_needs_prescription() -> None:
    with pytest.raises(DicomError, match="prescribed"):
        read_dose(_path("rtdose.dcm"))
    with pytest.raises(OptionError, match="prescribed_dose_gy"):
        read_dose(_path("rtdose.dcm"), prescribed_dose_gy=-1.0)


def test_values_and_geometry_match_pydicom() -> None:
    ds = _dataset()
    vol = read_dose(_path("rtdose.dcm"), prescribed_dose_gy=60.0)
    expected = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling) * 60.0
    assert vol.modality is Modality.RTDOSE and vol.unit is Unit.GY
    assert vol.shape == (int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6)
    assert vol.spacing_mm == (float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]), 5.0)
    # Frame k lies at IPP + offset[k] along the slice normal (relative offsets).
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    for k in (0, 7, len(offsets) - 1):
        expected_position = ipp + np.array([0.0, 0.0, offsets[k]])
        np.testing.assert_allclose(vol.index_to_lps([0, 0, k]), expected_position, atol=1e-6)
    # Column i, row j: x grows along the row direction by the column spacing.
    np.testing.assert_allclose(vol.index_to_lps([3, 2, 0]), ipp + np.array([30.0, 20.0, 0.0]), atol=1e-6)


def test_rle_and_big_endian_files_read_the_same() -> None:
    ref = read_dose(_path("rtdose.dcm"), prescribed_dose_gy=2.0)
    for name in ("rtdose_rle.dcm", "rtdose_expb.dcm"):
        other = read_dose(_path(name), prescribed_dose_gy=2.0)
        np.testing.assert_array_equal(other.array, ref.array)
        assert other.same_grid(ref)


def test_gy_units_and_absolute_offsets() -> None:
    ds = _dataset()
    ds.DoseUnits = "GY"
    relative = dose_from_dataset(ds)
    np.testing.assert_allclose(relative.array, ds.pixel_array * float(ds.DoseGridScaling), rtol=1e-6)
    absolute = copy.deepcopy(ds)
    z0 = float(ds.ImagePositionPatient[2])
    absolute.GridFrameOffsetVector = [z0 + float(v) for v in ds.GridFrameOffsetVector]
    vol = dose_from_dataset(absolute)
    assert vol.same_grid(relative)
    np.testing.assert_array_equal(vol.array, relative.array)


def test_decreasing_offsets_are_reordered_not_changed() -> None:
    ds = _dataset()
    ds.DoseUnits = "GY"
    forward = dose_from_dataset(ds)
    backward = copy.deepcopy(ds)
    backward.GridFrameOffsetVector = [-float(v) for v in ds.GridFrameOffsetVector]
    vol = dose_from_dataset(backward)
    # Frame 0 sits at IPP; the others below it: slice order is reversed, values unchanged.
    np.testing.assert_array_equal(vol.array, forward.array[::-1])
    np.testing.assert_allclose(vol.index_to_lps([0, 0, vol.shape[0] - 1]), forward.origin_mm, atol=1e-6)


def test_inconsistent_files_are_refused() -> None:
    with pytest.raises(DicomError, match="GridFrameOffsetVector"):
        read_dose(_path("rtdose_1frame.dcm"), prescribed_dose_gy=2.0)  # 1 frame, 15 offsets
    ds = _dataset()
    ds.DoseUnits = "GY"
    irregular = copy.deepcopy(ds)
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    offsets[5] += 1.0
    irregular.GridFrameOffsetVector = offsets
    with pytest.raises(SeriesGeometryError, match="regular"):
        dose_from_dataset(irregular)
    error = copy.deepcopy(ds)
    error.DoseType = "ERROR"
    with pytest.raises(DicomError, match="ERROR"):
        dose_from_dataset(error)
    with pytest.raises(DicomError, match="RTDOSE"):
        read_dose(_path("CT_small.dcm"))


def test_folder_with_one_dose_file(tmp_path: Path) -> None:
    shutil.copy(_path("rtdose.dcm"), tmp_path / "dose.dcm")
    shutil.copy(_path("CT_small.dcm"), tmp_path / "ct.dcm")
    (tmp_path / "notes.txt").write_text("not DICOM")
    vol = read_dose(tmp_path, prescribed_dose_gy=2.0)
    assert vol.shape == (15, 10, 10)
    shutil.copy(_path("rtdose_rle.dcm"), tmp_path / "dose2.dcm")
    with pytest.raises(DicomError, match="exactly 1"):
        read_dose(tmp_path, prescribed_dose_gy=2.0)


def test_image_file_round_trip(tmp_path: Path) -> None:
    imageio = pytest.importorskip("service.imageio", reason="service.imageio not available")
    vol = read_dose(_path("rtdose.dcm"), prescribed_dose_gy=2.0)
    path = imageio.write_image(vol, tmp_path / "dose.nii.gz")
    back = read_dose(path)
    assert back.modality is Modality.RTDOSE and back.unit is Unit.GY
    np.testing.assert_allclose(back.array, vol.array, rtol=1e-6)
    assert back.same_grid(vol, atol_mm=1e-3)
    ct = Volume(array=np.zeros((2, 3, 4), dtype=np.float32), spacing_mm=(1, 1, 1))
    ct_path = imageio.write_image(ct, tmp_path / "ct.mha")
    with pytest.raises(Exception, match="CT"):
        read_dose(ct_path)
