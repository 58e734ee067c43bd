"""The contract: committed stubs are current, reflection and health work, metrics are exported."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from .conftest import StartServer, volume_ct

ROOT = Path(__file__).resolve().parents[2]
STUBS = ("translation_pb2.py", "translation_pb2.pyi", "translation_pb2_grpc.py")


def test_committed_stubs_are_not_stale(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(ROOT / "tools" / "gen_protos.sh"), str(tmp_path)],
        check=True, capture_output=True, timeout=60, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    for name in STUBS:
        fresh = (tmp_path / "protos" / "radtranslate" / "v1" / name).read_text()
        committed = (ROOT / "protos" / "radtranslate" / "v1" / name).read_text()
        assert fresh == committed, f"{name} is stale: run tools/gen_protos.sh and commit the stubs"


def test_reflection_lists_the_service(start_server: StartServer) -> None:
    running = start_server()
    with grpc.insecure_channel(running.target) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "radtranslate.v1.TranslationService" in services
    assert "grpc.health.v1.Health" in services


def test_health_not_serving_before_load_then_serving(start_server: StartServer) -> None:
    running = start_server(load=False)
    with running.client() as client:
        assert client.health() == "NOT_SERVING"
        assert client.health("") == "NOT_SERVING"
        running.server.load_models()
        assert client.health() == "SERVING"
        assert client.health("") == "SERVING"


def test_metrics_endpoint_counts_requests_failures_and_stages(start_server: StartServer) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    running = start_server(metrics_port=port)
    with running.client() as client:
        client.translate_volume(volume_ct(), model="ct-identity")
        with contextlib.suppress(grpc.RpcError):
            client.get_model("absent")
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{running.server.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    assert 'radtranslate_requests_total{method="Translate"} 1.0' in text
    assert 'radtranslate_failures_total{code="NOT_FOUND",method="GetModel"} 1.0' in text
    assert 'radtranslate_stage_seconds_count{stage="inference"} 1.0' in text
    assert (
        'radtranslate_inferences_total{model="ct-identity",provider="CPUExecutionProvider",version="1"} 1.0'
        in text
    )
    assert "radtranslate_queue_depth 0.0" in text and "radtranslate_in_flight 0.0" in text
