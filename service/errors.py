"""Typed errors of radtranslate.

Every message names what was wrong, the offending value, and ends with the fix,
e.g. ``"spacing_mm must be three positive finite numbers, got (0.0, 1.0, 1.0):
pass the voxel size in millimetres."``

The hierarchy is what the gRPC layer maps to status codes:

- :class:`InputError` (and subclasses): the caller's input is wrong -> INVALID_ARGUMENT
- :class:`NotFoundError`: a named model/series does not exist -> NOT_FOUND
- :class:`OutputError`: an output cannot be written (exists, not writable) -> FAILED_PRECONDITION
- :class:`NumericError`: a computation produced NaN/inf or overflowed -> INTERNAL
- anything else -> INTERNAL, with no stack trace sent to the client.
"""

from __future__ import annotations


class RadTranslateError(Exception):
    """Base class of all radtranslate errors."""


class InputError(RadTranslateError, ValueError):
    """The input (files, arrays, options) is invalid; the message says how to fix it."""


class VolumeError(InputError):
    """A volume's array, geometry, modality or unit is invalid."""


class DicomError(InputError):
    """A DICOM file or series cannot be used."""


class SeriesSelectionError(DicomError):
    """No series, or more than one series, matches the selection rule."""


class SeriesGeometryError(DicomError):
    """A series is not a regular 3D grid (orientation, spacing, gaps, tilt, size)."""


class PixelDataError(DicomError):
    """Pixel data is missing, undecodable, or its encoding is unsupported."""


class SUVError(DicomError):
    """SUVbw cannot be computed from the PET header."""


class ImageFormatError(InputError):
    """A NIfTI/MHA/NRRD file cannot be read or written as a volume."""


class OptionError(InputError):
    """An option (CLI flag, API field, configuration value) is invalid."""


class NotFoundError(RadTranslateError, LookupError):
    """A named thing (model, version, series UID) does not exist."""


class OutputError(RadTranslateError):
    """An output cannot be written (it already exists, or the folder is not writable)."""


class NumericError(RadTranslateError, ArithmeticError):
    """A computation produced NaN or infinity, or a value overflowed its type."""


class CancelledError(RadTranslateError):
    """The caller cancelled the work, or its deadline passed, before it finished."""


class ResourceExhaustedError(RadTranslateError):
    """The server is at its limit (queue full, request too large); retry later or send less."""
