"""PET body-weight SUV (SUVbw) from DICOM headers, following the QIBA vendor-neutral procedure.

``SUVbw [g/ml] = activity concentration [Bq/ml] * factor`` with

``factor = weight [g] / decayed dose [Bq]``, where the injected dose
(RadionuclideTotalDose) is decayed from the injection time to the scan reference time
when DecayCorrection is START, and not decayed when it is ADMIN.

Rules (QIBA "SUV calculation" flowchart, vendor-neutral branch):

- Units (0054,1001) must be ``BQML``; CorrectedImage (0028,0051) must contain ``ATTN``
  and ``DECY``; DecayCorrection (0054,1102) must be ``START`` or ``ADMIN``.
- Injection time: RadiopharmaceuticalStartDateTime (0018,1078) if present, else
  RadiopharmaceuticalStartTime (0018,1072) on SeriesDate (0008,0021); required for START
  only (ADMIN applies no decay).
- Scan reference time: SeriesDate/SeriesTime when not after the earliest
  AcquisitionDate/AcquisitionTime of the series, else that earliest acquisition time.
- A midnight crossing is honoured only when the dates say so (e.g. a
  RadiopharmaceuticalStartDateTime on the day before the series); a date is never guessed.
  An injection after the scan reference time is refused.

Vendor-private branches are not implemented: Units CNTS (Philips private scale factors) is
refused; a series whose SeriesTime is after its acquisitions (e.g. changed by post-processing)
uses the earliest acquisition time, as the vendor-neutral rule says, not GE's private
post-injection time.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from service.dicom.dicomtime import as_text as _text
from service.dicom.dicomtime import parse_da, parse_dt, parse_tm
from service.errors import NumericError, SUVError

__all__ = [
    "SUVParameters",
    "injection_datetime",
    "parse_da",
    "parse_dt",
    "parse_tm",
    "suv_parameters",
    "suvbw_factor",
]


@dataclass(frozen=True)
class SUVParameters:
    """Everything the SUVbw factor was computed from (all times naive, scanner local time).

    Attributes
    ----------
    weight_kg
        PatientWeight (0010,1030) in kilograms.
    injected_dose_bq
        RadionuclideTotalDose (0018,1074) in becquerels, at injection time.
    half_life_s
        RadionuclideHalfLife (0018,1075) in seconds.
    decay_correction
        ``"START"`` or ``"ADMIN"``.
    injection_datetime
        Radiopharmaceutical administration time (None for ADMIN when the header has none:
        it is not needed then).
    scan_datetime
        QIBA scan reference time (series time, or the earliest acquisition time).
    decay_time_s
        Seconds the dose is decayed over (0 for ADMIN).
    factor
        SUVbw per Bq/ml, i.e. ``1000 * weight_kg / decayed dose`` in g/Bq.
    """

    weight_kg: float
    injected_dose_bq: float
    half_life_s: float
    decay_correction: str
    injection_datetime: dt.datetime | None
    scan_datetime: dt.datetime
    decay_time_s: float
    factor: float


def _positive(ds: Dataset, keyword: str, tag: str, unit: str, fix: str) -> float:
    raw = ds.get(keyword)
    try:
        value = float(raw) if raw is not None and _text(raw) != "" else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SUVError(f"{keyword} {tag} must be a positive number in {unit}, got {_text(raw)!r}: {fix}")
    return value


def _acquisition_datetime(ds: Dataset) -> dt.datetime:
    if _text(ds.get("AcquisitionDate")) and _text(ds.get("AcquisitionTime")):
        date = parse_da(ds.AcquisitionDate, tag="AcquisitionDate (0008,0022)")
        time = parse_tm(ds.AcquisitionTime, tag="AcquisitionTime (0008,0032)")
        return dt.datetime.combine(date, time)
    if _text(ds.get("AcquisitionDateTime")):
        return parse_dt(
            ds.AcquisitionDateTime,
            tag="AcquisitionDateTime (0008,002A)",
            utc_offset=ds.get("TimezoneOffsetFromUTC"),
        )
    missing = "AcquisitionDate (0008,0022)" if not _text(ds.get("AcquisitionDate")) else "AcquisitionTime"
    raise SUVError(
        f"{missing} is missing or empty in a PET instance (value {_text(ds.get('AcquisitionDate'))!r}/"
        f"{_text(ds.get('AcquisitionTime'))!r}), so the QIBA scan reference time cannot be checked: "
        "use the series as exported by the scanner, with acquisition date and time."
    )


_SERIES_LEVEL = ("Units", "CorrectedImage", "DecayCorrection", "PatientWeight", "SeriesDate", "SeriesTime")
_PHARMA_LEVEL = (
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadiopharmaceuticalStartTime",
    "RadiopharmaceuticalStartDateTime",
)


def _check_one_series(datasets: Sequence[Dataset]) -> None:
    first = datasets[0]
    first_info = _pharma(first)
    for index, ds in enumerate(datasets[1:], start=1):
        for keyword in _SERIES_LEVEL:
            if _text(ds.get(keyword)) != _text(first.get(keyword)):
                raise SUVError(
                    f"{keyword} differs between PET instances (instance 0: {_text(first.get(keyword))!r}, "
                    f"instance {index}: {_text(ds.get(keyword))!r}), so one SUV factor cannot apply: "
                    "pass the instances of a single PET series."
                )
        info = _pharma(ds)
        for keyword in _PHARMA_LEVEL:
            if _text(info.get(keyword)) != _text(first_info.get(keyword)):
                raise SUVError(
                    f"{keyword} differs between PET instances: pass the instances of a single PET series."
                )


def _pharma(ds: Dataset) -> Dataset:
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        raise SUVError(
            "RadiopharmaceuticalInformationSequence (0054,0016) is missing or empty "
            f"(value {seq!r}), so the injected dose is unknown: "
            "use the PET series as exported by the scanner."
        )
    item: Dataset = seq[0]
    return item


def injection_datetime(ds: Dataset, pharma: Dataset | None = None) -> dt.datetime:
    """Radiopharmaceutical administration time of a PET header (QIBA rule; see the module docstring)."""
    if pharma is None:
        pharma = _pharma(ds)
    if _text(pharma.get("RadiopharmaceuticalStartDateTime")):
        return parse_dt(
            pharma.RadiopharmaceuticalStartDateTime,
            tag="RadiopharmaceuticalStartDateTime (0018,1078)",
            utc_offset=ds.get("TimezoneOffsetFromUTC"),
        )
    if not _text(pharma.get("RadiopharmaceuticalStartTime")):
        raise SUVError(
            "RadiopharmaceuticalStartDateTime (0018,1078) and RadiopharmaceuticalStartTime (0018,1072) are "
            "both missing or empty, so the injection time is unknown: "
            "enter the injection time at the scanner and re-export the PET series."
        )
    time = parse_tm(pharma.RadiopharmaceuticalStartTime, tag="RadiopharmaceuticalStartTime (0018,1072)")
    date = parse_da(ds.get("SeriesDate"), tag="SeriesDate (0008,0021)")
    return dt.datetime.combine(date, time)


def suv_parameters(datasets: Sequence[Dataset]) -> SUVParameters:
    """Compute the SUVbw factor and the values it comes from, for one PET series.

    Parameters
    ----------
    datasets
        The instances of one PET series (headers suffice; pixel data is not read).
        All are used to find the earliest acquisition time.

    Returns
    -------
    SUVParameters
        ``factor`` is SUVbw (g/ml) per Bq/ml.

    Raises
    ------
    SUVError
        When a required tag is missing or invalid, or the instances disagree.
    """
    if len(datasets) == 0:
        raise SUVError("datasets is empty: pass the instances of one PET series.")
    first = datasets[0]
    units = _text(first.get("Units")).upper()
    if units != "BQML":
        raise SUVError(
            f"Units (0054,1001) must be BQML for SUVbw, got {units!r}: reconstruct or export the PET "
            "series in Bq/ml (vendor-specific CNTS/GML scalings are not supported)."
        )
    corrected = {_text(v).upper() for v in (first.get("CorrectedImage") or [])}
    if isinstance(first.get("CorrectedImage"), str):
        corrected = {_text(first.CorrectedImage).upper()}
    missing = sorted({"ATTN", "DECY"} - corrected)
    if missing:
        raise SUVError(
            f"CorrectedImage (0028,0051) must contain ATTN and DECY, got {sorted(corrected)!r} "
            f"(missing {', '.join(missing)}): use an attenuation- and decay-corrected PET reconstruction."
        )
    decay = _text(first.get("DecayCorrection")).upper()
    if decay not in ("START", "ADMIN"):
        raise SUVError(
            f"DecayCorrection (0054,1102) must be START or ADMIN, got {decay!r}: use a PET series decay "
            "corrected to acquisition start or to administration."
        )
    _check_one_series(datasets)
    pharma = _pharma(first)
    weight_kg = _positive(
        first, "PatientWeight", "(0010,1030)", "kg", "enter the patient weight at the scanner and re-export."
    )
    dose_bq = _positive(
        pharma,
        "RadionuclideTotalDose",
        "(0018,1074)",
        "Bq",
        "enter the injected activity at the scanner and re-export.",
    )
    half_life_s = _positive(
        pharma,
        "RadionuclideHalfLife",
        "(0018,1075)",
        "s",
        "enter the radionuclide half-life at the scanner and re-export.",
    )
    has_start = bool(
        _text(pharma.get("RadiopharmaceuticalStartDateTime"))
        or _text(pharma.get("RadiopharmaceuticalStartTime"))
    )
    injection = injection_datetime(first, pharma) if decay == "START" or has_start else None
    series_dt = dt.datetime.combine(
        parse_da(first.get("SeriesDate"), tag="SeriesDate (0008,0021)"),
        parse_tm(first.get("SeriesTime"), tag="SeriesTime (0008,0031)"),
    )
    earliest = min(_acquisition_datetime(ds) for ds in datasets)
    scan = series_dt if series_dt <= earliest else earliest
    if decay == "ADMIN":
        decay_time_s = 0.0
    else:
        assert injection is not None  # required for START above
        decay_time_s = (scan - injection).total_seconds()
        if decay_time_s < 0:
            raise SUVError(
                f"the injection time ({injection.isoformat()}) is after the scan reference time "
                f"({scan.isoformat()}) by {-decay_time_s:.0f} s; if the scan crossed midnight, the dates "
                "do not say so: store RadiopharmaceuticalStartDateTime (0018,1078) with the injection date."
            )
    try:
        decayed = dose_bq * 2.0 ** (-decay_time_s / half_life_s)
        factor = weight_kg * 1000.0 / decayed
    except (OverflowError, ZeroDivisionError):
        factor = math.inf
    if not (math.isfinite(factor) and factor > 0):
        raise NumericError(
            f"SUVbw factor is not finite (decay over {decay_time_s:.0f} s with half-life {half_life_s} s): "
            "check RadionuclideHalfLife and the injection and series times."
        )
    return SUVParameters(
        weight_kg=weight_kg,
        injected_dose_bq=dose_bq,
        half_life_s=half_life_s,
        decay_correction=decay,
        injection_datetime=injection,
        scan_datetime=scan,
        decay_time_s=decay_time_s,
        factor=factor,
    )


def suvbw_factor(datasets: Sequence[Dataset]) -> float:
    """SUVbw [g/ml] per activity concentration [Bq/ml] for one PET series (see :func:`suv_parameters`)."""
    return suv_parameters(datasets).factor
