"""Time read_series against SimpleITK's GDCM series reader on the same folders.

    python bench/read_series_speed.py [--repeats 5]

Folders: the real 168-slice CT in ../shared/data/real/ct-cort-liver (when present) and the
5-slice CT of pydicom's dicomdirtests. Each reader runs ``--repeats`` times after one warm-up;
the table shows the median wall time and the ratio read_series / SimpleITK (below 1 = faster).
read_series also runs every geometry check, the per-slice rescale and builds SourceSeries.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pydicom
import SimpleITK as sitk
from timing import median_seconds  # bench/timing.py (scripts run from bench/)

from service.dicom import read_series

REPO = Path(__file__).resolve().parents[1]


def _sitk(folder: Path) -> None:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    reader.Execute()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folders = []
    real = REPO.parent / "shared" / "data" / "real" / "ct-cort-liver"
    if real.is_dir():
        folders.append(("real CT 168x217x217", real))
    dicomdir = Path(str(pydicom.data.get_testdata_file("CT_small.dcm", download=False))).parent
    folders.append(("dicomdirtests CT5N 5x16x16", dicomdir / "dicomdirtests" / "98892001" / "CT5N"))
    print(f"machine: {os.cpu_count()} cores; median of {args.repeats} runs after a warm-up")
    print(f"{'series':<28} {'read_series s':>14} {'SimpleITK s':>12} {'ratio':>7}")
    for name, folder in folders:
        ours = median_seconds(lambda f=folder: read_series(f), args.repeats)  # type: ignore[misc]
        theirs = median_seconds(lambda f=folder: _sitk(f), args.repeats)  # type: ignore[misc]
        print(f"{name:<28} {ours:>14.3f} {theirs:>12.3f} {ours / theirs:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
