"""Write a translated :class:`~service.volume.Volume` as a new, derived DICOM series.

- CT (Modality CT, Unit HU): CT Image Storage, int16, HU = stored - 1024 (see
  :mod:`service.dicom.writer_ct`).
- PET (Modality PT, SUVbw or Bq/ml): PET Image Storage in Bq/ml whose tags give back our SUVbw
  under the QIBA procedure (see :mod:`service.dicom.writer_pet`).

The derived series keeps the source's StudyInstanceUID and FrameOfReferenceUID, copies its
patient and study modules, gets a new SeriesInstanceUID and SOPInstanceUIDs, and references
the source instances (SourceImageSequence) and series (ReferencedSeriesSequence). A volume
without source (e.g. from NIfTI) is refused unless ``allow_new_study=True``: then a new study
and frame of reference and an anonymous patient are written, and both SeriesDescription and
DerivationDescription say so.

Instances are numbered along cross(i, j) (see :func:`service.dicom.modules.slice_order`).
Everything is encoded in memory first (Part 10 bytes by
:func:`service.dicom.part10.encode_part10`); files are written through
:func:`service.atomic.atomic_directory`, so a failure leaves nothing at ``out_dir``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from service import __version__
from service.atomic import atomic_directory
from service.dicom import modules, writer_ct, writer_pet
from service.dicom.part10 import encode_part10
from service.dicom.uids import IMPLEMENTATION_CLASS_UID, new_uid
from service.errors import OptionError, VolumeError
from service.logs import hash_uid
from service.volume import Modality, Unit, Volume

__all__ = ["WrittenSeries", "encode_derived_series", "write_derived_series"]

log = logging.getLogger("radtranslate.dicom.writer")

_LO_MAX = 64
_DEFAULT_SERIES_NUMBER = 1000
_PREFIX = {Modality.CT: "sCT", Modality.PT: "PET"}


@dataclass(frozen=True)
class WrittenSeries:
    """A series written to disk: its new UID, its files in InstanceNumber order, its folder."""

    series_instance_uid: str
    paths: tuple[Path, ...]
    directory: Path


def _check_lo(name: str, value: str) -> str:
    text = str(value).strip()
    if not text or len(text) > _LO_MAX or "\\" in text or any(ord(c) < 32 for c in text):
        raise OptionError(
            f"{name} must be 1 to {_LO_MAX} printable characters without backslash, got {value!r}: "
            f"pass a shorter plain name."
        )
    return text


def _series_text(
    volume: Volume,
    *,
    model_name: str,
    model_version: str,
    series_description: str | None,
    series_number: int | None,
    new_study: bool,
) -> modules.SeriesText:
    name = _check_lo("model_name", model_name)
    version = _check_lo("model_version", model_version)
    if series_description is None:
        tail = " NO SOURCE STUDY" if new_study else ""
        series_description = f"{_PREFIX[volume.modality]} radtranslate {name} v{version}{tail}"
    description = _check_lo("series_description", series_description)
    if new_study and "NO SOURCE" not in description.upper():
        description = _check_lo("series_description", f"{description} NO SOURCE STUDY")
    if series_number is None:
        number = _DEFAULT_SERIES_NUMBER
        header = volume.source.header if volume.source is not None else None
        if header is not None and str(header.get("SeriesNumber", "")).strip().lstrip("-").isdigit():
            number += int(header.SeriesNumber)
    else:
        number = series_number
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 2**31 - 1:
        raise OptionError(f"series_number must be an integer in [0, 2147483647], got {number!r}: pass one.")
    derivation = (
        f"Synthesised by radtranslate {__version__} with model {name} version {version} "
        f"({volume.modality.value} in {volume.unit.value}); not an acquired image"
    )
    if new_study:
        derivation += "; input had no DICOM source: new study, new frame of reference, anonymous patient"
    return modules.SeriesText(name, version, description, derivation + ".", number)


def _check_volume(volume: Volume, allow_new_study: bool) -> None:
    ct = volume.modality is Modality.CT and volume.unit is Unit.HU
    pet = volume.modality is Modality.PT and volume.unit in (Unit.SUVBW, Unit.BQML)
    if not (ct or pet):
        raise VolumeError(
            f"only CT in HU and PET in SUVbw or Bq/ml can be written as derived DICOM, got "
            f"{volume.modality.value} in {volume.unit.value}: write this volume as NIfTI/MHA/NRRD instead."
        )
    if volume.source is None and not allow_new_study:
        raise VolumeError(
            "volume has no source DICOM series, so the study, patient and frame of reference are unknown: "
            "translate a volume read from DICOM, or pass allow_new_study=True to create a new "
            "anonymous study."
        )
    if volume.source is not None and volume.source.header is None:
        raise VolumeError(
            "volume.source has no header, so the patient and study modules cannot be copied: "
            "read the source with service.dicom.read_series, which keeps the header."
        )


def encode_derived_series(
    volume: Volume,
    *,
    model_name: str,
    model_version: str,
    series_description: str | None = None,
    series_number: int | None = None,
    allow_new_study: bool = False,
) -> list[Dataset]:
    """Encode ``volume`` as the instances of a new derived series, in InstanceNumber order.

    Parameters
    ----------
    volume
        CT in HU, or PET in SUVbw or Bq/ml; array ``(z, y, x)``, geometry in LPS mm.
    model_name, model_version
        The translation model; written into SeriesDescription, DerivationDescription,
        SoftwareVersions and ContributingEquipmentSequence.
    series_description
        Defaults to ``"sCT radtranslate <model> v<version>"`` (``"PET ..."`` for PET).
    series_number
        Defaults to 1000 + the source SeriesNumber (1000 without source).
    allow_new_study
        Allow a volume without source: new Study/FoR UIDs and an anonymous patient (CT only).

    Returns
    -------
    list of pydicom.Dataset
        Complete instances with file meta, ready for ``dcmwrite`` or a byte stream.
    """
    _check_volume(volume, allow_new_study)
    source = volume.source
    text = _series_text(
        volume,
        model_name=model_name,
        model_version=model_version,
        series_description=series_description,
        series_number=series_number,
        new_study=source is None,
    )
    now = dt.datetime.now()
    nz = volume.shape[0]
    if volume.modality is Modality.CT:
        sop_class = writer_ct.SOP_CLASS_UID
        stored = writer_ct.encode_hu(volume)
        pet = None
    else:
        sop_class = writer_pet.SOP_CLASS_UID
        pet = writer_pet.encode_pet(volume)
    series_uid = new_uid()
    if source is not None:
        study_uid, for_uid = source.study_instance_uid, source.frame_of_reference_uid
        ref_series = modules.referenced_series(source)
    else:
        study_uid, for_uid, ref_series = new_uid(), new_uid(), None
    contributing = modules.contributing_equipment(text, now)
    datasets: list[Dataset] = []
    for number, k in enumerate(modules.slice_order(volume), start=1):
        ds = Dataset()
        if source is not None and source.header is not None:
            modules.copy_patient_and_study(ds, source.header)
        else:
            modules.new_anonymous_study(ds, study_uid=study_uid, now=now)
        ds.StudyInstanceUID = study_uid
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = new_uid()
        ds.InstanceCreationDate, ds.InstanceCreationTime = modules.da_tm(now)
        ds.ContentDate, ds.ContentTime = modules.da_tm(now)
        ds.Modality = volume.modality.value
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = text.series_number
        ds.SeriesDescription = text.series_description
        ds.SeriesDate, ds.SeriesTime = modules.da_tm(now)
        ds.InstanceNumber = number
        ds.FrameOfReferenceUID = for_uid
        modules.equipment(ds, text)
        ds.ContributingEquipmentSequence = contributing
        ds.DerivationDescription = text.derivation_description
        ds.BurnedInAnnotation = "NO"
        modules.image_plane(ds, volume, k)
        if source is not None:
            modules.references(ds, source, k, nz, ref_series)
        if pet is None:
            writer_ct.ct_attributes(ds, stored[k])
        else:
            assert source is not None and source.header is not None  # checked by encode_pet
            writer_pet.pet_attributes(ds, source.header, pet, k, number, nz)
        ds.file_meta = _file_meta(ds)
        datasets.append(ds)
    return datasets


def _file_meta(ds: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = f"RADTRANSLATE_{__version__}"[:16]
    return meta


def write_derived_series(
    volume: Volume,
    out_dir: str | Path,
    *,
    model_name: str,
    model_version: str,
    series_description: str | None = None,
    series_number: int | None = None,
    overwrite: bool = False,
    allow_new_study: bool = False,
) -> WrittenSeries:
    """Encode ``volume`` (see :func:`encode_derived_series`) and write it into folder ``out_dir``.

    Files are named ``<modality>_<InstanceNumber:05d>.dcm`` (explicit VR little endian). The
    folder appears complete or not at all; an existing folder is replaced only with
    ``overwrite=True``.
    """
    datasets = encode_derived_series(
        volume,
        model_name=model_name,
        model_version=model_version,
        series_description=series_description,
        series_number=series_number,
        allow_new_study=allow_new_study,
    )
    final = Path(out_dir)
    names = [f"{ds.Modality}_{int(ds.InstanceNumber):05d}.dcm" for ds in datasets]
    blobs = encode_part10(datasets)
    with atomic_directory(final, overwrite=overwrite) as tmp:
        for name, blob in zip(names, blobs, strict=True):
            (tmp / name).write_bytes(blob)
    series_uid = str(datasets[0].SeriesInstanceUID)
    log.info(
        "wrote derived series",
        extra={
            "fields": {
                "series": hash_uid(series_uid),
                "modality": volume.modality.value,
                "instances": len(datasets),
                "model": f"{model_name} {model_version}",
            }
        },
    )
    return WrittenSeries(
        series_instance_uid=series_uid,
        paths=tuple(final / name for name in names),
        directory=final,
    )
