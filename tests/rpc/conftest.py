"""Fixtures for the gRPC tests: tiny ONNX model repositories, DICOM series, real servers on localhost."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pytest

from service.inference.engine import Engine, EngineConfig
from service.rpc.client import TranslationClient
from service.rpc.config import ServerConfig
from service.rpc.server import TranslationServer
from tests.inference.helpers import card as base_card
from tests.inference.helpers import linear_model, nan_model, write_model

REAL_CT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "ct-cort-liver"

MR_INPUT: dict[str, Any] = {
    "modality": "MR",
    "unit": "MR_AU",
    "normalisation": {"kind": "percentile", "low_percentile": 0.5, "high_percentile": 99.5, "upper_bound": 2},
}


def card(name: str, task: str, version: str = "1") -> dict[str, Any]:
    """A valid card; CT->CT (cbct-to-ct) or MR->CT (mr-to-ct), 1 context slice, no body mask."""
    changes: dict[str, Any] = {"name": name, "version": version, "task": task, "site": "any"}
    if task == "mr-to-ct":
        changes["input"] = MR_INPUT
    return base_card(**changes, intended_use="tests only")


def add_model(root: Path, name: str, task: str, *, version: str = "1", scale: float = 1.0) -> None:
    """A model whose output is ``scale`` × input (NaN scale: a broken model returning NaN)."""
    if np.isnan(scale):
        write_model(root, card(name, task, version), nan_model, max_batch_size=4)
    else:
        write_model(root, card(name, task, version), partial(linear_model, channels=1, a=scale, b=0.0),
                    max_batch_size=4)  # fmt: skip


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    add_model(root, "ct-identity", "cbct-to-ct")
    add_model(root, "mr-sct", "mr-to-ct")
    add_model(root, "ct-nan", "cbct-to-ct", scale=float("nan"))  # a broken model: NaN output
    return root


class InstrumentedEngine(Engine):
    """The real engine; each call may wait at a gate and its inference batches are counted.

    ``gate`` (cleared) holds every translate() at its start, which makes calls slow
    deterministically; ``hold_after_first_batch`` blocks after the first inference batch until
    the call's cancel event is set (at most 20 s), so a test can show the work stopped.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)
        self.hold_after_first_batch = False
        self.batches: list[int] = []
        self.cancel_events: list[threading.Event] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def translate(self, volume: Any, **kwargs: Any) -> Any:
        cancel: threading.Event = kwargs["cancel"]
        outer: Callable[[str, float], None] | None = kwargs.get("progress")
        with self._lock:
            self.cancel_events.append(cancel)
            slot = len(self.batches)
            self.batches.append(0)
        self.entered.release()
        self.gate.wait(timeout=30)

        def progress(stage: str, fraction: float) -> None:
            if outer is not None:
                outer(stage, fraction)
            if stage == "inference":
                self.batches[slot] += 1
                if self.hold_after_first_batch:
                    cancel.wait(timeout=20)

        kwargs["progress"] = progress
        try:
            return super().translate(volume, **kwargs)
        except BaseException as exc:
            self.errors.append(exc)
            raise


@dataclass
class Running:
    server: TranslationServer
    engine: InstrumentedEngine
    target: str

    def client(self, **kwargs: Any) -> TranslationClient:
        return TranslationClient(self.target, **kwargs)


#: The type of the ``start_server`` fixture: ``start_server(load=..., tokens=..., **ServerConfig options)``.
StartServer: TypeAlias = Callable[..., Running]


@pytest.fixture
def start_server(repository: Path) -> Iterator[Callable[..., Running]]:
    """Start a real server on 127.0.0.1 (free port); every server is stopped at teardown."""
    started: list[TranslationServer] = []

    def start(*, load: bool = True, tokens: tuple[bytes, ...] = (), **options: Any) -> Running:
        options.setdefault("port", 0)
        options.setdefault("models_dir", str(repository))
        options.setdefault("grace_s", 1.0)
        config = ServerConfig(**options)
        engine = InstrumentedEngine(
            repository, EngineConfig(providers=("CPUExecutionProvider",), batch_size=4, intra_op_threads=1)
        )
        server = TranslationServer(config, engine, tokens=tokens)
        started.append(server)
        port = server.start()
        if load:
            server.load_models()
        return Running(server, engine, f"{server.host}:{port}")

    yield start
    for server in started:
        if isinstance(server.engine, InstrumentedEngine):
            server.engine.gate.set()
        server.stop(0.5)


# ---------------------------------------------------------------------- DICOM
def ct_series(out_dir: Path, n_slices: int = 6, *, series_uid: str | None = None) -> list[Path]:
    """A multi-slice CT series made from pydicom's CT_small.dcm: new IPPs 2.5 mm apart, new UIDs."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    source = get_testdata_file("CT_small.dcm", download=False)
    if source is None:
        pytest.skip("pydicom's bundled CT_small.dcm is not available")
    out_dir.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    paths = []
    for k in range(n_slices):
        ds = dcmread(source)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 2.5 * k]
        ds.SliceLocation = z + 2.5 * k
        ds.InstanceNumber = k + 1
        ds.SliceThickness = 2.5
        path = out_dir / f"ct_{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def ct_paths(tmp_path: Path) -> list[Path]:
    return ct_series(tmp_path / "ct", 6)


def real_ct_paths(limit: int) -> list[Path]:
    if not REAL_CT.is_dir():
        pytest.skip(f"real CT folder {REAL_CT} is absent (shared/data/real next to the repository)")
    paths = sorted(REAL_CT.glob("*.dcm"), key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
    return paths[:limit]


# ---------------------------------------------------------------------- certificates
@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_cert: Path  # a client certificate signed by a CA the server does not trust
    other_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    (d / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for ca in ("ca", "otherca"):
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={ca}",
            "-keyout",
            f"{ca}.key",
            "-out",
            f"{ca}.pem",
            cwd=d,
        )
    for name, ca in (("server", "ca"), ("client", "ca"), ("other", "otherca")):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=d,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            f"{ca}.pem",
            "-CAkey",
            f"{ca}.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            f"{name}.pem",
            cwd=d,
        )
    return Pki(
        d / "ca.pem",
        d / "server.pem",
        d / "server.key",
        d / "client.pem",
        d / "client.key",
        d / "other.pem",
        d / "other.key",
    )


def volume_ct(shape: tuple[int, int, int] = (4, 16, 16)) -> Any:
    from service.volume import Modality, Unit, Volume

    rng = np.random.default_rng(0)
    return Volume(
        rng.uniform(-1000, 2000, size=shape).astype(np.float32),
        spacing_mm=(1.0, 1.0, 2.0),
        origin_mm=(-8.0, -8.0, 10.0),
        modality=Modality.CT,
        unit=Unit.HU,
    )
