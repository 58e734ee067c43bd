"""Shared fixtures: paths of the real data, a synthetic PET header for refusal tests, a small CT series."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from service.dicom import read_series
from service.volume import Volume

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"


@pytest.fixture
def real_dir() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real data folder {REAL} is absent (shared/data/real next to the repository)")
    return REAL


@pytest.fixture
def pet_paths(real_dir: Path) -> list[Path]:
    paths = sorted((real_dir / "pet").glob("*.dcm"))
    if len(paths) != 2:
        pytest.skip(f"expected the two real PET slices in {real_dir / 'pet'}, found {len(paths)}")
    return paths


def make_pet_header(
    *,
    weight: str = "70",
    dose: str = "370000000",
    half_life: str = "6586.2",
    start_time: str | None = "100000",
    start_datetime: str | None = None,
    series_date: str = "20240101",
    series_time: str = "110000",
    acq_date: str = "20240101",
    acq_time: str = "110000",
    units: str = "BQML",
    decay: str = "START",
    corrected: tuple[str, ...] = ("ATTN", "DECY"),
) -> Dataset:
    """A PET header built field by field (no pixel data), each field overridable."""
    ds = Dataset()
    ds.Modality = "PT"
    ds.Units = units
    ds.DecayCorrection = decay
    ds.CorrectedImage = list(corrected)
    ds.PatientWeight = weight
    ds.SeriesDate = series_date
    ds.SeriesTime = series_time
    ds.AcquisitionDate = acq_date
    ds.AcquisitionTime = acq_time
    item = Dataset()
    item.RadionuclideTotalDose = dose
    item.RadionuclideHalfLife = half_life
    if start_time is not None:
        item.RadiopharmaceuticalStartTime = start_time
    if start_datetime is not None:
        item.RadiopharmaceuticalStartDateTime = start_datetime
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    return ds


def build_pet_series(path_a: Path, out_dir: Path, n_slices: int = 5) -> list[Path]:
    """A small multi-slice PET series made from one real PET slice.

    Every copy gets its own SOPInstanceUID, InstanceNumber, ImageIndex and an
    ImagePositionPatient ``SliceThickness`` further along z; the pixels are rolled by a few
    columns per slice and the RescaleSlope scaled per slice, so slices differ.
    """
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    src = pydicom.dcmread(path_a)
    pixels = src.pixel_array
    out_dir.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(prefix=None)
    thickness = float(src.SliceThickness)
    x0, y0, z0 = (float(v) for v in src.ImagePositionPatient)
    paths = []
    for k in range(n_slices):
        ds = pydicom.dcmread(path_a)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(prefix=None)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImageIndex = k + 1
        ds.NumberOfSlices = n_slices
        ds.ImagePositionPatient = [x0, y0, z0 + k * thickness]
        ds.SliceLocation = z0 + k * thickness
        ds.RescaleSlope = f"{float(src.RescaleSlope) * (1 + 0.1 * k):.6f}"
        ds.PixelData = np.ascontiguousarray(np.roll(pixels, 3 * k, axis=1)).astype(pixels.dtype).tobytes()
        path = out_dir / f"pet_{k:03d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def build_ct_series(path: Path, out_dir: Path, n_slices: int = 4) -> list[Path]:
    """A small multi-slice CT series made from one CT slice (pydicom's ``CT_small.dcm``).

    Copies sit ``SliceThickness`` apart along the slice normal, with their own UIDs and
    rolled pixels so that slices differ.
    """
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    src = pydicom.dcmread(path)
    pixels = src.pixel_array
    iop = np.array([float(v) for v in src.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    ipp0 = np.array([float(v) for v in src.ImagePositionPatient])
    step = float(src.SliceThickness)
    out_dir.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(prefix=None)
    paths = []
    for k in range(n_slices):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(prefix=None)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp0 + k * step * normal]
        ds.PixelData = np.ascontiguousarray(np.roll(pixels, 5 * k, axis=0)).astype(pixels.dtype).tobytes()
        out = out_dir / f"ct_{k:03d}.dcm"
        ds.save_as(out)
        paths.append(out)
    return paths


@pytest.fixture
def small_ct(tmp_path: Path) -> Volume:
    """A 4-slice derived CT series read back (from pydicom's CT_small.dcm)."""
    src = get_testdata_file("CT_small.dcm", download=False)
    assert src is not None
    build_ct_series(Path(src), tmp_path / "src")
    return read_series(tmp_path / "src")
