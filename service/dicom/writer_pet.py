"""PET Image Storage of a derived PET series, in Bq/ml, so any viewer recomputes our SUVbw.

Values are written as activity concentration (Units BQML): an SUVbw volume is divided by the
source's ``suvbw_per_bqml``; a Bq/ml volume is written as is. Each slice is stored as signed
int16 with its own RescaleSlope ``max|value| / 32767`` and RescaleIntercept 0 (as the PET
Image module requires), so the quantisation error is at most 1/65534 of the slice maximum.

So that the QIBA procedure applied to *our* tags gives the source's factor, SeriesDate/Time
and AcquisitionDate/Time of every instance are set to the scan reference time the source
factor implies (for DecayCorrection START: back-computed from the factor, dose, half-life,
weight and injection time; for ADMIN: the source's series time), and the patient weight,
radiopharmaceutical information, DecayCorrection and CorrectedImage are copied.

The pixel values are already decay corrected to that reference time, so every instance gets
FrameReferenceTime 0 and DecayFactor 1: undoing the decay correction with them gives the
activity at the reference time, which is what the values are. A DYNAMIC or GATED source
becomes a STATIC series (one 3D volume is one frame).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.uid import PositronEmissionTomographyImageStorage

from service.dicom.modules import da_tm, ds_number
from service.dicom.suv import injection_datetime, parse_da, parse_tm
from service.errors import NumericError, SUVError, VolumeError
from service.volume import SourceSeries, Unit, Volume

SOP_CLASS_UID = PositronEmissionTomographyImageStorage
#: Relative tolerance on the agreement of the source factor with the source header.
FACTOR_RTOL = 1e-6

_COPIED = (
    "CorrectedImage",
    "DecayCorrection",
    "RadiopharmaceuticalInformationSequence",
    "PatientWeight",
    "CountsSource",
    "RandomsCorrectionMethod",
    "AttenuationCorrectionMethod",
    "ScatterCorrectionMethod",
    "ReconstructionMethod",
    "PatientOrientationCodeSequence",
    "PatientGantryRelationshipCodeSequence",
    "ActualFrameDuration",
    "CollimatorType",
)


@dataclass(frozen=True)
class PetEncoding:
    """Stored slices, their slopes, and the timing written into every instance."""

    stored: npt.NDArray[np.int16]  # (z, y, x)
    slopes: tuple[float, ...]  # Bq/ml per stored unit, per slice k
    reference_time: dt.datetime


def _header(source: SourceSeries | None) -> Dataset:
    if source is None or source.header is None:
        raise VolumeError(
            "a PET volume needs its source PET series header (dose, weight, times) to be written as "
            "DICOM, got a volume without source: read the PET input from DICOM, or write this volume "
            "as NIfTI/MHA/NRRD instead."
        )
    header = source.header
    if "RadiopharmaceuticalInformationSequence" not in header or "PatientWeight" not in header:
        raise SUVError(
            f"the source series header (Modality {header.get('Modality')!r}) has no "
            "RadiopharmaceuticalInformationSequence or PatientWeight, so SUVbw cannot be preserved: "
            "a PET output must derive from a PET source series."
        )
    return header


def _reference_time(header: Dataset, factor: float | None) -> dt.datetime:
    """The scan reference time whose QIBA factor equals the source factor."""
    series = dt.datetime.combine(
        parse_da(header.get("SeriesDate"), tag="SeriesDate (0008,0021)"),
        parse_tm(header.get("SeriesTime"), tag="SeriesTime (0008,0031)"),
    )
    if factor is None or str(header.get("DecayCorrection", "")).upper() != "START":
        return series
    pharma = header.RadiopharmaceuticalInformationSequence[0]
    dose = float(pharma.RadionuclideTotalDose)
    half_life = float(pharma.RadionuclideHalfLife)
    weight_g = float(header.PatientWeight) * 1000.0
    decay_s = half_life * math.log2(factor * dose / weight_g)
    if decay_s < -1e-3:
        raise SUVError(
            f"source.suvbw_per_bqml {factor!r} is smaller than weight/dose {weight_g / dose!r}, which no "
            "decay can give: pass the factor the reader computed from this header."
        )
    injected = injection_datetime(header, pharma)
    return injected + dt.timedelta(seconds=round(max(decay_s, 0.0), 6))


def encode_pet(volume: Volume) -> PetEncoding:
    """Convert a PET volume (SUVbw or Bq/ml) into stored int16 slices with per-slice slopes."""
    header = _header(volume.source)
    assert volume.source is not None  # checked by _header
    factor = volume.source.suvbw_per_bqml
    if volume.unit is Unit.SUVBW:
        if factor is None or not (math.isfinite(factor) and factor > 0):
            raise SUVError(
                f"source.suvbw_per_bqml must be a positive factor to turn SUVbw into Bq/ml, got {factor!r}: "
                "read the PET source with pet_unit=SUVbw so the reader computes it."
            )
        bqml = volume.array.astype(np.float64) / factor
    elif volume.unit is Unit.BQML:
        bqml = volume.array.astype(np.float64)
    else:
        raise VolumeError(f"a PET volume must be in SUVbw or Bq/ml, got {volume.unit.value!r}: convert it.")
    peaks = np.abs(bqml).reshape(bqml.shape[0], -1).max(axis=1)
    slopes = np.where(peaks > 0, peaks / 32767.0, 1.0)
    stored = np.rint(bqml / slopes[:, None, None])
    if not np.all(np.isfinite(stored)) or np.abs(stored).max() > 32767:
        raise NumericError("PET values overflow int16 after scaling: fix the values that produced them.")
    return PetEncoding(
        stored=stored.astype(np.int16),
        slopes=tuple(float(s) for s in slopes),
        reference_time=_reference_time(header, factor),
    )


def pet_attributes(ds: Dataset, header: Dataset, encoding: PetEncoding, k: int, index: int, nz: int) -> None:
    """PET Series, PET Isotope, PET Image and NM/PET Patient Orientation attributes of slice ``k``.

    ``index`` is the 1-based ImageIndex of the slice in the written series.
    """
    for keyword in _COPIED:
        if keyword in header:
            ds[keyword] = header[keyword]
    ds.Units = "BQML"
    ds.SeriesDate, ds.SeriesTime = da_tm(encoding.reference_time)
    ds.AcquisitionDate, ds.AcquisitionTime = da_tm(encoding.reference_time)
    ds.setdefault("CountsSource", "EMISSION")
    # One 3D volume: a DYNAMIC or GATED source becomes STATIC (one time frame); slices are IMAGE.
    kind = str((list(header.get("SeriesType") or []) or ["STATIC"])[0]).upper()
    ds.SeriesType = [kind if kind in ("STATIC", "WHOLE BODY") else "STATIC", "IMAGE"]
    ds.setdefault("PatientOrientationCodeSequence", [])
    ds.setdefault("PatientGantryRelationshipCodeSequence", [])
    ds.setdefault("ActualFrameDuration", "")
    ds.setdefault("CollimatorType", "")
    # PET describes the patient position by PatientOrientationCodeSequence, which excludes
    # General Series PatientPosition.
    if "PatientPosition" in ds:
        del ds.PatientPosition
    ds.NumberOfSlices = nz
    ds.ImageIndex = index
    # Pixel values are already decay corrected to the reference time written above.
    ds.FrameReferenceTime = "0"
    ds.DecayFactor = "1"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = ds_number(encoding.slopes[k])
    stored_slice = encoding.stored[k]
    ds.Rows, ds.Columns = (int(n) for n in stored_slice.shape)
    ds.PixelData = np.ascontiguousarray(stored_slice, dtype="<i2").tobytes()
