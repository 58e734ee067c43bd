"""Where the time of one translation goes: preprocess / inference / postprocess.

Builds a small 2.5D conv model (3 -> 8 channels 3x3, ReLU, 8 -> 1 3x3) with onnx.helper, a
repository in a temporary folder, and a synthetic CT volume (a water ellipse with bone, in
air), then times ``Engine.translate`` on ONNX Runtime's CPU provider.

    python bench/inference_overhead.py [--size 512] [--slices 200] [--threads 2] [--repeats 1]
                                       [--input-spacing 0.9765625]

``--input-spacing`` different from 1.0 adds in-plane resampling (the card's spacing is 1 mm).
Prints a Markdown table row per repeat.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from service.inference import Engine, EngineConfig
from service.inference.triton_config import render_config
from service.volume import Volume


def build_model(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array((rng.normal(0, 0.2, (8, 3, 3, 3))).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(8, np.float32), "b1")
    w2 = numpy_helper.from_array((rng.normal(0, 0.1, (1, 8, 3, 3))).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(np.zeros(1, np.float32), "b2")
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Conv", ["r", "w2", "b2"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Tanh", ["c"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        initializer=[w1, b1, w2, b2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True)
    onnx.save(model, str(path))


def write_repository(root: Path) -> None:
    card = {
        "schema": "radtranslate.card/v1",
        "name": "bench-cbct",
        "version": "1",
        "task": "cbct-to-ct",
        "site": "pelvis",
        "input": {
            "modality": "CT",
            "unit": "HU",
            "normalisation": {"kind": "clip_linear", "low": -1024, "high": 3071},
        },
        "output": {
            "modality": "CT",
            "unit": "HU",
            "normalisation": {"kind": "clip_linear", "low": -1024, "high": 3071},
            "background": -1000,
            "clip": [-1024, 3071],
        },
        "context_slices": 3,
        "in_plane_spacing_mm": [1.0, 1.0],
        "size_multiple": 16,
        "body_mask": {"kind": "hu_threshold", "threshold_hu": -500},
    }
    folder = root / "bench-cbct"
    build_model(folder / "1" / "model.onnx")
    (folder / "config.pbtxt").write_text(render_config("bench-cbct", 3))
    (folder / "card.json").write_text(json.dumps(card))


def phantom(size: int, slices: int, spacing: float) -> Volume:
    y, x = np.mgrid[0:size, 0:size]
    body = ((y - size / 2) / (0.35 * size)) ** 2 + ((x - size / 2) / (0.45 * size)) ** 2 <= 1
    bone = ((y - size / 2) / (0.05 * size)) ** 2 + ((x - size / 2) / (0.05 * size)) ** 2 <= 1
    plane = np.where(body, 20.0, -1000.0) + np.where(bone, 900.0, 0.0)
    rng = np.random.default_rng(1)
    array = np.repeat(plane[None].astype(np.float32), slices, axis=0)
    array += rng.normal(0, 10, array.shape).astype(np.float32)
    return Volume(array, spacing_mm=(spacing, spacing, 2.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--input-spacing", type=float, default=1.0)
    args = parser.parse_args()
    volume = phantom(args.size, args.slices, args.input_spacing)
    with tempfile.TemporaryDirectory() as tmp:
        write_repository(Path(tmp))
        engine = Engine(tmp, EngineConfig(intra_op_threads=args.threads, batch_size=args.batch))
        t0 = time.perf_counter()
        engine.load()
        load_s = time.perf_counter() - t0
        print(
            f"# {platform.processor() or platform.machine()}, onnxruntime {ort.__version__}, "
            f"provider {engine.provider('bench-cbct')}, threads {args.threads}, batch {args.batch}, "
            f"volume {args.slices}x{args.size}x{args.size} at {args.input_spacing} mm, load {load_s:.2f} s"
        )
        print("| run | preprocess s | inference s | postprocess s | total s | inference share |")
        print("|---|---|---|---|---|---|")
        for i in range(args.repeats):
            t = engine.translate(volume, model="bench-cbct").timings_s
            print(
                f"| {i + 1} | {t['preprocess']:.2f} | {t['inference']:.2f} | {t['postprocess']:.2f} | "
                f"{t['total']:.2f} | {t['inference'] / t['total']:.0%} |"
            )


if __name__ == "__main__":
    main()
