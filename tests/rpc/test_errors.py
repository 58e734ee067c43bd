"""Each kind of bad input answers the right status code with a message that says how to fix it."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import numpy as np
import pytest

from protos.radtranslate.v1 import translation_pb2 as pb

from .conftest import StartServer, ct_series, volume_ct


def _code(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return excinfo.value.code()


def test_non_dicom_bytes(start_server: StartServer) -> None:
    running = start_server()
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_dicom([b"this is not DICOM" * 20], model="ct-identity")
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "instance 0" in error.value.details() and "not a readable DICOM" in error.value.details()


def test_mixed_series_without_selection(start_server: StartServer, tmp_path: Path) -> None:
    paths = ct_series(tmp_path / "a", 2) + ct_series(tmp_path / "b", 2)
    running = start_server()
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_dicom(paths, model="ct-identity")
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "series" in error.value.details().lower()


def test_missing_header(start_server: StartServer) -> None:
    running = start_server()
    with running.client() as client:
        requests = iter([pb.TranslateRequest(volume=pb.VolumeChunk(offset=0, data=b"\0" * 4, last=True))])
        with pytest.raises(grpc.RpcError) as error:
            list(client._stub.Translate(requests, timeout=10))
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "first message of Translate must be a header" in error.value.details()


def test_header_without_model_or_task(start_server: StartServer) -> None:
    running = start_server()
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_volume(volume_ct())
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "neither task nor model" in error.value.details()


def test_unknown_model(start_server: StartServer) -> None:
    running = start_server()
    with running.client() as client:
        with pytest.raises(grpc.RpcError) as error:
            client.translate_volume(volume_ct(), model="no-such-model")
        assert _code(error) is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as error:
            client.get_model("no-such-model")
        assert _code(error) is grpc.StatusCode.NOT_FOUND
    assert running.engine.batches == []  # refused before any work


def test_wrong_modality(start_server: StartServer, ct_paths: list[Path]) -> None:
    running = start_server()
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_dicom(ct_paths, model="mr-sct")
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "MR" in error.value.details()


def test_too_many_instances_and_bytes(start_server: StartServer, tmp_path: Path) -> None:
    paths = ct_series(tmp_path / "ct", 3)
    running = start_server(max_instances=2)
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_dicom(paths, model="ct-identity")
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "max_instances" in error.value.details()
    running = start_server(max_request_bytes=4096)
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_volume(volume_ct((4, 32, 32)), model="ct-identity")
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "max_request_bytes" in error.value.details()


def test_truncated_volume(start_server: StartServer) -> None:
    running = start_server()
    volume = volume_ct()
    with running.client() as client:
        header = client._header(task=None, model="ct-identity", version=None, output_format="volume",
                                series_uid=None, modality=None, request_id="")  # fmt: skip
        requests = list(client._volume_requests(header, volume))[:-1]  # drop the final chunk
        with pytest.raises(grpc.RpcError) as error:
            list(client._stub.Translate(iter(requests), timeout=10))
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "last=true" in error.value.details()


def test_internal_error_hides_the_trace_and_logs_a_reference(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    running = start_server()
    with (
        caplog.at_level(logging.ERROR, logger="radtranslate.rpc"),
        running.client() as client,
        pytest.raises(grpc.RpcError) as error,
    ):
        client.translate_volume(volume_ct(), model="ct-nan")
    assert _code(error) is grpc.StatusCode.INTERNAL
    details = error.value.details()
    assert details.startswith("internal error, reference ")
    assert "Traceback" not in details and "NaN" not in details
    reference = details.rsplit(" ", 1)[-1]
    logged = [r for r in caplog.records if getattr(r, "fields", {}).get("reference") == reference]
    assert logged and logged[0].exc_info is not None


def test_before_models_load_translate_is_unavailable(start_server: StartServer) -> None:
    running = start_server(load=False)
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_volume(volume_ct(), model="ct-identity")
    assert _code(error) is grpc.StatusCode.UNAVAILABLE


def test_unit_must_suit_modality(start_server: StartServer) -> None:
    running = start_server()
    volume = volume_ct()
    with running.client() as client:
        header = client._header(task=None, model="ct-identity", version=None, output_format="volume",
                                series_uid=None, modality=None, request_id="")  # fmt: skip
        requests = list(client._volume_requests(header, volume))
        requests[1].volume_header.unit = "SUVbw"
        with pytest.raises(grpc.RpcError) as error:
            list(client._stub.Translate(iter(requests), timeout=10))
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "SUVbw" in error.value.details()
    assert np.isfinite(volume.array).all()


def test_volume_in_dicom_out_is_refused_without_a_source_series(start_server: StartServer) -> None:
    running = start_server()
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_volume(volume_ct(), model="ct-identity", output_format="dicom")
    assert _code(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert "no source DICOM series" in error.value.details()


def test_client_raises_typed_errors_that_are_also_rpc_errors(start_server: StartServer) -> None:
    from service.errors import InputError, NotFoundError
    from service.rpc.remote import RemoteError

    running = start_server()
    with running.client() as client:
        with pytest.raises(NotFoundError) as missing:
            client.get_model("no-such-model")
        with pytest.raises(InputError) as bad:
            client.translate_dicom([b"not DICOM" * 30], model="ct-identity")
    assert isinstance(missing.value, RemoteError) and isinstance(missing.value, grpc.RpcError)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert str(bad.value).startswith(f"server {running.target} answered INVALID_ARGUMENT: instance 0")
