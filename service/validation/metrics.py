"""Image metrics of a synthetic CT against a reference CT, SynthRAD-style, in HU.

Conventions (SynthRAD2023 ``image_metrics.py``):

- MAE, ME (candidate - reference) and RMSE in HU over the body mask, on unclipped values;
- PSNR over the body mask on values clipped to [-1024, 3000] HU, data range 4024 HU;
- SSIM as ``skimage.metrics.structural_similarity`` (7-voxel uniform window, sample
  covariance, K1 0.01, K2 0.03, data range 4024) on values clipped to [-1024, 3000] HU,
  set to -1024 outside the mask and shifted by +1024; the SSIM map is averaged over the
  mask after cropping 3 voxels from every border. SSIM needs at least 7 voxels per axis
  (otherwise it is reported as None);
- MAE per HU band, bands taken on the *reference* inside the mask: air/lung ``< -200``,
  soft tissue ``[-200, 250)``, bone ``>= 250`` HU;
- automatic body mask when none is given: reference ``> -400`` HU, largest 3D connected
  component (face connectivity), holes filled in each axial slice and then in 3D.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from service.errors import NumericError, VolumeError
from service.volume import Modality, Unit, Volume

__all__ = ["HU_BANDS", "ImageMetrics", "body_mask", "image_metrics", "ssim"]

#: Clip range (HU) for PSNR and SSIM, as SynthRAD.
DYNAMIC_RANGE_HU = (-1024.0, 3000.0)
#: Body-mask threshold (HU) on the reference.
BODY_THRESHOLD_HU = -400.0
#: HU bands on the reference: name -> [low, high).
HU_BANDS: dict[str, tuple[float, float]] = {
    "air": (-np.inf, -200.0),
    "soft_tissue": (-200.0, 250.0),
    "bone": (250.0, np.inf),
}
SSIM_WINDOW = 7

BoolArray = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ImageMetrics:
    """Metrics in HU (PSNR in dB, SSIM unitless); ``mae_band_hu`` None where a band is empty."""

    mae_hu: float
    me_hu: float
    rmse_hu: float
    psnr_db: float
    ssim: float | None
    mae_band_hu: dict[str, float | None]
    voxels_band: dict[str, int]
    mask_voxels: int
    mask_source: str  # "given" or "automatic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def body_mask(reference: Volume, *, threshold_hu: float = BODY_THRESHOLD_HU) -> BoolArray:
    """Body mask of a CT (see the module docstring), shape ``(z, y, x)``."""
    above = reference.array > threshold_hu
    labels, count = ndimage.label(above)
    if count == 0:
        raise VolumeError(
            f"the reference has no voxel above {threshold_hu:g} HU, so no body mask can be made: "
            "check that it is a CT in HU, or pass a mask."
        )
    sizes = np.bincount(labels.ravel())[1:]
    mask = labels == (int(np.argmax(sizes)) + 1)
    for k in range(mask.shape[0]):
        mask[k] = ndimage.binary_fill_holes(mask[k])
    return np.asarray(ndimage.binary_fill_holes(mask), dtype=bool)


def ssim(reference: F64, candidate: F64, mask: BoolArray | None, *, data_range: float) -> float:
    """Mean SSIM (scikit-image's definition) over ``mask`` after cropping 3 voxels per border.

    Inputs are float arrays of the same shape, every axis at least 7 long.
    """
    x = reference.astype(np.float64)
    y = candidate.astype(np.float64)
    np_window = SSIM_WINDOW**x.ndim
    cov_norm = np_window / (np_window - 1)
    ux = ndimage.uniform_filter(x, size=SSIM_WINDOW)
    uy = ndimage.uniform_filter(y, size=SSIM_WINDOW)
    uxx = ndimage.uniform_filter(x * x, size=SSIM_WINDOW)
    uyy = ndimage.uniform_filter(y * y, size=SSIM_WINDOW)
    uxy = ndimage.uniform_filter(x * y, size=SSIM_WINDOW)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    smap = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (SSIM_WINDOW - 1) // 2
    inner = tuple(slice(pad, n - pad) for n in smap.shape)
    cropped = smap[inner]
    if mask is not None:
        cropped = cropped[mask[inner]]
    if cropped.size == 0:
        raise VolumeError(
            "the mask has no voxel farther than 3 voxels from the image border, so SSIM is undefined: "
            "pass a larger mask or image."
        )
    return float(cropped.mean(dtype=np.float64))


def _check(reference: Volume, candidate: Volume, mask: Volume | None) -> None:
    for name, vol in (("reference", reference), ("candidate", candidate)):
        if vol.modality is not Modality.CT or vol.unit is not Unit.HU:
            raise VolumeError(
                f"{name} must be a CT in HU, got {vol.modality.value} in {vol.unit.value}: "
                "compare CT-like images (CT, sCT, corrected CBCT) only."
            )
    if not reference.same_grid(candidate):
        raise VolumeError(
            f"candidate grid (shape {candidate.shape}, spacing {candidate.spacing_mm}) differs from the "
            f"reference grid (shape {reference.shape}, spacing {reference.spacing_mm}): resample the "
            "candidate onto the reference grid first."
        )
    if mask is not None and not reference.same_grid(mask):
        raise VolumeError(
            f"mask grid (shape {mask.shape}) differs from the reference grid (shape {reference.shape}): "
            "resample the mask onto the reference grid (nearest neighbour) first."
        )


def image_metrics(reference: Volume, candidate: Volume, mask: Volume | None = None) -> ImageMetrics:
    """Compare a candidate CT (e.g. synthetic CT) with a reference CT on the same grid.

    Parameters
    ----------
    reference, candidate
        CT volumes in HU on the same grid (array ``(z, y, x)``).
    mask
        Optional body mask on the same grid (any modality; voxels > 0 are inside). When None,
        :func:`body_mask` of the reference is used.

    Returns
    -------
    ImageMetrics
        See the module docstring for the definitions.
    """
    _check(reference, candidate, mask)
    ref = reference.array.astype(np.float64)
    cand = candidate.array.astype(np.float64)
    if mask is None:
        inside = body_mask(reference)
        source = "automatic"
    else:
        inside = mask.array > 0
        source = "given"
    count = int(np.count_nonzero(inside))
    if count == 0:
        raise VolumeError("the mask is empty: pass a mask with at least one voxel > 0, or omit it.")
    diff = cand[inside] - ref[inside]
    low, high = DYNAMIC_RANGE_HU
    data_range = high - low
    ref_c = np.clip(ref, low, high)
    cand_c = np.clip(cand, low, high)
    mse = float(np.mean((cand_c[inside] - ref_c[inside]) ** 2))
    psnr = float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))
    ssim_value: float | None = None
    if min(ref.shape) >= SSIM_WINDOW:
        ssim_value = ssim(
            np.where(inside, ref_c, low) - low,
            np.where(inside, cand_c, low) - low,
            inside,
            data_range=data_range,
        )
    bands: dict[str, float | None] = {}
    band_counts: dict[str, int] = {}
    ref_in = ref[inside]
    for name, (lo, hi) in HU_BANDS.items():
        sel = (ref_in >= lo) & (ref_in < hi)
        band_counts[name] = int(np.count_nonzero(sel))
        bands[name] = float(np.mean(np.abs(diff[sel]))) if band_counts[name] else None
    result = ImageMetrics(
        mae_hu=float(np.mean(np.abs(diff))),
        me_hu=float(np.mean(diff)),
        rmse_hu=float(np.sqrt(np.mean(diff**2))),
        psnr_db=psnr,
        ssim=ssim_value,
        mae_band_hu=bands,
        voxels_band=band_counts,
        mask_voxels=count,
        mask_source=source,
    )
    values = [result.mae_hu, result.me_hu, result.rmse_hu] + ([ssim_value] if ssim_value is not None else [])
    if not all(np.isfinite(values)):
        raise NumericError("image metrics produced NaN or infinity: check the input volumes.")
    return result
