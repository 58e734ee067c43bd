"""A 500+ MB payload over gRPC: a 512^3 float32 volume (536.9 MB) each way through a real server.

Shows that large inputs travel as 1 MiB chunks within 8 MiB message limits, and reports the
transfer rate and the server's peak memory (ru_maxrss of this process, server and client together).

    nice -n 10 python bench/large_payload_rpc.py [--slices 512]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=512)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from service.inference.engine import Engine, EngineConfig
    from service.rpc.client import TranslationClient
    from service.rpc.config import ServerConfig
    from service.rpc.server import TranslationServer
    from service.volume import Modality, Unit, Volume
    from tests.rpc.conftest import add_model  # the tiny identity model of the tests

    with tempfile.TemporaryDirectory() as tmp:
        add_model(Path(tmp), "ct-identity", "cbct-to-ct")
        engine = Engine(tmp, EngineConfig(providers=("CPUExecutionProvider",)))
        server = TranslationServer(ServerConfig(port=0, grace_s=1.0), engine, tokens=())
        port = server.start()
        server.load_models()
        rng = np.random.default_rng(0)
        array = rng.uniform(-1000, 2000, size=(args.slices, 512, 512)).astype(np.float32)
        volume = Volume(array, spacing_mm=(1.0, 1.0, 1.0), modality=Modality.CT, unit=Unit.HU)
        try:
            with TranslationClient(f"127.0.0.1:{port}") as client:
                start = time.perf_counter()
                result = client.translate_volume(volume, model="ct-identity", timeout_s=1800)
                wall = time.perf_counter() - start
        finally:
            server.stop(1.0)
    assert result.volume is not None and result.volume.shape == volume.shape
    error = float(np.abs(result.volume.array - volume.array).max())
    mb = array.nbytes / 1e6
    t = result.timings_s
    print(f"volume {volume.shape} float32 = {mb:.1f} MB each way; max |out - in| = {error:.3g} HU")
    print(
        f"wall {wall:.1f} s; receive {t['receive']:.2f} s ({mb / t['receive']:.0f} MB/s); "
        f"send {t['send']:.2f} s ({mb / t['send']:.0f} MB/s); inference {t['inference']:.1f} s"
    )
    print(
        "peak RSS (client + server in one process): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB"
    )


if __name__ == "__main__":
    main()
