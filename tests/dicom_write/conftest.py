"""Shared fixtures: paths of the real data, and a synthetic PET header for refusal tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

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
