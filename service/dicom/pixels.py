"""Decode DICOM pixel data into stored values, and apply the per-slice rescale.

Native (uncompressed) data and the compressed transfer syntaxes that pydicom decodes with
the installed plugins are read: RLE Lossless, JPEG Lossless (Process 14, SV1), JPEG-LS,
JPEG 2000 and JPEG baseline/extended (pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg,
pylibjpeg-rle). Anything else raises :class:`~service.errors.PixelDataError` naming the
transfer syntax and the fix. Only single-sample greyscale (MONOCHROME1/2) images are accepted.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.uid import UID

from service.errors import NumericError, PixelDataError

log = logging.getLogger("radtranslate.dicom")

#: The most voxels decoded from one instance (a guard against corrupt Rows/Columns/NumberOfFrames).
MAX_VOXELS_PER_INSTANCE = 1 << 30

_FIX_SYNTAX = (
    "convert the files to Explicit VR Little Endian first (e.g. 'gdcmconv --raw' or 'dcmdjpeg'/'dcmdrle')."
)


def transfer_syntax(ds: Dataset) -> UID | None:
    """The instance's Transfer Syntax UID from its file meta, ``None`` if unknown."""
    meta = getattr(ds, "file_meta", None)
    try:
        value = meta.get("TransferSyntaxUID") if meta is not None else None
    except Exception:
        value = None
    return UID(str(value)) if value else None


def _syntax_name(ts: UID | None) -> str:
    if ts is None:
        return "an unknown transfer syntax (no TransferSyntaxUID in the file meta)"
    return f"{ts.name} ({ts})" if ts.is_valid and ts.name != str(ts) else f"transfer syntax {str(ts)!r}"


def _int_attr(ds: Dataset, keyword: str, where: str, default: int | None = None) -> int:
    try:
        value = ds.get(keyword, default)
        if value is None:
            raise ValueError("absent")
        return int(value)
    except Exception:
        raise PixelDataError(
            f"{keyword} of {where} is missing or not an integer: the image pixel module is incomplete; "
            "export the series again."
        ) from None


def check_pixel_module(ds: Dataset, where: str, frames: int) -> UID | None:
    """Check the Image Pixel module before decoding; return the transfer syntax.

    Raises
    ------
    PixelDataError
        No pixel data, colour or multi-sample images, unsupported bit depth, an oversized
        matrix, or a transfer syntax without an installed decoder.
    """
    if "PixelData" not in ds:
        raise PixelDataError(
            f"{where} has no PixelData (7FE0,0010): it is not an image instance, or it was read with "
            "stop_before_pixels; pass the complete files."
        )
    samples = _int_attr(ds, "SamplesPerPixel", where, 1)
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise PixelDataError(
            f"{where} has SamplesPerPixel {samples} and PhotometricInterpretation {photometric!r}; "
            "expected 1 and MONOCHROME1/MONOCHROME2: colour images are not CT/MR/PET data; "
            "select the greyscale image series."
        )
    bits = _int_attr(ds, "BitsAllocated", where)
    stored = _int_attr(ds, "BitsStored", where, bits)
    representation = _int_attr(ds, "PixelRepresentation", where)
    if bits not in (8, 16, 32) or not 1 <= stored <= bits or representation not in (0, 1):
        raise PixelDataError(
            f"{where} has BitsAllocated {bits}, BitsStored {stored}, PixelRepresentation {representation}; "
            "expected 8, 16 or 32 bits allocated, 1..BitsAllocated stored, representation 0 or 1: "
            "the image pixel module is corrupt; export the series again."
        )
    rows, columns = _int_attr(ds, "Rows", where), _int_attr(ds, "Columns", where)
    if rows < 1 or columns < 1 or rows * columns * frames > MAX_VOXELS_PER_INSTANCE:
        raise PixelDataError(
            f"{where} declares {frames} frame(s) of {rows}x{columns} pixels; expected 1 to "
            f"{MAX_VOXELS_PER_INSTANCE} voxels per instance: the header is corrupt; export it again."
        )
    ts = transfer_syntax(ds)
    if ts is None:
        return None  # pydicom infers the encoding of a dataset read without file meta
    from pydicom.pixels.decoders.base import get_decoder

    try:
        decoder = get_decoder(ts)
    except (NotImplementedError, ValueError):
        raise PixelDataError(
            f"pixel data of {where} is encoded with {_syntax_name(ts)}, which this reader cannot "
            f"decode: {_FIX_SYNTAX}"
        ) from None
    if not decoder.is_available:
        raise PixelDataError(
            f"pixel data of {where} is encoded with {_syntax_name(ts)}, whose decoder plugin is not "
            f"installed (needs one of {sorted(decoder.missing_dependencies) or 'pylibjpeg plugins'}): "
            f"install the pinned pylibjpeg plugins, or {_FIX_SYNTAX}"
        )
    return ts


def decode_frames(ds: Dataset, where: str, frames: int) -> npt.NDArray[Any]:
    """Stored pixel values of every frame, shape ``(frames, rows, columns)``, no rescale applied.

    Parameters
    ----------
    ds
        A complete instance (with PixelData).
    where
        How error messages name the instance.
    frames
        The number of frames the header declares (1 for single-frame images).

    Raises
    ------
    PixelDataError
        The pixel module is unsupported or the data cannot be decoded (truncated, corrupt).
    """
    ts = check_pixel_module(ds, where, frames)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = np.asarray(ds.pixel_array)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # decoders raise ValueError, RuntimeError, MemoryError, and the
        # Rust-based pylibjpeg-rle raises pyo3's PanicException (a BaseException) on corrupt segments
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise PixelDataError(
            f"pixel data of {where} ({_syntax_name(ts)}) cannot be decoded "
            f"({type(exc).__name__}: {detail}): the file is truncated or corrupt; export it again, or "
            f"{_FIX_SYNTAX}"
        ) from exc
    rows, columns = int(ds.Rows), int(ds.Columns)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.shape != (frames, rows, columns) or not np.issubdtype(array.dtype, np.integer):
        raise PixelDataError(
            f"pixel data of {where} decoded to shape {array.shape} ({array.dtype}); expected "
            f"({frames}, {rows}, {columns}) integers from the header: the file is corrupt; export it again."
        )
    return array


def rescale(stored: npt.NDArray[Any], slope: float, intercept: float, where: str) -> npt.NDArray[np.float32]:
    """``stored × slope + intercept`` in float64, returned as float32.

    Raises
    ------
    PixelDataError
        When the slope is zero or slope/intercept are not finite (a corrupt header).
    NumericError
        When a rescaled value does not fit float32.
    """
    if not (math.isfinite(slope) and math.isfinite(intercept)) or slope == 0.0:
        raise PixelDataError(
            f"RescaleSlope {slope} / RescaleIntercept {intercept} of {where} must be finite with a "
            "non-zero slope: the header is corrupt; export the series again."
        )
    values = stored.astype(np.float64) * slope + intercept
    limit = float(np.finfo(np.float32).max)
    if not np.all(np.isfinite(values)) or float(np.abs(values).max(initial=0.0)) > limit:
        raise NumericError(
            f"rescaled values of {where} overflow float32 (slope {slope}, intercept {intercept}): "
            "the rescale parameters are corrupt; export the series again."
        )
    return values.astype(np.float32)
