"""Assemble the instances of one selected series into a :class:`~service.volume.Volume`.

Consistency checks across instances (modality, SOP class, frame of reference), geometry
(:func:`~service.dicom.series.compute_geometry`), decoding and per-slice rescale
(:mod:`service.dicom.pixels`), units (PET: Units must be BQML; SUVbw through
:func:`service.dicom.suv.suvbw_factor`) and the :class:`~service.volume.SourceSeries`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset

from service.dicom.enhanced import instance_label, number_of_frames, slices_of
from service.dicom.pixels import decode_frames, rescale
from service.dicom.scan import parse_all_elements
from service.dicom.series import SliceInfo, compute_geometry
from service.errors import DicomError, PixelDataError, RadTranslateError, SUVError
from service.logs import hash_uid
from service.volume import Modality, SourceSeries, Unit, Volume

if TYPE_CHECKING:  # pragma: no cover
    from service.dicom.reader import ReadOptions

log = logging.getLogger("radtranslate.dicom")

_UNITS = {Modality.CT: Unit.HU, Modality.MR: Unit.MR_AU}
#: Elements left out of SourceSeries.header (pixel data and per-frame data).
_DROPPED = (
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
    "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence",
)


_STORAGE = "1.2.840.10008.5.1.4.1.1."
#: Image storage SOP classes and the modality each implies (classic, enhanced, legacy converted).
SOP_CLASS_MODALITY = {
    _STORAGE + "2": Modality.CT,
    _STORAGE + "2.1": Modality.CT,
    _STORAGE + "2.2": Modality.CT,
    _STORAGE + "4": Modality.MR,
    _STORAGE + "4.1": Modality.MR,
    _STORAGE + "4.4": Modality.MR,
    _STORAGE + "128": Modality.PT,
    _STORAGE + "130": Modality.PT,
    _STORAGE + "128.1": Modality.PT,
}


def _text(ds: Dataset, keyword: str) -> str:
    try:
        return str(ds.get(keyword, "") or "").strip()
    except Exception:
        return ""


def _same(datasets: Sequence[Dataset], keyword: str, *, required: bool) -> str:
    values = {_text(ds, keyword) for ds in datasets}
    if len(values) > 1:
        shown = ", ".join(sorted(hash_uid(v) if "UID" in keyword else repr(v) for v in values)[:6])
        raise DicomError(
            f"{keyword} differs between the instances of one series ({shown}): the series mixes "
            "different data; pass the instances of one acquisition only."
        )
    value = values.pop() if values else ""
    if required and not value:
        raise DicomError(
            f"{keyword} is missing from the series: it is required to place derived data; "
            "export the series again with complete headers."
        )
    return value


def _slope_intercept(s: SliceInfo, modality: Modality) -> tuple[float, float]:
    if s.slope is None or s.intercept is None:
        if modality is Modality.MR and s.slope is None and s.intercept is None:
            return 1.0, 0.0  # the MR Image module has no rescale: stored values are the values
        raise PixelDataError(
            f"{s.label} has no RescaleSlope/RescaleIntercept, which {modality.value} images must carry "
            "to give physical values: export the series again with its modality LUT."
        )
    return s.slope, s.intercept


def _header(ds: Dataset) -> Dataset:
    header = Dataset()
    for elem in ds:
        if elem.keyword not in _DROPPED:
            header.add(copy.deepcopy(elem))
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        header.file_meta = FileMetaDataset(copy.deepcopy(meta))
    return header


def _pet_factor(datasets: Sequence[Dataset], unit: Unit) -> float | None:
    units = sorted({_text(ds, "Units").upper() for ds in datasets})
    if units != ["BQML"]:
        raise SUVError(
            f"PET Units (0054,1001) is {units}, expected ['BQML']: only activity-concentration images "
            "can be read as Bq/ml or converted to SUVbw; export the attenuation- and decay-corrected "
            "series in BQML."
        )
    try:
        from service.dicom.suv import suvbw_factor
    except ImportError as exc:
        if unit is Unit.SUVBW:
            raise SUVError(
                "SUVbw conversion is unavailable in this installation (service.dicom.suv missing): "
                "pass pet_unit='Bq/ml' or install the complete package."
            ) from exc
        return None
    try:
        return float(suvbw_factor(datasets))
    except SUVError:
        if unit is Unit.SUVBW:
            raise
        log.warning("PET series read in Bq/ml; SUVbw factor not computable from its header")
        return None
    except RadTranslateError:
        raise
    except Exception as exc:  # boundary: nothing untyped escapes the reader
        raise SUVError(
            f"SUVbw factor cannot be computed from the PET header ({type(exc).__name__}: {str(exc)[:120]}): "
            "check the radiopharmaceutical and patient weight tags, or pass pet_unit='Bq/ml'."
        ) from exc


def build_volume(datasets: Sequence[Dataset], options: ReadOptions) -> Volume:
    """The volume of one series' complete instances (any order); see :func:`read_series`."""
    for i, ds in enumerate(datasets):
        parse_all_elements(ds, instance_label(ds, i))
    modality = Modality.parse(_same(datasets, "Modality", required=True))
    sop_class = _same(datasets, "SOPClassUID", required=True)
    implied = SOP_CLASS_MODALITY.get(sop_class)
    if implied is not None and implied is not modality:
        raise DicomError(
            f"the series' Modality is {modality.value} but its SOPClassUID {sop_class} is a "
            f"{implied.value} image storage class: the header is inconsistent; export the series again."
        )
    frame_of_reference = _same(datasets, "FrameOfReferenceUID", required=True)
    study = _same(datasets, "StudyInstanceUID", required=True)
    series = _same(datasets, "SeriesInstanceUID", required=True)
    slices = [s for i, ds in enumerate(datasets) for s in slices_of(ds, i)]
    geometry = compute_geometry(slices, spacing_tolerance_mm=options.spacing_tolerance_mm)
    frames: dict[int, npt.NDArray[Any]] = {}
    for i, ds in enumerate(datasets):
        where = instance_label(ds, i)
        frames[i] = decode_frames(ds, where, number_of_frames(ds, where))
    array = np.empty((len(slices), geometry.rows, geometry.columns), dtype=np.float32)
    for k, index in enumerate(geometry.order):
        s = slices[index]
        slope, intercept = _slope_intercept(s, modality)
        array[k] = rescale(frames[s.instance_index][s.frame_index], slope, intercept, s.label)
    if any(_text(ds, "LossyImageCompression") == "01" for ds in datasets):
        log.warning("series %s has undergone lossy compression (LossyImageCompression 01)", hash_uid(series))
    unit = _UNITS.get(modality, options.pet_unit)
    seen: list[int] = []  # instances in slice order, each once (one per slice unless multi-frame)
    for i in geometry.order:
        if slices[i].instance_index not in seen:
            seen.append(slices[i].instance_index)
    ordered = [datasets[i] for i in seen]
    factor = None
    if modality is Modality.PT:
        factor = _pet_factor(ordered, options.pet_unit)
        if options.pet_unit is Unit.SUVBW:
            assert factor is not None
            array *= np.float32(factor)
    sop_uids = [_text(ds, "SOPInstanceUID") for ds in ordered]
    source = SourceSeries(
        study_instance_uid=study,
        series_instance_uid=series,
        frame_of_reference_uid=frame_of_reference,
        sop_class_uid=sop_class,
        sop_instance_uids=tuple(sop_uids),
        header=_header(ordered[0]),
        suvbw_per_bqml=factor,
    )
    return Volume(
        array=array,
        spacing_mm=geometry.spacing_mm,
        origin_mm=geometry.origin_mm,
        direction=geometry.direction,
        modality=modality,
        unit=unit,
        source=source,
    )


def instance_values(ds: Dataset) -> npt.NDArray[np.float32]:
    """Rescaled values of one complete instance, ``(frames, rows, columns)`` float32.

    The per-frame rescale is applied when present, the identity otherwise; no geometry check.
    """
    where = instance_label(ds, 0)
    parse_all_elements(ds, where)
    stored = decode_frames(ds, where, number_of_frames(ds, where))
    out = np.empty(stored.shape, dtype=np.float32)
    for s in slices_of(ds, 0):
        slope = 1.0 if s.slope is None else s.slope
        intercept = 0.0 if s.intercept is None else s.intercept
        out[s.frame_index] = rescale(stored[s.frame_index], slope, intercept, s.label)
    return out
