"""Agreement with SimpleITK's GDCM series reader: geometry (≤ 1e-4) and values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from service.dicom import read_series

from ._series import REAL, data_file, series_datasets, unit, write

DICOMDIR_TESTS = Path(data_file("CT_small.dcm")).parent / "dicomdirtests"


def _gdcm(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return reader.Execute()


def _compare(folder: Path) -> None:
    ours = read_series(folder)
    theirs = _gdcm(folder)
    np.testing.assert_allclose(ours.origin_mm, theirs.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(ours.spacing_mm, theirs.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(ours.direction.ravel(), theirs.GetDirection(), atol=1e-4)
    np.testing.assert_allclose(ours.array, sitk.GetArrayFromImage(theirs), rtol=1e-6, atol=1e-3)


@pytest.mark.slow
def test_real_168_slice_ct_agrees_with_simpleitk():
    folder = REAL / "ct-cort-liver"
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is absent (see /work/shared/data/real/README.md)")
    _compare(folder)


def test_dicomdirtests_ct_series_agrees_with_simpleitk():
    folder = DICOMDIR_TESTS / "98892001" / "CT5N"
    assert len(list(folder.iterdir())) == 5
    _compare(folder)


def test_oblique_series_agrees_with_simpleitk(tmp_path):
    datasets = series_datasets(5, spacing_mm=2.5, row=unit((0.8, 0.6, 0.0)), col=unit((0.0, 0.0, -1.0)))
    write(datasets, tmp_path, order=[4, 2, 0, 3, 1])
    _compare(tmp_path)


def test_anisotropic_pixels_agree_with_simpleitk(tmp_path):
    # PixelSpacing is (row spacing, column spacing): x spacing is the second value.
    def aniso(i, ds):
        ds.PixelSpacing = ["0.5", "0.8"]

    datasets = series_datasets(
        3, spacing_mm=1.25, row=unit((0.0, 1.0, 0.0)), col=unit((1.0, 0.0, 0.0)), mutate=aniso
    )
    write(datasets, tmp_path)
    _compare(tmp_path)
    assert read_series(tmp_path).spacing_mm[:2] == (0.8, 0.5)
