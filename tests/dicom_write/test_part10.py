"""Part 10 encoding of a derived series: byte for byte what pydicom's dcmwrite writes."""

from __future__ import annotations

import copy
import dataclasses
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.filewriter import dcmwrite
from pydicom.uid import ImplicitVRLittleEndian

from service.dicom import read_series
from service.dicom.part10 import encode_part10
from service.dicom.writer import encode_derived_series
from service.errors import OutputError
from service.volume import Volume
from tests.dicom_write.conftest import build_pet_series

MODEL: dict[str, Any] = {"model_name": "mr_to_ct", "model_version": "1"}


def _reference(datasets: list[pydicom.Dataset]) -> list[bytes]:
    blobs = []
    for ds in datasets:
        buffer = BytesIO()
        dcmwrite(buffer, copy.deepcopy(ds), enforce_file_format=True)
        blobs.append(buffer.getvalue())
    return blobs


def test_ct_series_bytes_equal_dcmwrite(small_ct: Volume) -> None:
    datasets = encode_derived_series(small_ct, **MODEL)
    # The sequence listing every source instance is one object shared by all instances.
    assert len({id(ds.ReferencedSeriesSequence) for ds in datasets}) == 1
    blobs = encode_part10(datasets)
    assert blobs == _reference(datasets)
    back = pydicom.dcmread(BytesIO(blobs[-1]))
    assert back.SOPInstanceUID == datasets[-1].SOPInstanceUID
    assert len(back.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == small_ct.shape[0]


def test_non_default_character_set_is_encoded_like_dcmwrite(small_ct: Volume) -> None:
    assert small_ct.source is not None and small_ct.source.header is not None
    header = copy.deepcopy(small_ct.source.header)
    header.SpecificCharacterSet = "ISO_IR 100"
    header.PatientName = "Müller^Jörg"
    header.StudyDescription = "Schädel nativ"
    source = dataclasses.replace(small_ct.source, header=header)
    volume = dataclasses.replace(small_ct, source=source)
    datasets = encode_derived_series(volume, **MODEL)
    blobs = encode_part10(datasets)
    assert blobs == _reference(datasets)
    assert "Müller".encode("latin-1") in blobs[0]
    assert str(pydicom.dcmread(BytesIO(blobs[0])).PatientName) == "Müller^Jörg"


def test_pet_series_bytes_equal_dcmwrite(pet_paths: list[Path], tmp_path: Path) -> None:
    build_pet_series(pet_paths[0], tmp_path / "src")
    datasets = encode_derived_series(read_series(tmp_path / "src"), **MODEL)
    assert encode_part10(datasets) == _reference(datasets)


def test_other_transfer_syntax_is_refused(small_ct: Volume) -> None:
    datasets = encode_derived_series(small_ct, **MODEL)
    datasets[1].file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    expected = (
        r"dataset 1 needs file meta with TransferSyntaxUID 1\.2\.840\.10008\.1\.2\.1 "
        r".*got 1\.2\.840\.10008\.1\.2:"
    )
    with pytest.raises(OutputError, match=expected):
        encode_part10(datasets)
    del datasets[0].file_meta
    with pytest.raises(OutputError, match="dataset 0 needs file meta"):
        encode_part10(datasets)
