"""Series selection: exactly one image series, non-image series ignored but counted."""

from __future__ import annotations

import shutil
from io import BytesIO

import numpy as np
import pydicom
import pytest

from service.dicom import read_series, read_series_from_datasets
from service.errors import DicomError, OptionError, SeriesSelectionError
from service.volume import Modality

from ._series import data_file, series_datasets, write


@pytest.fixture
def mixed_folder(tmp_path):
    ct = series_datasets(3)
    mr = series_datasets(4, source="MR_small.dcm", spacing_mm=1.5)
    for ds in ct:
        ds.SeriesDescription = "planning CT"
    write(ct, tmp_path / "a" / "ct")
    write(mr, tmp_path / "b")
    shutil.copy(data_file("rtplan.dcm"), tmp_path / "rp.dcm")
    shutil.copy(data_file("rtdose.dcm"), tmp_path / "rd.dcm")
    (tmp_path / "notes.txt").write_text("not dicom")
    return tmp_path, ct, mr


def test_several_series_are_listed_and_never_all_selected(mixed_folder):
    folder, ct, mr = mixed_folder
    with pytest.raises(SeriesSelectionError) as info:
        read_series(folder)
    message = str(info.value)
    assert "2 image series match any image series" in message
    assert ct[0].SeriesInstanceUID in message and mr[0].SeriesInstanceUID in message
    assert "3 instance(s)  'planning CT'" in message
    assert "2 non-image series ignored" in message
    assert "1 file(s) skipped" in message
    assert message.endswith("Pass series_uid (or a modality) to choose exactly one.")


def test_select_by_modality_or_uid(mixed_folder):
    folder, ct, _mr = mixed_folder
    assert read_series(folder, modality="MR").shape == (4, 64, 64)
    vol = read_series(folder, series_uid=ct[0].SeriesInstanceUID)
    assert vol.modality is Modality.CT and vol.shape == (3, 128, 128)
    source = read_series(folder, modality=Modality.CT).source
    assert source is not None and source.series_instance_uid == ct[0].SeriesInstanceUID


def test_no_match_lists_what_was_found(mixed_folder):
    folder, _, _ = mixed_folder
    expected = r"no image series matches modality PT.*Image series found"
    with pytest.raises(SeriesSelectionError, match=expected):
        read_series(folder, modality="PET")
    with pytest.raises(SeriesSelectionError, match=r"no image series matches series_uid '1\.2\.3'"):
        read_series(folder, series_uid="1.2.3")


def test_non_image_series_cannot_be_selected(mixed_folder):
    folder, _, _ = mixed_folder
    uid = pydicom.dcmread(data_file("rtdose.dcm")).SeriesInstanceUID
    with pytest.raises(SeriesSelectionError, match=r"is RTDOSE, not an image series"):
        read_series(folder, series_uid=uid)


def test_explicit_file_list_refuses_non_dicom(mixed_folder):
    folder, _, _ = mixed_folder
    files = [*sorted((folder / "b").iterdir()), folder / "notes.txt"]
    with pytest.raises(DicomError, match=r"notes\.txt' is not a usable DICOM instance \(not DICOM"):
        read_series(files)
    assert read_series(files[:-1]).shape == (4, 64, 64)


def test_from_datasets_parsed_from_bytes_equals_folder_read(mixed_folder):
    folder, _, _ = mixed_folder
    raw = [p.read_bytes() for p in sorted((folder / "a" / "ct").iterdir())]
    vol = read_series_from_datasets([pydicom.dcmread(BytesIO(b)) for b in reversed(raw)])
    ref = read_series(folder, modality="CT")
    np.testing.assert_array_equal(vol.array, ref.array)
    assert vol.origin_mm == ref.origin_mm and vol.spacing_mm == ref.spacing_mm


def test_options_are_validated():
    datasets = series_datasets(2)
    with pytest.raises(OptionError, match=r"modality must be one of CT, MR, PT or None, got 'RTDOSE'"):
        read_series_from_datasets(datasets, modality="RTDOSE")
    with pytest.raises(OptionError, match=r"pet_unit must be 'SUVbw' or 'Bq/ml', got 'HU'"):
        read_series_from_datasets(datasets, pet_unit="HU")
    with pytest.raises(DicomError, match="not a pydicom Dataset"):
        read_series_from_datasets([b"bytes"])  # type: ignore[list-item]


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(DicomError, match="does not exist"):
        read_series(tmp_path / "nowhere")


def test_modality_contradicting_sop_class_is_refused():
    def relabel(i, ds):
        ds.Modality = "MR"  # CT Image Storage instances labelled MR

    expected = r"Modality is MR but its SOPClassUID 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2 is a CT"
    with pytest.raises(DicomError, match=expected):
        read_series_from_datasets(series_datasets(2, mutate=relabel))


def test_file_list_items_must_be_paths():
    with pytest.raises(OptionError, match=r"path\[0\] must be a file path .*got int"):
        read_series([1, 2])  # type: ignore[list-item]
