"""scan_folder and 'radtranslate info': series listed, problems reported, skipped files counted."""

from __future__ import annotations

import json
import shutil

import pytest

from service.cli.main import main
from service.dicom import scan_folder
from service.errors import DicomError

from ._series import data_file, series_datasets, write


@pytest.fixture
def folder(tmp_path):
    good = series_datasets(4, spacing_mm=2.0)
    for ds in good:
        ds.PatientName = "Doe^Jane"
        ds.PatientID = "PID-12345"
    write(good, tmp_path / "good")
    gap = series_datasets(positions=[0.0, 2.0, 6.0, 8.0], source="MR_small.dcm")
    write(gap, tmp_path / "gap")
    shutil.copy(data_file("rtplan.dcm"), tmp_path / "plan.dcm")
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "empty.dcm").write_bytes(b"")
    truncated = (tmp_path / "good" / "slice_00_0.dcm").read_bytes()[:300]
    (tmp_path / "cut.dcm").write_bytes(truncated)
    return tmp_path, good, gap


def test_scan_lists_series_problems_and_skips(folder):
    path, good, gap = folder
    report = scan_folder(path)
    by_uid = {s.series_instance_uid: s for s in report.series}
    ct = by_uid[good[0].SeriesInstanceUID]
    assert (ct.modality, ct.instances, ct.rows, ct.columns, ct.unit) == ("CT", 4, 128, 128, "HU")
    assert ct.spacing_mm == pytest.approx((0.661468, 0.661468, 2.0))
    assert ct.problems == ()
    mr = by_uid[gap[0].SeriesInstanceUID]
    assert mr.spacing_mm is None and "1 slice(s) missing" in mr.problems[0]
    plan = [s for s in report.series if s.modality == "RTPLAN"]
    assert len(plan) == 1 and not plan[0].is_image
    assert report.series[-1].modality == "RTPLAN"  # image series listed first
    assert report.skipped_files == 3
    assert report.skipped_by_reason == {  # the file cut at 300 bytes ends before its series UID
        "empty file": 1,
        "no SeriesInstanceUID": 1,
        "not DICOM (no DICM prefix)": 1,
    }


def test_info_table_has_no_patient_data(folder, capsys):
    path, good, _ = folder
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Doe" not in out and "PID-12345" not in out
    assert "0.6615x0.6615x2" in out and "128x128x4" in out
    assert good[0].SeriesInstanceUID in out
    assert "slice(s) missing" in out
    assert "skipped files: 3 (1 empty file, 1 no SeriesInstanceUID, 1 not DICOM (no DICM prefix))" in out


def test_info_json(folder, capsys):
    path, good, _ = folder
    assert main(["info", str(path), "--json"]) == 0
    raw = capsys.readouterr().out
    assert "Doe" not in raw and "PID-12345" not in raw
    data = json.loads(raw)
    assert data["skipped_files"] == 3
    ct = next(s for s in data["series"] if s["series_instance_uid"] == good[0].SeriesInstanceUID)
    assert ct["spacing_mm_xyz"] == pytest.approx([0.661468, 0.661468, 2.0])
    assert ct["instances"] == 4 and ct["problems"] == []


def test_info_on_missing_path_exits_with_input_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(DicomError):
        scan_folder(tmp_path / "absent")


def test_slice_truncated_in_its_pixel_data_is_refused(tmp_path):
    from service.dicom import read_series
    from service.errors import PixelDataError

    paths = write(series_datasets(3), tmp_path)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) - 5000])
    with pytest.raises(PixelDataError, match=r"instance #2 .*cannot be decoded .*less than expected"):
        read_series(tmp_path)


def test_read_series_refuses_a_folder_with_damaged_dicom_files(folder):
    from service.dicom import read_series

    path, good, _ = folder
    with pytest.raises(DicomError, match=r"2 file\(s\) in the folder look damaged .*cut\.dcm.*empty\.dcm"):
        read_series(path, series_uid=good[0].SeriesInstanceUID)
    (path / "empty.dcm").unlink()
    (path / "cut.dcm").unlink()  # text files, RT plans and DICOMDIRs are only skipped
    assert read_series(path, series_uid=good[0].SeriesInstanceUID).shape == (4, 128, 128)


def test_corrupt_element_is_a_typed_error():
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    from service.dicom import read_series_from_datasets
    from service.dicom.scan import parse_all_elements

    datasets = series_datasets(2)
    # SeriesTime as read from a file whose VR bytes were flipped: pydicom fails only on access
    datasets[1]._dict[Tag(0x00080031)] = RawDataElement(
        Tag(0x00080031), "T\x16", 6, b"123456", 0, False, True
    )
    with pytest.raises(DicomError, match=r"element that cannot be parsed .*Unknown Value Representation"):
        parse_all_elements(datasets[1], "slice")
    with pytest.raises(DicomError, match=r"instance #2 .*cannot be parsed"):
        read_series_from_datasets(datasets)


def test_file_with_corrupt_element_is_unreadable_and_refused(tmp_path):
    from service.dicom import read_series

    paths = write(series_datasets(3), tmp_path)
    raw = paths[2].read_bytes()
    tag = b"\x08\x00\x30\x00TM"  # StudyTime (0008,0030), VR TM, explicit VR little endian
    assert raw.count(tag) == 1
    paths[2].write_bytes(raw.replace(tag, b"\x08\x00\x30\x00T\x16"))  # an unknown VR
    report = scan_folder(tmp_path)
    assert report.skipped_by_reason == {"unreadable DICOM": 1}
    assert report.series[0].instances == 2
    with pytest.raises(DicomError, match=r"1 file\(s\) in the folder look damaged .*unreadable DICOM"):
        read_series(tmp_path)
