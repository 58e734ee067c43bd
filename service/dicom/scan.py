"""Find the DICOM series in a folder: headers only, problems reported without raising.

:func:`scan_folder` walks a folder recursively, reads every file's header
(``stop_before_pixels=True``), skips and counts what is not a usable DICOM instance, groups
instances by SeriesInstanceUID and summarises each series, running the same geometry checks
as the reader but recording their messages in ``problems`` instead of raising.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from service.dicom.enhanced import instance_label, number_of_frames, slices_of
from service.dicom.series import DEFAULT_SPACING_TOLERANCE_MM, SliceInfo, compute_geometry
from service.errors import DicomError

#: Modalities the reader turns into volumes; other series (RTSTRUCT, RTPLAN, SR...) are counted only.
IMAGE_MODALITIES = ("CT", "MR", "PT")

SKIP_NOT_DICOM = "not DICOM (no DICM prefix)"
SKIP_UNREADABLE = "unreadable DICOM"
SKIP_DICOMDIR = "DICOMDIR index"
SKIP_NO_SERIES = "no SeriesInstanceUID"
SKIP_EMPTY = "empty file"
SKIP_NO_ACCESS = "cannot open"
#: Skip reasons that may hide a damaged instance of the series being read: read_series refuses them.
SUSPECT_REASONS = frozenset({SKIP_UNREADABLE, SKIP_NO_SERIES, SKIP_EMPTY, SKIP_NO_ACCESS})

_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_UNITS = {"CT": "HU", "MR": "MR_AU", "RTDOSE": "Gy"}


@dataclass(frozen=True)
class SeriesSummary:
    """One series found by :func:`scan_folder` (no patient data).

    ``spacing_mm`` is ``(x, y, z)`` in mm when the geometry checks pass, else ``None`` and the
    reason is in ``problems``. ``unit`` is the unit :func:`read_series` would produce by default.
    """

    series_instance_uid: str
    modality: str
    sop_class_uid: str
    instances: int
    frames: int
    rows: int | None
    columns: int | None
    spacing_mm: tuple[float, float, float] | None
    unit: str | None
    series_description: str
    problems: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        """True for CT, MR and PT series (the ones the reader selects from)."""
        return self.modality in IMAGE_MODALITIES


@dataclass(frozen=True)
class ScanReport:
    """Series found in a folder, and the files skipped (count in total and by reason)."""

    series: tuple[SeriesSummary, ...]
    skipped_files: int
    skipped_by_reason: dict[str, int] = field(default_factory=dict)


def list_files(path: str | os.PathLike[str]) -> list[Path]:
    """Every regular file under ``path`` (recursive, sorted; symlinked folders not followed).

    Raises
    ------
    DicomError
        When ``path`` does not exist.
    """
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DicomError(
            f"path {str(root)!r} does not exist or is not a file or folder: "
            "pass a folder (searched recursively) or a list of DICOM files."
        )
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        found.extend(Path(folder) / name for name in sorted(files))
    return found


#: Bulk pixel elements: never parsed eagerly (they may be deferred reads from the file).
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})


def _walk(ds: Dataset) -> int | None:
    last = None
    for tag in list(ds.keys()):
        if tag in _PIXEL_TAGS:
            continue
        last = tag
        elem = ds[tag]  # converts a raw element: the step that fails on corrupt values
        if elem.VR == "SQ":
            for item in elem.value:
                _walk(item)
    return last


def parse_all_elements(ds: Dataset, where: str) -> None:
    """Convert every element but pixel data (pydicom parses lazily), so corrupt ones fail here, typed.

    Raises
    ------
    DicomError
        Naming the element that cannot be parsed.
    """
    try:
        _walk(ds)
    except Exception as exc:
        raise DicomError(
            f"{where} has an element that cannot be parsed ({type(exc).__name__}: "
            f"{str(exc)[:160]}): the file is corrupt; export the series again."
        ) from exc


def read_header(path: Path, *, defer_pixels: bool = False) -> tuple[Dataset | None, str | None]:
    """``(header, None)`` for a usable instance, else ``(None, reason)``; never raises.

    With ``defer_pixels`` the whole instance is read but values over 16 KiB (pixel data) are
    read from the file only when accessed; otherwise reading stops before the pixel data.
    """
    try:
        if path.stat().st_size == 0:
            return None, SKIP_EMPTY
        if defer_pixels:
            ds = pydicom.dcmread(path, defer_size="16 KB")
        else:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        parse_all_elements(ds, "header")
    except InvalidDicomError:
        return None, SKIP_NOT_DICOM
    except OSError:
        return None, SKIP_NO_ACCESS
    except Exception:  # truncated or corrupt files raise many types inside pydicom
        return None, SKIP_UNREADABLE
    return classify(ds)


def classify(ds: Dataset) -> tuple[Dataset | None, str | None]:
    """Keep ``ds`` if it is an instance of a series, else give the reason to skip it."""
    try:
        meta = getattr(ds, "file_meta", None)
        sop_class = str((meta.get("MediaStorageSOPClassUID", "") if meta is not None else "") or "")
        if sop_class == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
            return None, SKIP_DICOMDIR
        uid = ds.get("SeriesInstanceUID")
    except Exception:
        return None, SKIP_UNREADABLE
    if not uid or not str(uid).strip():
        return None, SKIP_NO_SERIES
    return ds, None


def group_by_series(headers: Iterable[Dataset]) -> dict[str, list[int]]:
    """Indices of ``headers`` grouped by SeriesInstanceUID, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i, ds in enumerate(headers):
        groups.setdefault(str(ds.SeriesInstanceUID).strip(), []).append(i)
    return groups


def _text(ds: Dataset, keyword: str) -> str:
    try:
        return str(ds.get(keyword, "") or "").strip()
    except Exception:
        return ""


def summarise(uid: str, headers: Sequence[Dataset]) -> SeriesSummary:
    """Summary of one series from its headers; geometry problems recorded, not raised."""
    first = headers[0]
    modality = _text(first, "Modality").upper() or "(none)"
    problems: list[str] = []
    frames = 0
    slices: list[SliceInfo] = []
    for i, ds in enumerate(headers):
        try:
            frames += number_of_frames(ds, instance_label(ds, i))
            if modality in IMAGE_MODALITIES:
                slices.extend(slices_of(ds, i))
        except DicomError as exc:
            problems.append(str(exc))
    spacing = None
    if modality in IMAGE_MODALITIES and not problems:
        try:
            spacing = compute_geometry(slices, spacing_tolerance_mm=DEFAULT_SPACING_TOLERANCE_MM).spacing_mm
        except DicomError as exc:
            problems.append(str(exc))
    unit = _UNITS.get(modality)
    if modality == "PT":
        units = {_text(ds, "Units").upper() for ds in headers}
        if units == {"BQML"}:
            unit = "SUVbw"
        else:
            problems.append(f"PET Units is {sorted(units)}, not BQML: the reader refuses it.")
    rows, columns = slices[0].rows if slices else None, slices[0].columns if slices else None
    return SeriesSummary(
        series_instance_uid=uid,
        modality=modality,
        sop_class_uid=_text(first, "SOPClassUID"),
        instances=len(headers),
        frames=frames,
        rows=rows,
        columns=columns,
        spacing_mm=spacing,
        unit=unit,
        series_description=_text(first, "SeriesDescription"),
        problems=tuple(problems),
    )


def scan_folder(path: str | os.PathLike[str]) -> ScanReport:
    """Scan ``path`` recursively for DICOM series (headers only).

    Parameters
    ----------
    path
        A folder (searched recursively) or a single file.

    Returns
    -------
    ScanReport
        One :class:`SeriesSummary` per SeriesInstanceUID (image series first, then others), and
        the number of skipped files by reason (not DICOM, unreadable, DICOMDIR, ...).

    Raises
    ------
    DicomError
        When ``path`` does not exist.
    """
    headers: list[Dataset] = []
    skipped: Counter[str] = Counter()
    for file in list_files(path):
        ds, reason = read_header(file)
        if ds is None:
            skipped[reason or SKIP_UNREADABLE] += 1
        else:
            headers.append(ds)
    groups = group_by_series(headers)
    summaries = [summarise(uid, [headers[i] for i in idx]) for uid, idx in groups.items()]
    summaries.sort(key=lambda s: (not s.is_image, s.modality, s.series_instance_uid))
    return ScanReport(
        series=tuple(summaries),
        skipped_files=sum(skipped.values()),
        skipped_by_reason=dict(sorted(skipped.items())),
    )
