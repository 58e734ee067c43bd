"""Write simulated subjects as DICOM series, as a scanner would hand them to radtranslate.

Used for the bundled example (``examples/``) and for end-to-end tests of the service: an MR Image
Storage or CT Image Storage series per image, all of one simulated study sharing a Frame of
Reference. The patient is a named phantom (never a person), and every series says it is simulated
(SeriesDescription, ImageComments, Manufacturer "radtranslate simulator").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from service import __version__
from service.atomic import atomic_directory
from service.dicom import modules
from service.dicom.uids import IMPLEMENTATION_CLASS_UID, new_uid
from service.errors import VolumeError
from service.volume import Modality, Volume

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
CT_INTERCEPT_HU = -1024


@dataclass(frozen=True)
class SimulatedStudy:
    """Identifiers shared by the series of one simulated subject."""

    patient_id: str
    study_uid: str
    frame_of_reference_uid: str
    date: dt.datetime

    @classmethod
    def new(cls, patient_id: str, date: dt.datetime | None = None) -> SimulatedStudy:
        return cls(patient_id, new_uid(), new_uid(), date or dt.datetime(2026, 1, 1, 9, 0, 0))


def _base(study: SimulatedStudy, volume: Volume, series_uid: str, number: int, description: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = f"PHANTOM^{study.patient_id}"
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Simulated phantom: no patient data"
    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate, ds.StudyTime = modules.da_tm(study.date)
    ds.StudyID = "SIM"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "radtranslate simulated subject"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDate, ds.SeriesTime = ds.StudyDate, ds.StudyTime
    ds.SeriesDescription = description[:64]
    ds.Modality = volume.modality.value
    ds.PatientPosition = "HFS"
    ds.Laterality = ""
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "radtranslate simulator"
    ds.ManufacturerModelName = "digital phantom"
    ds.SoftwareVersions = f"radtranslate {__version__}"
    ds.InstitutionName = ""
    ds.ImageComments = "SIMULATED IMAGE - NOT A PATIENT - NOT FOR CLINICAL USE"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.AcquisitionNumber = 1
    return ds


def _mr(ds: Dataset, stored: np.ndarray) -> None:
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = "500"
    ds.EchoTime = "15"
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = "1.5"
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()


def _ct(ds: Dataset, stored: np.ndarray) -> None:
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = "120"
    ds.RescaleIntercept = str(CT_INTERCEPT_HU)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.PixelRepresentation = 1
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.PixelData = np.ascontiguousarray(stored, dtype="<i2").tobytes()


def encode_stored(volume: Volume) -> np.ndarray:
    """Stored pixel values: MR rounded to uint16; CT as int16 with intercept -1024 HU."""
    if volume.modality is Modality.MR:
        if float(volume.array.min()) < -0.5 or float(volume.array.max()) > 65535.5:
            raise VolumeError("MR values must lie in [0, 65535] to be stored as uint16: rescale the volume.")
        return np.rint(volume.array).astype(np.uint16)
    if volume.modality is Modality.CT:
        stored = np.rint(volume.array.astype(np.float64) - CT_INTERCEPT_HU)
        if stored.min() < -32768 or stored.max() > 32767:
            raise VolumeError("CT values must lie in [-32744, 33791] HU to be stored as int16: clip them.")
        return stored.astype(np.int16)
    raise VolumeError(f"simulated series are written for MR and CT, got {volume.modality.value}: use those.")


def write_series(
    volume: Volume, out_dir: str | Path, study: SimulatedStudy, *, series_number: int, description: str
) -> Path:
    """Write ``volume`` (MR or CT) as one series of single-frame instances into ``out_dir`` (atomic)."""
    stored = encode_stored(volume)
    series_uid = new_uid()
    order = modules.slice_order(volume)
    with atomic_directory(out_dir) as tmp:
        for number, k in enumerate(order, start=1):
            ds = _base(study, volume, series_uid, series_number, description)
            (_mr if volume.modality is Modality.MR else _ct)(ds, stored[k])
            ds.SOPInstanceUID = new_uid()
            ds.InstanceNumber = number
            ds.Rows, ds.Columns = (int(n) for n in stored[k].shape)
            ds.ContentDate, ds.ContentTime = ds.StudyDate, ds.StudyTime
            modules.image_plane(ds, volume, k)
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
            ds.file_meta = meta
            ds.save_as(tmp / f"{volume.modality.value}_{number:05d}.dcm", enforce_file_format=True)
    return Path(out_dir)
