"""Volume in, volume out over a real server; list/get models; large volumes in many chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import OutputError
from service.rpc.chunks import iter_chunks

from .conftest import StartServer, volume_ct


def test_volume_round_trip_keeps_geometry_and_values(start_server: StartServer) -> None:
    running = start_server()
    volume = volume_ct((5, 24, 20))
    seen: list[tuple[str, float]] = []
    with running.client() as client:
        result = client.translate_volume(
            volume, model="ct-identity", progress=lambda s, f: seen.append((s, f))
        )
    assert result.volume is not None and result.instances is None
    assert result.volume.same_grid(volume)
    np.testing.assert_allclose(result.volume.array, volume.array, atol=0.5)
    assert (result.model, result.version, result.provider) == ("ct-identity", "1", "CPUExecutionProvider")
    assert {"receive", "queue", "decode", "inference", "encode", "send"} <= set(result.timings_s)
    stages = [s for s, _ in seen]
    assert stages[0] == "queued" and "inference" in stages
    assert ("inference", 1.0) in seen


def test_task_selects_the_model(start_server: StartServer) -> None:
    running = start_server()
    with running.client() as client:
        mr = volume_ct().with_array(np.abs(volume_ct().array), modality="MR", unit="MR_AU")
        result = client.translate_volume(mr, task="mr-to-ct")
    assert result.model == "mr-sct"


def test_volume_larger_than_a_message_travels_in_chunks(start_server: StartServer) -> None:
    # 40 x 128 x 128 float32 = 2.6 MB with 256 KiB chunks: > 10 messages each way, 1 MiB message limit.
    running = start_server(max_message_bytes=1024 * 1024, chunk_bytes=256 * 1024)
    volume = volume_ct((40, 128, 128))
    with running.client(max_message_bytes=1024 * 1024, chunk_bytes=256 * 1024) as client:
        result = client.translate_volume(volume, model="ct-identity")
    assert result.volume is not None
    np.testing.assert_allclose(result.volume.array, volume.array, atol=0.5)


def test_list_and_get_models(start_server: StartServer) -> None:
    running = start_server()
    with running.client() as client:
        cards = client.list_models()
        card = client.get_model("mr-sct")
    assert [c.name for c in cards] == ["ct-identity", "ct-nan", "mr-sct"]
    assert (card.task, card.input_modality, card.output_modality, card.version) == (
        "mr-to-ct",
        "MR",
        "CT",
        "1",
    )
    assert card.provider == "CPUExecutionProvider"
    assert '"schema": "radtranslate.card/v1"' in card.card_json


@pytest.mark.parametrize("size", [0, 1, 5, 10])
def test_iter_chunks_covers_payload(size: int) -> None:
    data = bytes(range(size))
    chunks = list(iter_chunks(data, 4))
    assert b"".join(bytes(c.data) for c in chunks) == data
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(len(c.data) <= 4 for c in chunks)


def test_volume_result_written_atomically_as_nifti(start_server: StartServer, tmp_path: Path) -> None:
    from service.imageio import read_image
    from service.rpc.client import write_result

    running = start_server()
    volume = volume_ct((4, 12, 10))
    with running.client() as client:
        result = client.translate_volume(volume, model="ct-identity")
    path = write_result(result, tmp_path / "sct.nii.gz")
    back = read_image(path, modality="CT", unit="HU")
    assert back.same_grid(volume)
    np.testing.assert_allclose(back.array, result.volume.array, atol=1e-3)  # type: ignore[union-attr]
    with pytest.raises(OutputError, match="already exists"):
        write_result(result, path)
