"""Build small multi-slice series in a temporary folder from real DICOM files."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "shared" / "data" / "real"


def data_file(name: str) -> str:
    """Path of a file bundled with pydicom or pydicom-data (never downloads)."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} is not installed"
    return str(path)


def unit(vector: npt.ArrayLike) -> npt.NDArray[np.float64]:
    v = np.asarray(vector, dtype=np.float64)
    return v / np.linalg.norm(v)


def series_datasets(
    n: int = 5,
    *,
    spacing_mm: float = 2.0,
    row: npt.ArrayLike = (1.0, 0.0, 0.0),
    col: npt.ArrayLike = (0.0, 1.0, 0.0),
    origin: Sequence[float] = (-80.0, -90.0, 10.0),
    source: str = "CT_small.dcm",  # a bundled file name, or an absolute path
    positions: Sequence[float] | None = None,
    mutate: Callable[[int, Dataset], None] | None = None,
) -> list[Dataset]:
    """``n`` slices of one series made from a real file: slice i at origin + i*spacing*normal.

    Each slice's stored values are the real image plus ``3*i`` so that order is checkable;
    SOP Instance UIDs are new, the Series Instance UID is shared. ``mutate(i, ds)`` edits a slice.
    """
    base = pydicom.dcmread(source if Path(source).is_absolute() else data_file(source))
    r, c = unit(row), unit(col)
    normal = np.cross(r, c)
    series_uid = generate_uid()
    out: list[Dataset] = []
    steps = positions if positions is not None else [i * spacing_mm for i in range(n)]
    for i, step in enumerate(steps):
        ds = copy.deepcopy(base)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*r, *c)]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in np.asarray(origin) + step * normal]
        pixels = ds.pixel_array.astype(np.int32) + 3 * i
        ds.PixelData = pixels.astype(ds.pixel_array.dtype).tobytes()
        if mutate is not None:
            mutate(i, ds)
        out.append(ds)
    return out


def write(datasets: Sequence[Dataset], folder: Path, *, order: Sequence[int] | None = None) -> list[Path]:
    """Write datasets as files ``slice_XX.dcm`` (in ``order`` if given); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, i in enumerate(order if order is not None else range(len(datasets))):
        path = folder / f"slice_{k:02d}_{i}.dcm"
        datasets[i].save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def stored(ds: Dataset) -> np.ndarray:
    """Stored pixel values of a dataset as float64 (pydicom's own decode)."""
    return np.asarray(ds.pixel_array, dtype=np.float64)
