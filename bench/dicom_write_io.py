"""Time of the output side: derived DICOM encoding/writing and NIfTI/MHA/NRRD writing.

Uses a synthetic CT of ``--size`` x ``--size`` x ``--slices`` (random HU in [-1000, 1500]) with an
anonymous new study (``allow_new_study=True``), so it needs no data.

    python bench/dicom_write_io.py [--size 512] [--slices 200] [--repeats 1]

Prints a Markdown table row per step and repeat (seconds, MB written).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from service.dicom.writer import encode_derived_series, write_derived_series
from service.imageio import write_image
from service.volume import Volume


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    volume = Volume(
        array=rng.uniform(-1000, 1500, size=(args.slices, args.size, args.size)).astype(np.float32),
        spacing_mm=(0.9765625, 0.9765625, 2.0),
        origin_mm=(-250.0, -250.0, -200.0),
    )
    model: dict[str, Any] = {"model_name": "bench", "model_version": "1"}
    print(f"# {platform.processor() or platform.machine()}, volume {args.size}x{args.size}x{args.slices}")
    print("| step | seconds | MB |\n|---|---|---|")
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            encode_derived_series(volume, allow_new_study=True, **model)
            print(f"| encode_derived_series (memory) | {time.perf_counter() - start:.2f} | - |")
            start = time.perf_counter()
            written = write_derived_series(volume, Path(tmp) / "dcm", allow_new_study=True, **model)
            elapsed = time.perf_counter() - start
            print(f"| write_derived_series | {elapsed:.2f} | {_size_mb(written.directory):.1f} |")
            for ext in (".nii", ".nii.gz", ".mha", ".nrrd"):
                start = time.perf_counter()
                path = write_image(volume, Path(tmp) / f"v{ext}")
                print(f"| write_image {ext} | {time.perf_counter() - start:.2f} | {_size_mb(path):.1f} |")


if __name__ == "__main__":
    main()
