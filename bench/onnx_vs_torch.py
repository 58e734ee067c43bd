"""ONNX Runtime vs PyTorch eager: inference time per slice of each model family's generator, on this CPU.

    python bench/onnx_vs_torch.py [--size 128] [--batch 8] [--repeats 5] [--threads 2]

Both run the same network (the task presets' generators, exported by this project's exporter) on the
same random 2.5D batches; weights do not change the time. Prints ms per slice and the ratio.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from timing import median_seconds  # bench/timing.py (scripts run from bench/)

from export.flip_average import with_flips
from export.onnx_export import export_onnx
from models.networks import GeneratorSpec, size_multiple
from models.training.config import PRESETS
from models.training.families import build_export_module


def _run_torch(module: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        module(x)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repository",
        type=Path,
        default=None,
        help="time the shipped models' architectures (from their cards)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    print(f"{'model':<16} {'family':<9} {'torch ms/slice':>15} {'onnxruntime ms/slice':>21} {'ratio':>6}")
    cases = [(task.value, preset.family, preset.generator, "none") for task, preset in PRESETS.items()]
    if args.repository is not None:
        cases = []
        for card_path in sorted(args.repository.glob("*/card.json")):
            card = json.loads(card_path.read_text())
            arch = card["architecture"]
            flips = arch.get("flips", {}).get("mode", "none")  # cards before flip averaging: none
            cases.append((card["name"], arch["family"], GeneratorSpec.from_dict(arch["generator"]), flips))
    for name, family, spec, flips in cases:
        module = with_flips(build_export_module(family, spec).eval(), flips)
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(
                module, Path(tmp) / "m.onnx", in_channels=spec.in_channels, multiple=size_multiple(spec)
            )
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            x = np.random.default_rng(0).uniform(-1, 1, (args.batch, spec.in_channels, args.size, args.size))
            x = x.astype(np.float32)
            xt = torch.from_numpy(x)

            t_torch = (
                median_seconds(functools.partial(_run_torch, module, xt), args.repeats) / args.batch * 1000
            )
            t_ort = (
                median_seconds(functools.partial(session.run, None, {"input": x}), args.repeats)
                / args.batch
                * 1000
            )
        print(f"{name:<16} {family:<9} {t_torch:>15.2f} {t_ort:>21.2f} {t_torch / t_ort:>6.2f}")


if __name__ == "__main__":
    main()
