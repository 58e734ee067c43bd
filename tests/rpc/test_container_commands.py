"""The Dockerfile's CMD and HEALTHCHECK, run outside Docker (no engine here): they start, probe and drain."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.rpc.client import TranslationClient

from .conftest import StartServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def dockerfile() -> dict[str, object]:
    """ENV (of the final stage), CMD and HEALTHCHECK CMD of the Dockerfile."""
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    env: dict[str, str] = {}
    cmd: list[str] = []
    health: list[str] = []
    for line in lines:
        if line.startswith("FROM "):
            env = {}
        elif line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                key, _, value = item.partition("=")
                env[key] = value
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
        elif line.startswith("HEALTHCHECK "):
            health = json.loads(line.split(" CMD ", 1)[1])
    return {"env": env, "cmd": cmd, "health": health}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serving_image_env(tmp_path: Path) -> dict[str, str]:
    """Like the serving image: the training packages (models, export: torch, MONAI) are absent."""
    shadow = tmp_path / "no_training"
    for name in ("models", "export"):
        (shadow / name).mkdir(parents=True)
        (shadow / name / "__init__.py").write_text(
            "raise ImportError('not in the serving image', name='torch')\n"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADTRANSLATE_")}
    env["PYTHONPATH"] = str(shadow)
    env["PATH"] = f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    return env


def resolve(argv: list[str]) -> list[str]:
    """Container commands use the venv's executables here."""
    exe = sys.executable if argv[0] == "python" else str(BIN / argv[0])
    return [exe, *argv[1:]]


def test_cmd_serves_healthcheck_probes_and_sigterm_drains(repository: Path, tmp_path: Path) -> None:
    spec = dockerfile()
    assert spec["cmd"] == ["radtranslate", "serve"] and spec["health"]
    env = serving_image_env(tmp_path)
    env.update({k: v for k, v in spec["env"].items() if k.startswith("RADTRANSLATE_")})  # type: ignore[attr-defined]
    port, metrics_port = free_port(), free_port()
    env.update(
        RADTRANSLATE_PORT=str(port), RADTRANSLATE_METRICS_PORT=str(metrics_port),
        RADTRANSLATE_METRICS_HOST="127.0.0.1", RADTRANSLATE_MODELS_DIR=str(repository),
        RADTRANSLATE_PROVIDERS="CPUExecutionProvider", RADTRANSLATE_GRACE_S="5",
    )  # fmt: skip
    assert env["RADTRANSLATE_HOST"] == "0.0.0.0"  # no TLS/tokens: the server must fall back to loopback
    log = (tmp_path / "server.log").open("w+")
    server = subprocess.Popen(
        resolve(spec["cmd"]), env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        probe = resolve(spec["health"])  # type: ignore[arg-type]
        healthy = False
        for _ in range(120):  # at most ~60 s
            if server.poll() is not None:
                break
            done = subprocess.run(probe, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
            if done.returncode == 0:
                assert done.stdout.strip() == "SERVING"
                healthy = True
                break
            time.sleep(0.5)
        log.seek(0)
        output = log.read()
        assert healthy, f"server never became healthy; its output:\n{output}"
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert any("binding to 127.0.0.1 only" in r["message"] for r in records)
        with TranslationClient(f"127.0.0.1:{port}") as client:
            assert [c.name for c in client.list_models()] == ["ct-identity", "ct-nan", "mr-sct"]
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()
    down = subprocess.run(probe, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "unhealthy" in down.stderr


def test_healthcheck_reports_not_serving_as_failure(start_server: StartServer) -> None:
    from service.rpc.healthcheck import main

    running = start_server(load=False)
    assert main(["--target", running.target, "--timeout-s", "2"]) == 1
    running.server.load_models()
    assert main(["--target", running.target, "--timeout-s", "2"]) == 0


def test_serve_refuses_bad_flags_with_the_fix(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "radtranslate"), "serve", "--workers", "0", "--models", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=serving_image_env(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "workers must be an integer within 1..256" in done.stderr


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RADTRANSLATE_"):
            monkeypatch.delenv(key)
