"""End-to-end gRPC benchmark: a 512x512xN series through a real server on loopback.

Splits one call into transfer in (receive), decode, inference (CPU), encode and transfer out
(send), from the server's summary, and reports the non-inference share and loopback
throughput (MB/s, 1 MB = 1e6 bytes).

Default: a synthetic CT series through a tiny 3x3 conv model built here. With
``--repository DIR --model NAME`` the named model of a real repository is served instead; when
its card's input modality is MR, the input is a synthetic MR Image Storage series (uint16, a
head-like ellipsoid phantom) at ``--spacing`` mm in plane (default 0.5 mm: a 256 mm head field
of view on 512 px, resampled to the model's grid by the engine).

    nice -n 10 python bench/e2e_rpc.py [--slices 200] [--repeats 2] [--workers 1]
    nice -n 5 python bench/e2e_rpc.py --repository /path/repo --model mr_to_ct_brain [--spacing 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
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
        "schema": "radtranslate.card/v1",
        "name": "ct-conv",
        "version": "1",
        "task": "cbct-to-ct",
        "site": "any",
        "input": {"modality": "CT", "unit": "HU", "normalisation": norm},
        "output": {
            "modality": "CT",
            "unit": "HU",
            "normalisation": norm,
            "background": -1000,
            "clip": [-1024, 3071],
        },
        "context_slices": 1,
        "in_plane_spacing_mm": [SPACING_MM, SPACING_MM],
        "size_multiple": 1,
        "body_mask": {"kind": "none"},
    }
    (folder / "card.json").write_text(json.dumps(card))


def build_series(folder: Path, slices: int) -> list[bytes]:
    """A 512x512 CT series (int16, a water cylinder with noise), as Part 10 bytes."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    template = dcmread(str(get_testdata_file("CT_small.dcm", download=False)))
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


def card_input_modality(repository: Path, model: str) -> str:
    """The input modality named by ``model``'s card (``card.json`` beside ``config.pbtxt``)."""
    folder = repository / model
    cards = sorted(folder.glob("card.json")) + sorted(folder.glob("*/card.json"))
    if not cards:
        raise SystemExit(
            f"no card.json under {folder}: pass --repository pointing at a model repository and "
            "--model naming one of its model folders."
        )
    return str(json.loads(cards[0].read_text())["input"]["modality"]).upper()


def build_mr_series(folder: Path, slices: int, spacing_mm: float, slice_mm: float = 1.0) -> list[bytes]:
    """A 512x512 MR series (uint16): a head-like ellipsoid (scalp, dark skull, brain, ventricles).

    The phantom keeps its physical size (about 150 x 180 x 190 mm) whatever the pixel spacing,
    so at 2 mm it sits small in a 1024 mm field of view; every slice is written, also those
    outside the head (background with Rician-like noise).
    """
    from models.simulation.dicom_export import SimulatedStudy, write_series
    from service.volume import Modality, Unit, Volume

    rng = np.random.default_rng(0)
    n = 512
    centre = (n - 1) / 2
    y = (np.arange(n) - centre) * spacing_mm
    x = (np.arange(n) - centre) * spacing_mm
    z = (np.arange(slices) - (slices - 1) / 2) * slice_mm
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij", sparse=True)
    r = np.sqrt((xx / 75.0) ** 2 + (yy / 90.0) ** 2 + (zz / 95.0) ** 2)
    ventricles = np.sqrt((xx / 12.0) ** 2 + (yy / 30.0) ** 2 + (zz / 20.0) ** 2) < 1.0
    mr = np.full((slices, n, n), 0.0, dtype=np.float32)
    mr[r < 1.0] = 1200.0  # scalp / fat
    mr[r < 0.95] = 150.0  # skull
    mr[r < 0.90] = 800.0  # brain
    mr[ventricles & (r < 0.90)] = 300.0  # CSF
    mr += np.abs(rng.normal(0.0, 20.0, mr.shape).astype(np.float32))
    origin = (-centre * spacing_mm, -centre * spacing_mm, float(z[0]))
    volume = Volume(mr, (spacing_mm, spacing_mm, slice_mm), origin, modality=Modality.MR, unit=Unit.MR_AU)
    write_series(volume, folder, SimulatedStudy.new("BENCH"), series_number=1, description="bench MR phantom")
    return [path.read_bytes() for path in sorted(folder.glob("*.dcm"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repository", type=Path, help="a model repository (default: a tiny conv model)")
    parser.add_argument("--model", help="the model to serve from --repository")
    parser.add_argument(
        "--spacing",
        type=float,
        default=0.5,
        help="in-plane spacing in mm of the synthetic MR series (default 0.5)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="ONNX Runtime intra-op threads (default 0: ONNX Runtime's default)",
    )
    args = parser.parse_args()
    if (args.repository is None) != (args.model is None):
        parser.error("--repository and --model go together: pass both, or neither for the tiny conv model.")

    from service.inference.engine import Engine, EngineConfig
    from service.rpc.client import TranslationClient
    from service.rpc.config import ServerConfig
    from service.rpc.server import TranslationServer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.repository is None:
            repository, model, modality = root / "models", "ct-conv", "CT"
            build_repository(repository)
        else:
            repository, model = args.repository, args.model
            modality = card_input_modality(repository, model)
        if modality == "MR":
            blobs = build_mr_series(root / "series", args.slices, args.spacing)
            grid = f"MR at {args.spacing:g} mm in plane"
        else:
            blobs = build_series(root / "series", args.slices)
            grid = f"CT at {SPACING_MM:g} mm in plane"
        in_mb = sum(map(len, blobs)) / 1e6
        config = ServerConfig(port=0, workers=args.workers, queue=2, grace_s=1.0)
        engine = Engine(
            repository, EngineConfig(providers=("CPUExecutionProvider",), intra_op_threads=args.threads)
        )
        server = TranslationServer(config, engine, tokens=())
        port = server.start()
        server.load_models()
        runs = []
        try:
            with TranslationClient(f"127.0.0.1:{port}") as client:
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    result = client.translate_dicom(blobs, model=model, timeout_s=1800)
                    wall = time.perf_counter() - start
                    out_mb = sum(map(len, result.instances or [])) / 1e6
                    runs.append((wall, out_mb, result.timings_s))
        finally:
            server.stop(1.0)
    print(
        f"model {model}; series: {args.slices} x 512 x 512 {grid}, {in_mb:.1f} MB in; "
        f"provider CPUExecutionProvider, intra-op threads {args.threads or 'default'}; "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    stages = ("receive", "queue", "decode", "inference", "encode", "send")
    for wall, out_mb, t in runs:
        inference = t["inference"]
        other = wall - inference
        print(
            f"wall {wall:6.2f} s | "
            + " | ".join(f"{s} {t[s]:6.2f}" for s in stages)
            + f" | non-inference {other:6.2f} s ({100 * other / wall:4.1f} %)"
            + f" | in {in_mb / t['receive']:6.0f} MB/s, out {out_mb / t['send']:6.0f} MB/s ({out_mb:.1f} MB)"
        )
    detail = {
        k: round(statistics.median(r[2][k] for r in runs), 3) for k in runs[0][2] if k.startswith("inf")
    }
    print("inference breakdown (median s):", detail)


if __name__ == "__main__":
    main()
