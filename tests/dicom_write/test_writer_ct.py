"""Derived CT series: tags, geometry and HU round trips, validity (dciodvfy), atomic output."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from service.dicom import read_series, read_series_from_datasets
from service.dicom.writer import encode_derived_series, write_derived_series
from service.errors import OptionError, OutputError, VolumeError
from service.volume import Modality, Unit, Volume
from tests.dicom_write.conftest import build_ct_series
from tests.dicom_write.dciodvfy import dciodvfy_errors

MODEL: dict[str, Any] = {"model_name": "mr_to_ct", "model_version": "1"}


def _assert_same_geometry(a: Volume, b: Volume) -> None:
    assert a.shape == b.shape
    assert np.abs(a.affine_lps() - b.affine_lps()).max() <= 1e-4


@pytest.mark.slow
def test_real_ct_round_trip_keeps_geometry_and_hu(real_dir: Path, tmp_path: Path) -> None:
    source = read_series(real_dir / "ct-cort-liver")
    written = write_derived_series(source, tmp_path / "sct", **MODEL)
    back = read_series(written.directory)
    _assert_same_geometry(source, back)
    assert np.abs(back.array - source.array).max() <= 0.5
    assert back.modality is Modality.CT and back.unit is Unit.HU
    assert dciodvfy_errors(written.paths[0]) == []
    assert dciodvfy_errors(written.paths[-1]) == []


def test_tags_identify_a_derived_series_of_the_source(small_ct: Volume, tmp_path: Path) -> None:
    source = small_ct.source
    assert source is not None and source.header is not None
    written = write_derived_series(small_ct, tmp_path / "out", **MODEL)
    datasets = [pydicom.dcmread(p) for p in written.paths]
    assert len(datasets) == small_ct.shape[0]
    sop_uids = {str(ds.SOPInstanceUID) for ds in datasets}
    assert len(sop_uids) == len(datasets)
    assert not sop_uids & set(source.sop_instance_uids)
    for k, ds in enumerate(datasets):
        assert ds.SOPClassUID == pydicom.uid.CTImageStorage
        assert ds.StudyInstanceUID == source.study_instance_uid
        assert ds.FrameOfReferenceUID == source.frame_of_reference_uid
        assert ds.SeriesInstanceUID == written.series_instance_uid != source.series_instance_uid
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
        assert ds.PatientName == source.header.PatientName and ds.PatientID == source.header.PatientID
        assert ds.Manufacturer == "radtranslate"
        assert ds.SeriesDescription == "sCT radtranslate mr_to_ct v1"
        assert "mr_to_ct" in ds.DerivationDescription and "version 1" in ds.DerivationDescription
        equipment = ds.ContributingEquipmentSequence[0]
        assert equipment.ManufacturerModelName == "mr_to_ct" and "mr_to_ct 1" in equipment.SoftwareVersions
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.sop_instance_uids[k]
        refs = ds.ReferencedSeriesSequence[0]
        assert refs.SeriesInstanceUID == source.series_instance_uid
        assert [r.ReferencedSOPInstanceUID for r in refs.ReferencedInstanceSequence] == list(
            source.sop_instance_uids
        )
        assert ds.InstanceNumber == k + 1
        assert float(ds.WindowCenter[0]) == 40 and float(ds.WindowWidth[0]) == 400
        position = small_ct.index_to_lps([0, 0, k])
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], position, atol=1e-6)
        normal = np.cross(small_ct.direction[:, 0], small_ct.direction[:, 1])
        assert float(ds.SliceLocation) == pytest.approx(float(position @ normal), abs=1e-6)
        stored = ds.pixel_array.astype(np.float64)
        hu = stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.abs(hu - small_ct.array[k]).max() <= 0.5
    assert dciodvfy_errors(written.paths[0]) == []


def test_rounding_is_to_the_nearest_integer_hu(small_ct: Volume) -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(-1000.0, 2000.0, size=small_ct.shape).astype(np.float32)
    volume = small_ct.with_array(values)
    datasets = encode_derived_series(volume, **MODEL)
    back = read_series_from_datasets(datasets)
    error = back.array.astype(np.float64) - values.astype(np.float64)
    assert np.abs(error).max() <= 0.5
    np.testing.assert_array_equal(back.array, np.rint(values))


def test_second_generation_is_exact(small_ct: Volume) -> None:
    back = read_series_from_datasets(encode_derived_series(small_ct, **MODEL))
    again = read_series_from_datasets(encode_derived_series(back, **MODEL))
    np.testing.assert_array_equal(again.array, back.array)
    assert np.abs(again.affine_lps() - small_ct.affine_lps()).max() <= 1e-4


def test_encoded_datasets_stream_as_bytes_and_read_back(small_ct: Volume) -> None:
    from io import BytesIO

    blobs = []
    for ds in encode_derived_series(small_ct, **MODEL):
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        blobs.append(buffer.getvalue())
    back = read_series_from_datasets([pydicom.dcmread(BytesIO(b)) for b in blobs])
    _assert_same_geometry(small_ct, back)
    assert np.abs(back.array - small_ct.array).max() <= 0.5


def test_enhanced_multiframe_source_is_referenced_by_frame(tmp_path: Path) -> None:
    path = get_testdata_file("eCT_Supplemental.dcm", download=False)
    assert path is not None
    source = read_series_from_datasets([pydicom.dcmread(path)])
    datasets = encode_derived_series(source, **MODEL)
    assert [int(ds.SourceImageSequence[0].ReferencedFrameNumber) for ds in datasets] == [1, 2]
    back = read_series_from_datasets(datasets)
    _assert_same_geometry(source, back)
    assert np.abs(back.array - source.array).max() <= 0.5


def test_left_handed_grid_is_numbered_along_the_orientation_normal(small_ct: Volume) -> None:
    flipped_direction = small_ct.direction.copy()
    flipped_direction[:, 2] *= -1.0
    left = dataclasses.replace(small_ct, direction=flipped_direction)
    datasets = encode_derived_series(left, **MODEL)
    normal = np.cross(left.direction[:, 0], left.direction[:, 1])
    along = [float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)) for ds in datasets]
    assert along == sorted(along)
    back = read_series_from_datasets(datasets)
    nz = left.shape[0]
    # Same physical samples: the read-back is right-handed, its slice 0 is our last slice.
    np.testing.assert_allclose(back.index_to_lps([0, 0, 0]), left.index_to_lps([0, 0, nz - 1]), atol=1e-4)
    assert np.abs(back.array[::-1] - left.array).max() <= 0.5


def test_out_of_range_hu_is_refused_and_nothing_is_written(small_ct: Volume, tmp_path: Path) -> None:
    values = small_ct.array.copy()
    values[0, 0, 0] = 40000.0
    parent = tmp_path / "outputs"
    with pytest.raises(VolumeError, match=r"CT values must lie in \[-33792, 31743\] HU.*40000"):
        write_derived_series(small_ct.with_array(values), parent / "out", **MODEL)
    assert not parent.exists() or list(parent.iterdir()) == []


def test_failure_during_writing_leaves_nothing_behind(
    small_ct: Volume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Path.write_bytes
    calls = {"n": 0}

    def failing_write(self: Path, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return original(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    parent = tmp_path / "outputs"
    parent.mkdir()
    with pytest.raises(OSError, match="disk full"):
        write_derived_series(small_ct, parent / "out", **MODEL)
    assert calls["n"] == 3
    assert list(parent.iterdir()) == []


def test_existing_output_needs_overwrite(small_ct: Volume, tmp_path: Path) -> None:
    parent = tmp_path / "outputs"
    first = write_derived_series(small_ct, parent / "out", **MODEL)
    with pytest.raises(OutputError, match="overwrite"):
        write_derived_series(small_ct, parent / "out", **MODEL)
    assert pydicom.dcmread(first.paths[0]).SeriesInstanceUID == first.series_instance_uid
    second = write_derived_series(small_ct, parent / "out", overwrite=True, **MODEL)
    assert pydicom.dcmread(second.paths[0]).SeriesInstanceUID == second.series_instance_uid
    assert sorted(p.name for p in parent.iterdir()) == ["out"]


def test_volume_without_source_needs_allow_new_study(small_ct: Volume, tmp_path: Path) -> None:
    orphan = dataclasses.replace(small_ct, source=None)
    with pytest.raises(VolumeError, match="allow_new_study=True"):
        encode_derived_series(orphan, **MODEL)
    written = write_derived_series(orphan, tmp_path / "new", allow_new_study=True, **MODEL)
    ds = pydicom.dcmread(written.paths[0])
    assert small_ct.source is not None
    assert ds.StudyInstanceUID != small_ct.source.study_instance_uid
    assert ds.FrameOfReferenceUID != small_ct.source.frame_of_reference_uid
    assert ds.PatientName == "ANONYMOUS^RADTRANSLATE"
    assert "NO SOURCE" in ds.SeriesDescription and "no DICOM source" in ds.DerivationDescription
    assert "SourceImageSequence" not in ds
    assert dciodvfy_errors(written.paths[0]) == []
    back = read_series(written.directory)
    _assert_same_geometry(small_ct, back)


def test_options_and_modalities_are_checked(small_ct: Volume) -> None:
    with pytest.raises(OptionError, match="model_name must be 1 to 64"):
        encode_derived_series(small_ct, model_name="", model_version="1")
    with pytest.raises(OptionError, match="series_description"):
        encode_derived_series(small_ct, series_description="x" * 65, **MODEL)
    with pytest.raises(OptionError, match="series_number"):
        encode_derived_series(small_ct, series_number=-1, **MODEL)
    mr = small_ct.with_array(small_ct.array - small_ct.array.min(), modality="MR", unit="MR_AU")
    with pytest.raises(VolumeError, match="only CT in HU and PET"):
        encode_derived_series(mr, **MODEL)
    custom = encode_derived_series(small_ct, series_description="sCT test", series_number=7, **MODEL)
    assert custom[0].SeriesDescription == "sCT test" and custom[0].SeriesNumber == 7


def test_synthetic_ct_from_an_mr_source(tmp_path: Path) -> None:
    src = get_testdata_file("MR_small.dcm", download=False)
    assert src is not None
    build_ct_series(Path(src), tmp_path / "mr")
    mr = read_series(tmp_path / "mr")
    assert mr.modality is Modality.MR and mr.source is not None
    rng = np.random.default_rng(3)
    sct = mr.with_array(rng.uniform(-1000, 1500, size=mr.shape), modality="CT", unit="HU")
    written = write_derived_series(sct, tmp_path / "sct", **MODEL)
    ds = pydicom.dcmread(written.paths[0])
    assert ds.Modality == "CT" and ds.SOPClassUID == pydicom.uid.CTImageStorage
    assert ds.SourceImageSequence[0].ReferencedSOPClassUID == pydicom.uid.MRImageStorage
    assert ds.FrameOfReferenceUID == mr.source.frame_of_reference_uid
    assert dciodvfy_errors(written.paths[0]) == []
    back = read_series(written.directory)
    _assert_same_geometry(mr, back)
    assert np.abs(back.array - sct.array).max() <= 0.5


def test_encodable_range_limits_are_exact(small_ct: Volume) -> None:
    from service.dicom.writer_ct import MAX_HU, MIN_HU

    values = np.zeros(small_ct.shape, np.float32)
    values[0, 0, 0], values[0, 0, 1] = MIN_HU, MAX_HU
    values[1, 0, 0], values[1, 0, 1] = MIN_HU - 0.49, MAX_HU + 0.49
    back = read_series_from_datasets(encode_derived_series(small_ct.with_array(values.copy()), **MODEL))
    assert back.array[0, 0, 0] == MIN_HU and back.array[0, 0, 1] == MAX_HU
    assert back.array[1, 0, 0] == MIN_HU and back.array[1, 0, 1] == MAX_HU
    for beyond in (MIN_HU - 0.51, MAX_HU + 0.5):
        values[2, 0, 0] = beyond
        with pytest.raises(VolumeError, match="CT values must lie in"):
            encode_derived_series(small_ct.with_array(values.copy()), **MODEL)


def test_default_series_number_follows_the_source(small_ct: Volume) -> None:
    assert small_ct.source is not None and small_ct.source.header is not None
    number = int(small_ct.source.header.SeriesNumber)
    assert encode_derived_series(small_ct, **MODEL)[0].SeriesNumber == 1000 + number
