"""DICOM modules shared by every derived series: patient, study, series, equipment, frame of
reference, image plane, references to the source, and SOP common.

Each function fills attributes into a :class:`pydicom.Dataset` in place. Geometry follows
:mod:`service.volume`: the LPS position of slice ``k`` is ``origin + k * dk * direction[:, 2]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence as SequenceT
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import format_number_as_ds

from service import __version__
from service.volume import SourceSeries, Volume

#: Patient-level attributes copied from the source header (Patient, Clinical Trial Subject modules).
PATIENT_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDsSequence",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "ClinicalTrialSponsorName",
    "ClinicalTrialProtocolID",
    "ClinicalTrialProtocolName",
    "ClinicalTrialSiteID",
    "ClinicalTrialSiteName",
    "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
)

#: Study-level attributes copied (General Study, Patient Study, Clinical Trial Study modules).
STUDY_KEYWORDS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "ClinicalTrialTimePointID",
    "ClinicalTrialTimePointDescription",
)

#: Type 2 attributes that must be present (possibly empty) in every derived instance.
TYPE2_EMPTY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "PositionReferenceIndicator",
)

#: DICOM code: purpose of reference "Source image for image processing operation" (CID 7202).
SOURCE_IMAGE_PURPOSE = ("121322", "DCM", "Source image for image processing operation")
#: DICOM code: "Processing Equipment" (CID 7005).
PROCESSING_EQUIPMENT = ("109102", "DCM", "Processing Equipment")


@dataclass(frozen=True)
class SeriesText:
    """The validated free-text and numbering of a derived series."""

    model_name: str
    model_version: str
    series_description: str
    derivation_description: str
    series_number: int


def ds_number(value: float) -> str:
    """A float as a DICOM DS string (at most 16 characters, full available precision)."""
    return str(format_number_as_ds(float(value)))


def da_tm(moment: dt.datetime) -> tuple[str, str]:
    """DICOM DA and TM strings (microsecond precision) of a naive datetime."""
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S.%f")


def code_item(code: tuple[str, str, str]) -> Dataset:
    """A code sequence item (CodeValue, CodingSchemeDesignator, CodeMeaning)."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code
    return item


def copy_patient_and_study(ds: Dataset, header: Dataset) -> None:
    """Copy the patient and study modules (and character set) from the source header."""
    if "SpecificCharacterSet" in header:
        ds.SpecificCharacterSet = header.SpecificCharacterSet
    for keyword in PATIENT_KEYWORDS + STUDY_KEYWORDS:
        if keyword in header:
            ds[keyword] = header[keyword]
    ds.PositionReferenceIndicator = header.get("PositionReferenceIndicator", "")
    if "BodyPartExamined" in header:
        ds.BodyPartExamined = header.BodyPartExamined
    # Type 2C for CT/MR: copied, or empty (unknown). The PET writer removes it again.
    ds.PatientPosition = header.get("PatientPosition", "")
    # General Series Laterality is type 2C: copied when known, else written empty (unknown).
    ds.Laterality = header.get("Laterality", "")
    for keyword in TYPE2_EMPTY:
        if keyword not in ds:
            setattr(ds, keyword, "")


def new_anonymous_study(ds: Dataset, *, study_uid: str, now: dt.datetime) -> None:
    """An anonymous patient and a new study, for volumes that come from no DICOM series."""
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "ANONYMOUS^RADTRANSLATE"
    ds.PatientID = "RADTRANSLATE-NO-SOURCE"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "No patient data: derived from a non-DICOM image by radtranslate"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate, ds.StudyTime = da_tm(now)
    ds.StudyDescription = "radtranslate output without source study"
    ds.Laterality = ""
    ds.PatientPosition = ""
    for keyword in TYPE2_EMPTY:
        if keyword not in ds:
            setattr(ds, keyword, "")


def equipment(ds: Dataset, text: SeriesText) -> None:
    """General Equipment: radtranslate is the manufacturer of a derived series."""
    ds.Manufacturer = "radtranslate"
    ds.ManufacturerModelName = text.model_name
    ds.SoftwareVersions = [f"radtranslate {__version__}", f"{text.model_name} {text.model_version}"]
    ds.InstitutionName = ""


def contributing_equipment(text: SeriesText, now: dt.datetime) -> Sequence:
    """ContributingEquipmentSequence naming radtranslate and the model as processing equipment."""
    item = Dataset()
    item.PurposeOfReferenceCodeSequence = Sequence([code_item(PROCESSING_EQUIPMENT)])
    item.Manufacturer = "radtranslate"
    item.ManufacturerModelName = text.model_name
    item.SoftwareVersions = [f"radtranslate {__version__}", f"{text.model_name} {text.model_version}"]
    item.ContributionDateTime = now.strftime("%Y%m%d%H%M%S.%f")
    item.ContributionDescription = (
        f"Image translation by model {text.model_name} version {text.model_version}"
    )
    return Sequence([item])


def slice_positions(volume: Volume) -> npt.NDArray[np.float64]:
    """LPS centre of voxel ``[k, 0, 0]`` for every slice ``k``, shape ``(nz, 3)`` in mm."""
    nz = volume.shape[0]
    ijk = np.zeros((nz, 3))
    ijk[:, 2] = np.arange(nz)
    return volume.index_to_lps(ijk)


def is_right_handed(volume: Volume) -> bool:
    """True when the k axis is cross(i, j); else it is -cross(i, j) (direction is orthonormal)."""
    d = volume.direction
    return bool(np.dot(np.cross(d[:, 0], d[:, 1]), d[:, 2]) > 0)


def image_plane(ds: Dataset, volume: Volume, k: int) -> None:
    """Image Plane module of slice ``k`` (positions in mm, LPS)."""
    d = volume.direction
    di, dj, dk = volume.spacing_mm
    position = slice_positions(volume)[k]
    normal = np.cross(d[:, 0], d[:, 1])
    ds.ImagePositionPatient = [ds_number(v) for v in position]
    ds.ImageOrientationPatient = [ds_number(v) for v in (*d[:, 0], *d[:, 1])]
    ds.PixelSpacing = [ds_number(dj), ds_number(di)]
    ds.SliceThickness = ds_number(dk)
    ds.SliceLocation = ds_number(float(np.dot(position, normal)))


def references(
    ds: Dataset, source: SourceSeries, k: int, nz: int, referenced_series: Sequence | None
) -> None:
    """SourceImageSequence (slice ``k`` to its source instance or frame) and the series reference.

    When the source has as many instances as the volume has slices, slice ``k`` references
    instance ``k``; when it is one multi-frame instance with ``nz`` frames, frame ``k + 1``;
    otherwise (a resampled grid) no per-slice reference is written, only the series one.
    """
    uids = source.sop_instance_uids
    item = Dataset()
    item.ReferencedSOPClassUID = source.sop_class_uid
    per_slice = True
    if len(uids) == nz:
        item.ReferencedSOPInstanceUID = uids[k]
    elif len(uids) == 1 and nz > 1 and source_is_multiframe(source, nz):
        item.ReferencedSOPInstanceUID = uids[0]
        item.ReferencedFrameNumber = k + 1
    else:
        per_slice = False
    if per_slice:
        item.PurposeOfReferenceCodeSequence = Sequence([code_item(SOURCE_IMAGE_PURPOSE)])
        ds.SourceImageSequence = Sequence([item])
    if referenced_series is not None:
        ds.ReferencedSeriesSequence = referenced_series


def source_is_multiframe(source: SourceSeries, nz: int) -> bool:
    """True when the source header says it has ``nz`` frames."""
    header = source.header
    frames = header.get("NumberOfFrames") if header is not None else None
    try:
        return frames is not None and int(frames) == nz
    except (TypeError, ValueError):
        return False


def referenced_series(source: SourceSeries) -> Sequence:
    """Common Instance Reference: the source series and all its instances."""
    series = Dataset()
    series.SeriesInstanceUID = source.series_instance_uid
    instances = []
    for uid in source.sop_instance_uids:
        item = Dataset()
        item.ReferencedSOPClassUID = source.sop_class_uid
        item.ReferencedSOPInstanceUID = uid
        instances.append(item)
    series.ReferencedInstanceSequence = Sequence(instances)
    return Sequence([series])


def slice_order(volume: Volume) -> SequenceT[int]:
    """Indices k in the order they are numbered (InstanceNumber 1, 2, ...).

    Instances are numbered along cross(i, j), the normal of ImageOrientationPatient: k
    ascending for a right-handed grid, descending for a left-handed one. Every slice carries
    its own ImagePositionPatient, so the geometry is exact either way; the numbering only
    makes a reader that sorts by InstanceNumber build a right-handed volume.
    """
    nz = volume.shape[0]
    return range(nz) if is_right_handed(volume) else range(nz - 1, -1, -1)
