"""DICOM input: find series in folders, read one image series into a :class:`~service.volume.Volume`.

Public API: :func:`scan_folder` (``ScanReport``/``SeriesSummary``), :func:`read_series`,
:func:`read_series_from_datasets` and :func:`read_instance_pixels`.
"""

from __future__ import annotations

from service.dicom.reader import (
    ReadOptions,
    read_instance_pixels,
    read_series,
    read_series_from_datasets,
    select_series,
)
from service.dicom.scan import IMAGE_MODALITIES, ScanReport, SeriesSummary, scan_folder
from service.dicom.series import DEFAULT_SPACING_TOLERANCE_MM

__all__ = [
    "DEFAULT_SPACING_TOLERANCE_MM",
    "IMAGE_MODALITIES",
    "ReadOptions",
    "ScanReport",
    "SeriesSummary",
    "read_instance_pixels",
    "read_series",
    "read_series_from_datasets",
    "scan_folder",
    "select_series",
]
