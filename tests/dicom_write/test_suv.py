"""SUVbw factor: the QIBA vendor-neutral rules, on real PET headers and on one-field edits of them."""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path

import pydicom
import pytest

from service.dicom.suv import suv_parameters, suvbw_factor
from service.errors import SUVError
from tests.dicom_write.conftest import make_pet_header


def _expected(weight_kg: float, dose_bq: float, half_life_s: float, seconds: float) -> float:
    return weight_kg * 1000.0 / (dose_bq * math.exp(-math.log(2.0) * seconds / half_life_s))


def test_real_pet_slices_follow_the_series_time_branch(pet_paths: list[Path]) -> None:
    for path in pet_paths:
        ds = pydicom.dcmread(path)
        pharma = ds.RadiopharmaceuticalInformationSequence[0]
        injection = dt.datetime.strptime(
            ds.SeriesDate + pharma.RadiopharmaceuticalStartTime, "%Y%m%d%H%M%S.%f"
        )
        series = dt.datetime.strptime(ds.SeriesDate + ds.SeriesTime, "%Y%m%d%H%M%S.%f")
        seconds = (series - injection).total_seconds()
        expected = _expected(
            float(ds.PatientWeight),
            float(pharma.RadionuclideTotalDose),
            float(pharma.RadionuclideHalfLife),
            seconds,
        )
        assert suvbw_factor([ds]) == pytest.approx(expected, rel=1e-12)
        # The scanner's own DecayFactor decays from the series time to the frame reference time,
        # which confirms the series time is the decay reference the images use.
        own = 2.0 ** (float(ds.FrameReferenceTime) / 1000.0 / float(pharma.RadionuclideHalfLife))
        assert own == pytest.approx(float(ds.DecayFactor), rel=5e-4)
        # A plausible whole-body SUVmax for an 18F-FLT slice.
        suv_max = float(ds.pixel_array.max()) * float(ds.RescaleSlope) * suvbw_factor([ds])
        assert 0.5 < suv_max < 50


def test_series_after_earliest_acquisition_uses_earliest_acquisition() -> None:
    late = make_pet_header(series_time="120000", acq_time="110500")
    early = make_pet_header(series_time="120000", acq_time="110000")
    params = suv_parameters([late, early])
    assert params.scan_datetime == dt.datetime(2024, 1, 1, 11, 0, 0)
    assert params.factor == pytest.approx(_expected(70, 3.7e8, 6586.2, 3600.0), rel=1e-12)


def test_series_before_acquisition_uses_series_time() -> None:
    params = suv_parameters([make_pet_header(series_time="103000", acq_time="110000")])
    assert params.decay_time_s == pytest.approx(1800.0)


def test_admin_decay_correction_does_not_decay_the_dose() -> None:
    params = suv_parameters([make_pet_header(decay="ADMIN")])
    assert params.factor == pytest.approx(70_000 / 3.7e8, rel=1e-12)
    assert params.decay_time_s == 0.0


def test_admin_needs_no_injection_time_but_start_does() -> None:
    admin = suv_parameters([make_pet_header(decay="ADMIN", start_time=None)])
    assert admin.injection_datetime is None
    assert admin.factor == pytest.approx(70_000 / 3.7e8, rel=1e-12)
    with pytest.raises(SUVError, match="injection time is unknown"):
        suv_parameters([make_pet_header(decay="START", start_time=None)])


def test_start_datetime_across_midnight_is_honoured() -> None:
    ds = make_pet_header(
        start_time="235000", start_datetime="20231231235000", series_time="005000", acq_time="005000"
    )
    assert suv_parameters([ds]).decay_time_s == pytest.approx(3600.0)


def test_start_time_without_date_after_scan_is_refused_not_guessed() -> None:
    ds = make_pet_header(start_time="235000", series_time="005000", acq_time="005000")
    with pytest.raises(SUVError, match=r"after the scan reference time.*RadiopharmaceuticalStartDateTime"):
        suvbw_factor([ds])


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"units": "CNTS"}, r"Units \(0054,1001\) must be BQML.*'CNTS'"),
        ({"corrected": ("ATTN",)}, r"CorrectedImage.*missing DECY"),
        ({"corrected": ("DECY",)}, r"CorrectedImage.*missing ATTN"),
        ({"decay": "NONE"}, r"DecayCorrection \(0054,1102\) must be START or ADMIN, got 'NONE'"),
        ({"weight": "0"}, r"PatientWeight \(0010,1030\) must be a positive number in kg, got '0'"),
        ({"weight": ""}, r"PatientWeight .* got ''"),
        ({"dose": "-5"}, r"RadionuclideTotalDose \(0018,1074\) .* got '-5'"),
        ({"half_life": "0"}, r"RadionuclideHalfLife \(0018,1075\) .* got '0'"),
        ({"start_time": None}, r"RadiopharmaceuticalStartTime \(0018,1072\) are both missing"),
        ({"start_time": "25xx00"}, r"RadiopharmaceuticalStartTime \(0018,1072\) must be a DICOM time"),
        ({"series_date": "2024-01"}, r"SeriesDate \(0008,0021\) must be a DICOM date"),
        ({"series_time": ""}, r"SeriesTime \(0008,0031\) must be a DICOM time"),
        ({"acq_date": ""}, r"AcquisitionDate \(0008,0022\) is missing"),
        ({"start_datetime": "20240101100000+0100"}, r"UTC offset \+0100"),
    ],
)
def test_each_invalid_tag_is_refused_with_its_name_value_and_fix(
    kwargs: dict[str, object], pattern: str
) -> None:
    with pytest.raises(SUVError, match=pattern) as info:
        suvbw_factor([make_pet_header(**kwargs)])  # type: ignore[arg-type]
    assert str(info.value).rstrip().endswith(".")
    assert ":" in str(info.value)


def test_missing_radiopharmaceutical_sequence_is_refused() -> None:
    ds = make_pet_header()
    del ds.RadiopharmaceuticalInformationSequence
    with pytest.raises(SUVError, match=r"RadiopharmaceuticalInformationSequence \(0054,0016\)"):
        suvbw_factor([ds])


def test_instances_of_different_series_are_refused() -> None:
    other = make_pet_header(weight="80")
    with pytest.raises(SUVError, match="PatientWeight differs"):
        suvbw_factor([make_pet_header(), other])
    with pytest.raises(SUVError, match="RadionuclideTotalDose differs"):
        suvbw_factor([make_pet_header(), make_pet_header(dose="1e8")])


def test_empty_input_is_refused() -> None:
    with pytest.raises(SUVError, match="datasets is empty"):
        suvbw_factor([])


def test_real_header_edit_to_admin_changes_only_the_decay(pet_paths: list[Path]) -> None:
    ds = pydicom.dcmread(pet_paths[0], stop_before_pixels=True)
    admin = copy.deepcopy(ds)
    admin.DecayCorrection = "ADMIN"
    start = suv_parameters([ds])
    ratio = suvbw_factor([ds]) / suvbw_factor([admin])
    assert ratio == pytest.approx(2.0 ** (start.decay_time_s / start.half_life_s), rel=1e-12)
    assert ratio > 1.0
