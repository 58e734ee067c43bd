"""Geometry: sorting along the slice normal and every refusal of a non-regular series."""

from __future__ import annotations

import numpy as np
import pytest

from service.dicom import read_series, read_series_from_datasets
from service.errors import OptionError, SeriesGeometryError
from service.volume import Modality, Unit

from ._series import series_datasets, stored, unit, write


def test_shuffled_files_are_sorted_along_the_normal(tmp_path):
    datasets = series_datasets(6, spacing_mm=2.5)
    write(datasets, tmp_path, order=[3, 0, 5, 1, 4, 2])
    vol = read_series(tmp_path)
    assert vol.modality is Modality.CT and vol.unit is Unit.HU
    assert vol.shape == (6, 128, 128)
    np.testing.assert_allclose(vol.spacing_mm, (0.661468, 0.661468, 2.5), atol=1e-6)
    np.testing.assert_allclose(vol.origin_mm, [float(v) for v in datasets[0].ImagePositionPatient])
    np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-9)
    for k, ds in enumerate(datasets):
        expected = stored(ds) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(vol.array[k], expected.astype(np.float32))
    assert vol.source is not None
    assert vol.source.sop_instance_uids == tuple(ds.SOPInstanceUID for ds in datasets)
    assert vol.source.header is not None
    assert "PixelData" not in vol.source.header
    assert vol.source.header.PatientName == datasets[0].PatientName


def test_oblique_and_reversed_normal_sorting():
    row, col = unit((0.8, 0.6, 0.0)), unit((0.0, 0.0, -1.0))  # normal = cross(row, col)
    datasets = series_datasets(4, spacing_mm=3.0, row=row, col=col)
    vol = read_series_from_datasets(list(reversed(datasets)))
    normal = np.cross(row, col)
    np.testing.assert_allclose(vol.direction[:, 0], row, atol=1e-6)
    np.testing.assert_allclose(vol.direction[:, 2], normal, atol=1e-6)
    np.testing.assert_allclose(vol.spacing_mm[2], 3.0, atol=1e-3)
    np.testing.assert_allclose(vol.origin_mm, [float(v) for v in datasets[0].ImagePositionPatient])
    last = vol.index_to_lps([0, 0, 3])
    np.testing.assert_allclose(last, [float(v) for v in datasets[3].ImagePositionPatient], atol=1e-3)


def test_per_slice_rescale_is_applied_slice_by_slice():
    def vary(i, ds):
        ds.RescaleSlope = f"{0.5 + i:.1f}"
        ds.RescaleIntercept = str(-1000 + 7 * i)

    datasets = series_datasets(3, mutate=vary)
    vol = read_series_from_datasets(datasets)
    for k, ds in enumerate(datasets):
        np.testing.assert_allclose(vol.array[k], stored(ds) * (0.5 + k) + (-1000 + 7 * k), rtol=1e-6)


@pytest.mark.parametrize(
    ("keyword", "tag"),
    [
        ("ImagePositionPatient", "ImagePositionPatient (0020,0032)"),
        ("ImageOrientationPatient", "ImageOrientationPatient (0020,0037)"),
        ("PixelSpacing", "PixelSpacing (0028,0030)"),
    ],
)
def test_missing_geometry_tag_is_refused(keyword, tag):
    def drop(i, ds):
        if i == 1:
            delattr(ds, keyword)

    with pytest.raises(SeriesGeometryError, match=r"has no " + tag.replace("(", r"\(").replace(")", r"\)")):
        read_series_from_datasets(series_datasets(3, mutate=drop))


def test_inconsistent_orientation_states_tolerance():
    def tilt(i, ds):
        if i == 2:
            ds.ImageOrientationPatient = [1, 0, 0, 0, 0.999, 0.0447]

    with pytest.raises(SeriesGeometryError, match=r"ImageOrientationPatient differs .*tolerance 0\.0001"):
        read_series_from_datasets(series_datasets(3, mutate=tilt))


def test_rows_differing_is_refused():
    def shrink(i, ds):
        if i == 1:
            ds.Rows = 64
            ds.PixelData = ds.PixelData[: 64 * 128 * 2]

    with pytest.raises(SeriesGeometryError, match=r"Rows/Columns differ .* is 128x128, .* is 64x128"):
        read_series_from_datasets(series_datasets(3, mutate=shrink))


def test_pixel_spacing_differing_is_refused():
    def respace(i, ds):
        if i == 2:
            ds.PixelSpacing = [0.7, 0.7]

    with pytest.raises(SeriesGeometryError, match=r"PixelSpacing differs"):
        read_series_from_datasets(series_datasets(3, mutate=respace))


def test_gantry_tilt_tag_is_refused():
    def tilt(i, ds):
        ds.GantryDetectorTilt = "15"

    with pytest.raises(SeriesGeometryError, match=r"GantryDetectorTilt 15.0 degrees"):
        read_series_from_datasets(series_datasets(3, mutate=tilt))


def test_positions_off_the_normal_are_refused_as_tilt():
    def shear(i, ds):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + 0.5 * i, z]  # sheared like a tilted gantry

    with pytest.raises(SeriesGeometryError, match=r"not along the slice normal.*1\.000 mm off"):
        read_series_from_datasets(series_datasets(3, mutate=shear))


def test_duplicate_positions_are_refused():
    datasets = series_datasets(positions=[0.0, 2.0, 2.0, 4.0])
    with pytest.raises(SeriesGeometryError, match=r"1 duplicate slice position.*several stacks"):
        read_series_from_datasets(datasets)


def test_non_uniform_spacing_is_refused_and_tolerance_is_an_option():
    datasets = series_datasets(positions=[0.0, 2.0, 4.0, 6.3, 8.3])
    expected = r"non-uniform slice spacing: nominal 2\.0000 mm.*off the regular grid"
    with pytest.raises(SeriesGeometryError, match=expected):
        read_series_from_datasets(datasets)
    small = series_datasets(positions=[0.0, 2.0, 4.03, 6.0])
    with pytest.raises(SeriesGeometryError, match=r"tolerance 0\.01 mm"):
        read_series_from_datasets(small, spacing_tolerance_mm=0.01)
    vol = read_series_from_datasets(small)  # within the default 0.05 mm
    assert vol.spacing_mm[2] == pytest.approx(2.0, abs=0.02)


def test_missing_slices_name_the_missing_positions():
    datasets = series_datasets(positions=[0.0, 2.0, 8.0, 10.0], origin=(0.0, 0.0, 0.0))
    with pytest.raises(SeriesGeometryError) as info:
        read_series_from_datasets(datasets)
    message = str(info.value)
    assert "2 slice(s) missing" in message
    assert "(0.000, 0.000, 4.000), (0.000, 0.000, 6.000)" in message


def test_single_slice_is_not_a_volume():
    with pytest.raises(SeriesGeometryError, match=r"1 slice\(s\); a 3D volume needs at least 2"):
        read_series_from_datasets(series_datasets(1))


def test_spacing_comes_from_all_positions():
    # Jitter within tolerance: the least-squares slope differs from the first step.
    datasets = series_datasets(positions=[0.0, 2.04, 4.0, 6.0, 8.04])
    vol = read_series_from_datasets(datasets)
    index = np.arange(5)
    slope = np.polyfit(index, [0.0, 2.04, 4.0, 6.0, 8.04], 1)[0]
    assert vol.spacing_mm[2] == pytest.approx(slope, abs=1e-6)
    assert vol.spacing_mm[2] != pytest.approx(2.04, abs=1e-3)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), 5.0, "x"])
def test_spacing_tolerance_is_validated(bad):
    with pytest.raises(OptionError, match="spacing_tolerance_mm must be a number in"):
        read_series_from_datasets(series_datasets(2), spacing_tolerance_mm=bad)


def test_non_orthogonal_orientation_is_refused():
    def skew(i, ds):
        ds.ImageOrientationPatient = [1, 0, 0, 0.1, 0.995, 0]

    with pytest.raises(SeriesGeometryError, match="not two orthogonal unit vectors"):
        read_series_from_datasets(series_datasets(2, mutate=skew))
