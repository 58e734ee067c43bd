"""Enhanced multi-frame instances: geometry from the functional groups, same checks."""

from __future__ import annotations

import copy

import numpy as np
import pydicom
import pytest

from service.dicom import read_series, read_series_from_datasets
from service.errors import DicomError, SeriesGeometryError

from ._series import data_file


def _ect():
    return pydicom.dcmread(data_file("eCT_Supplemental.dcm"))


def test_enhanced_ct_geometry_and_values_from_functional_groups():
    ds = _ect()
    vol = read_series([data_file("eCT_Supplemental.dcm")])
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    normal = np.cross(iop[:3], iop[3:])
    frames = ds.PerFrameFunctionalGroupsSequence
    ipps = [np.array([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]) for f in frames]
    order = np.argsort([p @ normal for p in ipps])
    np.testing.assert_allclose(vol.origin_mm, ipps[order[0]])
    np.testing.assert_allclose(vol.direction[:, 2], normal)
    spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    np.testing.assert_allclose(vol.spacing_mm, (spacing[1], spacing[0], abs((ipps[1] - ipps[0]) @ normal)))
    pvt = shared.PixelValueTransformationSequence[0]
    expected = ds.pixel_array.astype(np.float64) * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
    np.testing.assert_array_equal(vol.array, expected[order].astype(np.float32))
    assert vol.source is not None and vol.source.header is not None
    assert vol.source.sop_instance_uids == (ds.SOPInstanceUID,)
    assert "PerFrameFunctionalGroupsSequence" not in vol.source.header
    assert "SharedFunctionalGroupsSequence" not in vol.source.header


def test_per_frame_rescale_overrides_shared():
    ds = _ect()
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        pvt = pydicom.Dataset()
        pvt.RescaleSlope = str(2 + f)
        pvt.RescaleIntercept = "-1000"
        pvt.RescaleType = "HU"
        item.PixelValueTransformationSequence = pydicom.Sequence([pvt])
    vol = read_series_from_datasets([ds])
    stored = ds.pixel_array.astype(np.float64)
    # frame 1 (z = -149) sorts first along the normal (0, 0, -1)
    np.testing.assert_array_equal(vol.array[0], (stored[1] * 3 - 1000).astype(np.float32))
    np.testing.assert_array_equal(vol.array[1], (stored[0] * 2 - 1000).astype(np.float32))


def test_enhanced_without_plane_position_is_refused():
    ds = _ect()
    del ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence
    with pytest.raises(SeriesGeometryError, match=r"frame 2 of instance .* has no ImagePositionPatient"):
        read_series_from_datasets([ds])


def test_enhanced_frames_with_different_orientation_are_refused():
    ds = _ect()
    item = ds.PerFrameFunctionalGroupsSequence[1]
    orient = pydicom.Dataset()
    orient.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    item.PlaneOrientationSequence = pydicom.Sequence([orient])
    with pytest.raises(SeriesGeometryError, match="ImageOrientationPatient differs"):
        read_series_from_datasets([ds])


def test_enhanced_frame_count_mismatch_is_refused():
    ds = _ect()
    ds.PerFrameFunctionalGroupsSequence.append(copy.deepcopy(ds.PerFrameFunctionalGroupsSequence[0]))
    with pytest.raises(DicomError, match=r"PerFrameFunctionalGroupsSequence .* has 3 item\(s\) for 2 frame"):
        read_series_from_datasets([ds])


def test_multiframe_without_functional_groups_is_refused():
    # emri_small is a 10-frame Enhanced MR with no functional groups: no per-frame positions.
    with pytest.raises(SeriesGeometryError, match=r"frame 1 of instance .* has no ImagePositionPatient"):
        read_series([data_file("emri_small.dcm")])


def test_scan_counts_frames_of_enhanced_instances():
    from service.dicom import scan_folder

    report = scan_folder(data_file("eCT_Supplemental.dcm"))
    (summary,) = report.series
    assert (summary.instances, summary.frames, summary.rows, summary.columns) == (1, 2, 512, 512)
    assert summary.spacing_mm == pytest.approx((0.388672, 0.388672, 10.0))
    assert summary.problems == () and summary.unit == "HU"
    emri = scan_folder(data_file("emri_small.dcm")).series[0]
    assert emri.frames == 10 and emri.spacing_mm is None
    assert "has no ImagePositionPatient" in emri.problems[0]
