"""DICOM series in, derived CT series out, over a real server."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import numpy as np
import pydicom
import pytest

from service.rpc.client import write_result

from .conftest import StartServer, ct_series, real_ct_paths


def _check_derived(inputs: list[Path], outputs: list[bytes], series_uid: str) -> list[pydicom.Dataset]:
    sources = [pydicom.dcmread(p) for p in inputs]
    derived: list[pydicom.Dataset] = [pydicom.dcmread(io.BytesIO(b)) for b in outputs]
    assert len(derived) == len(sources)
    src_series = {str(ds.SeriesInstanceUID) for ds in sources}
    assert {str(ds.SeriesInstanceUID) for ds in derived} == {series_uid}
    assert series_uid not in src_series
    assert {str(ds.FrameOfReferenceUID) for ds in derived} == {str(sources[0].FrameOfReferenceUID)}
    assert {str(ds.StudyInstanceUID) for ds in derived} == {str(sources[0].StudyInstanceUID)}
    assert all(ds.Modality == "CT" for ds in derived)
    src_ipps = sorted(tuple(round(float(v), 3) for v in ds.ImagePositionPatient) for ds in sources)
    out_ipps = sorted(tuple(round(float(v), 3) for v in ds.ImagePositionPatient) for ds in derived)
    assert out_ipps == src_ipps
    assert all(
        [float(v) for v in ds.ImageOrientationPatient]
        == pytest.approx([float(v) for v in sources[0].ImageOrientationPatient], abs=1e-5)
        for ds in derived
    )
    return derived


def test_ct_series_in_valid_ct_series_out(
    start_server: StartServer, ct_paths: list[Path], tmp_path: Path
) -> None:
    running = start_server()
    with running.client() as client:
        result = client.translate_dicom(ct_paths, model="ct-identity", request_id="dicom-1")
    assert result.instances is not None and result.volume is None
    derived = _check_derived(ct_paths, result.instances, result.output_series_uid)
    # the server's output equals a local translation of the same series (within integer rounding)
    from service.dicom.reader import read_series

    local = running.engine.translate(read_series(ct_paths), model="ct-identity", cancel=None)
    for k, ds in enumerate(sorted(derived, key=lambda d: float(d.ImagePositionPatient[2]))):
        out_hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_allclose(out_hu, local.volume.array[k], atol=0.51)
    folder = write_result(result, tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir())[0] == "0001.dcm"
    assert len(list(folder.iterdir())) == len(ct_paths)


def test_real_ct_series(start_server: StartServer) -> None:
    paths = real_ct_paths(24)  # 24 of the 168 slices keep the test within the time budget
    running = start_server()
    with running.client() as client:
        result = client.translate_dicom(paths, model="ct-identity", timeout_s=120)
    assert result.instances is not None
    _check_derived(paths, result.instances, result.output_series_uid)


def test_dicom_in_volume_out(start_server: StartServer, ct_paths: list[Path]) -> None:
    running = start_server()
    with running.client() as client:
        result = client.translate_dicom(ct_paths, model="ct-identity", output_format="volume")
    assert result.volume is not None and result.instances is None
    assert result.volume.shape[0] == len(ct_paths)
    first = pydicom.dcmread(ct_paths[0])
    np.testing.assert_allclose(
        result.volume.origin_mm, [float(v) for v in first.ImagePositionPatient], atol=1e-3
    )


def test_series_selection_among_mixed_series(start_server: StartServer, tmp_path: Path) -> None:
    a = ct_series(tmp_path / "a", 3)
    b = ct_series(tmp_path / "b", 4)
    wanted = str(pydicom.dcmread(b[0]).SeriesInstanceUID)
    running = start_server()
    with running.client() as client:
        result = client.translate_dicom(a + b, model="ct-identity", series_uid=wanted, output_format="volume")
    assert result.volume is not None and result.volume.shape[0] == 4


def test_logs_hold_no_patient_data(
    start_server: StartServer, ct_paths: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from service.logs import JsonFormatter

    source = pydicom.dcmread(ct_paths[0])
    secrets = [str(source.PatientName), str(source.PatientID), str(source.StudyInstanceUID),
               str(source.SeriesInstanceUID), str(source.SOPInstanceUID)]  # fmt: skip
    running = start_server()
    with caplog.at_level(logging.DEBUG):
        with running.client() as client:
            result = client.translate_dicom(ct_paths, model="ct-identity", request_id="phi-check")
        with running.client() as client, pytest.raises(grpc.RpcError):  # an error path logs too
            client.translate_dicom([*ct_paths, b"junk"], model="ct-identity")
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert any(json.loads(line).get("request_id") == "phi-check" for line in lines)
    for secret in [*secrets, result.output_series_uid]:
        assert not [line for line in lines if secret in line], f"{secret!r} appears in the logs"
