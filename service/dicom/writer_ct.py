"""CT Image Storage pixel encoding and CT-specific attributes of a derived (synthetic) CT.

HU are stored as signed 16-bit integers with RescaleSlope 1 and RescaleIntercept -1024
(``HU = stored - 1024``, exact): each HU value is rounded to the nearest integer (ties to
even, :func:`numpy.rint`), so a read-back differs by at most 0.5 HU. The encodable range is
therefore [-33792, 31743] HU; values outside it are refused, never clipped.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from service.errors import NumericError, VolumeError
from service.volume import Volume

SOP_CLASS_UID = CTImageStorage
RESCALE_INTERCEPT_HU = -1024
RESCALE_SLOPE = 1
MIN_HU = -32768 + RESCALE_INTERCEPT_HU
MAX_HU = 32767 + RESCALE_INTERCEPT_HU

#: Window presets (centre, width in HU, explanation): soft tissue first, then bone and lung.
WINDOWS = ((40, 400, "SOFT_TISSUE"), (400, 1800, "BONE"), (-600, 1500, "LUNG"))


def encode_hu(volume: Volume) -> npt.NDArray[np.int16]:
    """Stored int16 values of a HU volume, shape ``(z, y, x)``.

    Raises
    ------
    VolumeError
        When a value lies outside the encodable HU range.
    """
    hu = volume.array  # float32
    low, high = float(hu.min()), float(hu.max())
    if low < MIN_HU - 0.5 or high >= MAX_HU + 0.5:
        raise VolumeError(
            f"CT values must lie in [{MIN_HU}, {MAX_HU}] HU to be stored as int16 with intercept "
            f"{RESCALE_INTERCEPT_HU}, got range [{low:.1f}, {high:.1f}] HU: check the model output "
            "(a CT volume in HU should lie within about -1024 to 3071) or clip it explicitly before writing."
        )
    # Round first, then shift by the integer intercept: both steps are exact in float32.
    stored = np.rint(hu) - np.float32(RESCALE_INTERCEPT_HU)
    if not np.all(np.isfinite(stored)):
        raise NumericError("CT values are not finite after rounding: fix the computation that produced them.")
    return stored.astype(np.int16)


def ct_attributes(ds: Dataset, stored_slice: npt.NDArray[np.int16]) -> None:
    """CT Image, Modality LUT and VOI LUT attributes and the pixel data of one slice."""
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = str(RESCALE_INTERCEPT_HU)
    ds.RescaleSlope = str(RESCALE_SLOPE)
    ds.RescaleType = "HU"
    ds.KVP = ""
    ds.AcquisitionNumber = ""
    ds.WindowCenter = [str(c) for c, _, _ in WINDOWS]
    ds.WindowWidth = [str(w) for _, w, _ in WINDOWS]
    ds.WindowCenterWidthExplanation = [e for _, _, e in WINDOWS]
    ds.Rows, ds.Columns = (int(n) for n in stored_slice.shape)
    ds.SmallestImagePixelValue = int(stored_slice.min())
    ds.LargestImagePixelValue = int(stored_slice.max())
    ds.PixelData = np.ascontiguousarray(stored_slice, dtype="<i2").tobytes()
