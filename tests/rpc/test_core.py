"""Transport-free pieces: chunk framing, admission control, cancellation inside decode."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from service.errors import CancelledError, ResourceExhaustedError
from service.rpc.admission import Admission
from service.rpc.chunks import (
    DicomAssembler,
    FramingError,
    RequestTooLargeError,
    VolumeAssembler,
    VolumeGeometry,
)
from service.rpc.core import decode_dicom

from .conftest import ct_series

GEOMETRY = VolumeGeometry(
    (2, 2, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1), "CT", "HU"
)


def test_dicom_framing_errors_name_the_fix() -> None:
    a = DicomAssembler(max_instances=10, max_request_bytes=100)
    with pytest.raises(FramingError, match="instance_index 1 arrived when instance 0"):
        a.add(instance_index=1, instance_size_bytes=4, offset=0, data=b"abcd", last=True)
    a.add(instance_index=0, instance_size_bytes=4, offset=0, data=b"ab", last=False)
    with pytest.raises(FramingError, match="offset 3 where 2 was expected"):
        a.add(instance_index=0, instance_size_bytes=4, offset=3, data=b"c", last=False)
    with pytest.raises(FramingError, match="beyond its declared size"):
        a.add(instance_index=0, instance_size_bytes=4, offset=2, data=b"cde", last=True)
    with pytest.raises(FramingError, match="stream ended inside instance 0"):
        a.finish()
    a.add(instance_index=0, instance_size_bytes=4, offset=2, data=b"cd", last=True)
    assert a.finish() == [b"abcd"]


def test_dicom_limits() -> None:
    a = DicomAssembler(max_instances=1, max_request_bytes=100)
    a.add(instance_index=0, instance_size_bytes=1, offset=0, data=b"x", last=True)
    with pytest.raises(RequestTooLargeError, match="max_instances"):
        a.add(instance_index=1, instance_size_bytes=1, offset=0, data=b"y", last=True)
    b = DicomAssembler(max_instances=5, max_request_bytes=10)
    with pytest.raises(RequestTooLargeError, match="max_request_bytes=10"):
        b.add(instance_index=0, instance_size_bytes=11, offset=0, data=b"", last=False)


def test_volume_framing() -> None:
    with pytest.raises(FramingError, match="needs 32"):
        VolumeAssembler(GEOMETRY, 31, max_request_bytes=1000)
    with pytest.raises(RequestTooLargeError):
        VolumeAssembler(GEOMETRY, 32, max_request_bytes=16)
    v = VolumeAssembler(GEOMETRY, 32, max_request_bytes=1000)
    v.add(offset=0, data=b"\0" * 16, last=False)
    with pytest.raises(FramingError, match="send all voxels before last=true"):
        v.add(offset=16, data=b"\0" * 8, last=True)


def test_admission_counts_and_refuses() -> None:
    admission = Admission(workers=1, queue=1)
    cancel = threading.Event()
    with admission.admit(), admission.admit():
        with pytest.raises(ResourceExhaustedError, match="1 running \\+ 1 queued"), admission.admit():
            pass
        with admission.worker(cancel):
            assert admission.running == 1
            cancel.set()
            with pytest.raises(CancelledError, match="while queued"), admission.worker(cancel):
                pass
    assert (admission.admitted, admission.running) == (0, 0)


def test_decode_stops_when_cancelled(tmp_path: Path) -> None:
    blobs = [p.read_bytes() for p in ct_series(tmp_path / "ct", 3)]
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError, match="decoding"):
        decode_dicom(blobs, series_uid=None, modality=None, cancel=cancel)
    assert decode_dicom(blobs, series_uid=None, modality=None).shape[0] == 3
