"""Bounded concurrency, queue refusal, deadlines, cancellation and graceful shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from service.errors import CancelledError

from .conftest import Running, StartServer, ct_series, volume_ct


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_ten_concurrent_calls_each_get_their_own_result(start_server: StartServer, tmp_path: Path) -> None:
    running = start_server(workers=2, queue=8)
    volumes = [volume_ct((3, 16, 16)).with_array(np.full((3, 16, 16), 100.0 * i - 500)) for i in range(6)]
    series = [ct_series(tmp_path / f"s{i}", 2 + i) for i in range(4)]

    def call_volume(volume):
        with running.client() as client:
            return client.translate_volume(volume, model="ct-identity", timeout_s=60)

    def call_dicom(paths):
        with running.client() as client:
            return client.translate_dicom(paths, model="ct-identity", output_format="volume", timeout_s=60)

    with ThreadPoolExecutor(10) as pool:
        from_volumes = [pool.submit(call_volume, v) for v in volumes]
        from_dicom = [pool.submit(call_dicom, p) for p in series]
        for volume, future in zip(volumes, from_volumes, strict=True):
            result = future.result(timeout=60)
            assert result.volume is not None
            np.testing.assert_allclose(result.volume.array, volume.array, atol=0.5)
        for paths, future in zip(series, from_dicom, strict=True):
            result = future.result(timeout=60)
            assert result.volume is not None and result.volume.shape[0] == len(paths)
    assert len(running.engine.batches) == 10


def test_full_queue_answers_resource_exhausted_at_once(start_server: StartServer) -> None:
    running = start_server(workers=1, queue=1)
    engine = running.engine
    engine.gate.clear()  # every translation waits at the gate: deterministic "slow model"
    volume = volume_ct()
    with ThreadPoolExecutor(2) as pool:
        clients = [running.client() for _ in range(3)]
        first = pool.submit(clients[0].translate_volume, volume, model="ct-identity", timeout_s=60)
        assert engine.entered.acquire(timeout=10)  # the only worker is busy
        second = pool.submit(clients[1].translate_volume, volume, model="ct-identity", timeout_s=60)
        wait_until(lambda: running.server.admission.admitted == 2)  # one running, one queued
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as refused:
            clients[2].translate_volume(volume, model="ct-identity", timeout_s=60)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "retry later" in refused.value.details()
        assert time.monotonic() - start < 5.0  # refused without waiting for the busy worker
        engine.gate.set()
        assert first.result(timeout=30).volume is not None
        assert second.result(timeout=30).volume is not None
        for c in clients:
            c.close()
    assert running.server.admission.admitted == 0


def _hold(running: Running, slices: int = 12) -> Any:
    running.engine.hold_after_first_batch = True  # batch_size 4: 3 batches for 12 slices
    return volume_ct((slices, 16, 16))


def test_deadline_stops_the_engine(start_server: StartServer) -> None:
    running = start_server()
    volume = _hold(running)
    with running.client() as client, pytest.raises(grpc.RpcError) as error:
        client.translate_volume(volume, model="ct-identity", timeout_s=1.5)
    assert error.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    engine = running.engine
    wait_until(lambda: len(engine.errors) == 1)
    assert engine.cancel_events[0].is_set()
    assert isinstance(engine.errors[0], CancelledError)
    assert engine.batches == [1]  # 1 of 3 inference batches ran


def test_client_cancel_stops_the_engine(start_server: StartServer) -> None:
    running = start_server()
    volume = _hold(running)
    with running.client() as client:
        header = client._header(task=None, model="ct-identity", version=None, output_format="volume",
                                series_uid=None, modality=None, request_id="cancel-test")  # fmt: skip
        call = client._stub.Translate(client._volume_requests(header, volume), timeout=30)
        for response in call:
            if response.WhichOneof("part") == "progress" and response.progress.stage == "inference":
                call.cancel()
                break
        assert call.code() is grpc.StatusCode.CANCELLED
    engine = running.engine
    wait_until(lambda: len(engine.errors) == 1)
    assert isinstance(engine.errors[0], CancelledError)
    assert engine.batches == [1]
    wait_until(lambda: running.server.admission.admitted == 0)


def test_graceful_shutdown_drains_in_flight_calls(start_server: StartServer) -> None:
    running = start_server(grace_s=20.0)
    engine = running.engine
    engine.gate.clear()
    with ThreadPoolExecutor(2) as pool, running.client() as client:
        in_flight = pool.submit(client.translate_volume, volume_ct(), model="ct-identity", timeout_s=60)
        assert engine.entered.acquire(timeout=10)
        stopping = pool.submit(running.server.stop)
        time.sleep(0.3)
        with running.client() as late, pytest.raises(grpc.RpcError) as refused:
            late.list_models(timeout_s=5)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        threading.Timer(0.2, engine.gate.set).start()
        assert in_flight.result(timeout=30).volume is not None  # finished during the grace period
        stopping.result(timeout=30)


def test_deadline_while_receiving_frees_the_place(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    running = start_server(workers=1, queue=0)
    release = threading.Event()

    def stalled(client):
        header = client._header(task=None, model="ct-identity", version=None, output_format="volume",
                                series_uid=None, modality=None, request_id="")  # fmt: skip
        yield header
        release.wait(timeout=10)  # the client stops sending mid-request

    with running.client() as client:
        with pytest.raises(grpc.RpcError) as error:
            list(client._stub.Translate(stalled(client), timeout=1.0))
        release.set()
    assert error.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: running.server.admission.admitted == 0)
    assert running.engine.batches == []
    assert not [r for r in caplog.records if r.getMessage() == "internal error"]
    with running.client() as client:  # the single place is free again
        assert client.translate_volume(volume_ct(), model="ct-identity").volume is not None
