"""End-to-end gRPC benchmark: a 512x512xN CT series through a real server on loopback.

Splits one call into transfer in (receive), decode, inference (tiny 3x3 conv model, CPU),
encode and transfer out (send), from the server's summary, and reports the non-inference
share and loopback throughput (MB/s, 1 MB = 1e6 bytes).

    nice -n 10 python bench/e2e_rpc.py [--slices 200] [--repeats 2] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

SPACING_MM = 0.9765625


def conv_model() -> onnx.ModelProto:
    weight = np.full((1, 1, 3, 3), 1.0 / 9.0, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["output"], pads=[1, 1, 1, 1])],
        "mean3x3",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, weight.shape, weight.ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def build_repository(root: Path) -> None:
    folder = root / "ct-conv"
    (folder / "1").mkdir(parents=True)
    onnx.save(conv_model(), str(folder / "1" / "model.onnx"))
    (folder / "config.pbtxt").write_text(
        'name: "ct-conv"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
        'input [ { name: "input" data_type: TYPE_FP32 dims: [ 1, -1, -1 ] } ]\n'
        'output [ { name: "output" data_type: TYPE_FP32 dims: [ 1, -1, -1 ] } ]\n'
    )
    norm = {"kind": "clip_linear", "low": -1024, "high": 3071}
    card = {
        "schema": "radtranslate.card/v1", "name": "ct-conv", "version": "1", "task": "cbct-to-ct",
        "site": "any", "input": {"modality": "CT", "unit": "HU", "normalisation": norm},
        "output": {"modality": "CT", "unit": "HU", "normalisation": norm, "background": -1000,
                   "clip": [-1024, 3071]},
        "context_slices": 1, "in_plane_spacing_mm": [SPACING_MM, SPACING_MM], "size_multiple": 1,
        "body_mask": {"kind": "none"},
    }
    (folder / "card.json").write_text(json.dumps(card))


def build_series(folder: Path, slices: int) -> list[bytes]:
    """A 512x512 CT series (int16, a water cylinder with noise), as Part 10 bytes."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    template = dcmread(get_testdata_file("CT_small.dcm", download=False))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:512, :512]
    body = (yy - 256) ** 2 + (xx - 256) ** 2 < 200**2
    series_uid, blobs = generate_uid(), []
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(slices):
        ds = template.copy()
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.Rows = ds.Columns = 512
        ds.PixelSpacing = [SPACING_MM, SPACING_MM]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-250.0, -250.0, 2.5 * k]
        ds.SliceThickness, ds.InstanceNumber = 2.5, k + 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        hu = np.where(body, 0.0, -1000.0) + rng.normal(0, 20, (512, 512))
        ds.PixelData = (hu + 1024).astype("<i2").tobytes()
        path = folder / f"{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        blobs.append(path.read_bytes())
    return blobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    from service.inference.engine import Engine, EngineConfig
    from service.rpc.client import TranslationClient
    from service.rpc.config import ServerConfig
    from service.rpc.server import TranslationServer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_repository(root / "models")
        blobs = build_series(root / "series", args.slices)
        in_mb = sum(map(len, blobs)) / 1e6
        config = ServerConfig(port=0, workers=args.workers, queue=2, grace_s=1.0)
        engine = Engine(root / "models", EngineConfig(providers=("CPUExecutionProvider",)))
        server = TranslationServer(config, engine, tokens=())
        port = server.start()
        server.load_models()
        runs = []
        try:
            with TranslationClient(f"127.0.0.1:{port}") as client:
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    result = client.translate_dicom(blobs, model="ct-conv", timeout_s=1800)
                    wall = time.perf_counter() - start
                    out_mb = sum(map(len, result.instances or [])) / 1e6
                    runs.append((wall, out_mb, result.timings_s))
        finally:
            server.stop(1.0)
    print(f"series: {args.slices} x 512 x 512 CT, {in_mb:.1f} MB in; provider CPUExecutionProvider")
    stages = ("receive", "queue", "decode", "inference", "encode", "send")
    for wall, out_mb, t in runs:
        inference = t["inference"]
        other = wall - inference
        print(
            f"wall {wall:6.2f} s | " + " | ".join(f"{s} {t[s]:6.2f}" for s in stages)
            + f" | non-inference {other:6.2f} s ({100 * other / wall:4.1f} %)"
            + f" | in {in_mb / t['receive']:6.0f} MB/s, out {out_mb / t['send']:6.0f} MB/s ({out_mb:.1f} MB)"
        )
    detail = {
        k: round(statistics.median(r[2][k] for r in runs), 3) for k in runs[0][2] if k.startswith("inf")
    }
    print("inference breakdown (median s):", detail)


if __name__ == "__main__":
    main()
