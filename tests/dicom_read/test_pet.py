"""PET: per-slice rescale, Units check, SUVbw through service.dicom.suv, Bq/ml on request."""

from __future__ import annotations

import numpy as np
import pytest

from service.dicom import read_series_from_datasets
from service.dicom.suv import suvbw_factor
from service.errors import SUVError
from service.volume import Modality, Unit

from ._series import REAL, series_datasets, stored

PET = REAL / "pet" / "acrin-flt-breast-a.dcm"


@pytest.fixture
def pet_series():
    if not PET.is_file():
        pytest.skip(f"real PET file {PET} is absent (see /work/shared/data/real/README.md)")

    def vary(i, ds):  # PET slices carry their own slope
        ds.RescaleSlope = f"{float(ds.RescaleSlope) * (1 + 0.25 * i):.6f}"

    return series_datasets(3, spacing_mm=3.27, source=str(PET), mutate=vary)


def _bqml(ds):
    return stored(ds) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_pet_in_bqml_uses_each_slice_rescale(pet_series):
    vol = read_series_from_datasets(pet_series[::-1], pet_unit="Bq/ml")
    assert vol.modality is Modality.PT and vol.unit is Unit.BQML
    assert vol.source is not None
    for k, ds in enumerate(pet_series):
        np.testing.assert_allclose(vol.array[k], _bqml(ds), rtol=1e-6)
    assert vol.source.suvbw_per_bqml == pytest.approx(suvbw_factor(pet_series))


def test_pet_in_suvbw_by_default(pet_series):
    vol = read_series_from_datasets(pet_series)
    factor = suvbw_factor(pet_series)
    assert vol.source is not None
    assert vol.unit is Unit.SUVBW and vol.source.suvbw_per_bqml == pytest.approx(factor)
    for k, ds in enumerate(pet_series):
        np.testing.assert_allclose(vol.array[k], _bqml(ds) * factor, rtol=1e-5)
    assert 0.0 < float(vol.array.max()) < 100.0  # an SUV, not Bq/ml


def test_pet_units_other_than_bqml_are_refused(pet_series):
    for ds in pet_series:
        ds.Units = "CNTS"
    with pytest.raises(SUVError, match=r"PET Units \(0054,1001\) is \['CNTS'\], expected \['BQML'\]"):
        read_series_from_datasets(pet_series, pet_unit="Bq/ml")


def test_pet_without_weight_refuses_suv_but_reads_bqml(pet_series):
    for ds in pet_series:
        del ds.PatientWeight
    with pytest.raises(SUVError):
        read_series_from_datasets(pet_series)
    vol = read_series_from_datasets(pet_series, pet_unit=Unit.BQML)
    assert vol.source is not None
    assert vol.unit is Unit.BQML and vol.source.suvbw_per_bqml is None
