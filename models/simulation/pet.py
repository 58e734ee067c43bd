"""Physics-based full-dose and low-dose PET simulation from an SUV map.

Pipeline (per subject; see ``docs/simulation_physics.md``):

1. Activity concentration ``C = SUV * injected_mbq_per_kg * exp(-ln2 * uptake / T1/2)``
   (kBq/ml; SUVbw with 1 g = 1 ml, so body weight cancels).
2. Scanner resolution: 3D Gaussian PSF of ``psf_fwhm_mm``; resampling to the PET
   reconstruction grid (``pixel_mm`` in-plane, the input slice spacing axially).
3. 2D parallel-beam sinograms per slice (``n_angles`` angles), attenuation by a water
   mu-map (0.0096/mm at 511 keV) filled inside the body outline.
4. Expected trues scaled by sensitivity x frame time (realistic counts per slice), plus
   a uniform randoms+scatter background of ``background_fraction`` x trues; Poisson
   noise drawn independently for full dose and for each dose fraction ``1/DRF``, all
   from the SAME activity.
5. OSEM (``iterations`` x ``subsets``) with the same attenuation, sensitivity and
   background model (a fully corrected clinical reconstruction without resolution
   modelling), Gaussian post-filter, resampling back, division by the SUV scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy import ndimage

from models.simulation import projector as proj
from models.simulation.pet_params import PETParams
from service.errors import NumericError, OptionError, VolumeError

__all__ = ["PETParams", "PETSimulation", "simulate_pet"]

F32 = npt.NDArray[np.float32]

MU_WATER_511_PER_MM = 0.0096
#: SUV below which a voxel is outside the body when building the mu-map.
BODY_SUV_THRESHOLD = 0.02
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass(frozen=True)
class PETSimulation:
    """Reconstructions on the input grid, SUV, float32 ``(z, y, x)``.

    ``full`` is the full-dose image, ``low[drf]`` the image at dose fraction ``1/drf``;
    ``trues_per_slice`` is the mean expected full-dose true count per slice; ``expected`` (only
    with ``noise_free=True``) the reconstruction of the noise-free full-dose sinogram.
    """

    full: F32
    low: dict[int, F32]
    params: PETParams
    trues_per_slice: float = field(default=0.0)
    expected: F32 | None = None


def _validate(suv: np.ndarray, spacing_mm: tuple[float, float, float], drfs: Sequence[int]) -> None:
    if not isinstance(suv, np.ndarray) or suv.ndim != 3 or min(suv.shape[1:]) < 8:
        raise VolumeError(
            f"suv must be a 3D (z, y, x) array of at least 8 x 8 pixels per slice, got shape "
            f"{getattr(suv, 'shape', None)}: pass the SUV map."
        )
    if not np.all(np.isfinite(suv)) or float(suv.min()) < 0:
        raise VolumeError("suv must be finite and >= 0, got NaN, inf or negative voxels: clip the SUV map.")
    if len(spacing_mm) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing_mm):
        raise VolumeError(
            f"spacing_mm must be three positive finite numbers (x, y, z), got {spacing_mm!r}: "
            "pass the voxel size in millimetres."
        )
    ok = all(isinstance(d, int | np.integer) and 1 <= int(d) <= 10000 for d in drfs)
    if not ok or len(set(drfs)) != len(drfs):
        raise OptionError(
            f"drfs must be distinct integers in [1, 10000], got {tuple(drfs)!r}: "
            "pass dose reduction factors such as (4, 10, 20, 50, 100)."
        )


def _resample(vol: F32, shape_yx: tuple[int, int]) -> F32:
    """Linear resampling in-plane to ``shape_yx`` over the same field of view (pixel edges aligned)."""
    zoom = (1.0, shape_yx[0] / vol.shape[1], shape_yx[1] / vol.shape[2])
    out = ndimage.zoom(vol, zoom, order=1, mode="nearest", grid_mode=True, prefilter=False)
    return np.asarray(out, dtype=np.float32)


def _osem(
    counts: F32,
    model: F32,
    background: F32,
    mats: list[tuple[sp.csr_matrix, sp.csr_matrix, slice]],
    n_pix: int,
    iterations: int,
) -> F32:
    """OSEM for all columns at once: ``E[counts] = model * (A x) + background``."""
    x = np.ones((n_pix, counts.shape[1]), dtype=np.float32)
    sens = [np.asarray(at @ model[rows]) for _, at, rows in mats]
    tiny = np.float32(1e-12)
    for _ in range(iterations):
        for (a, at, rows), s in zip(mats, sens, strict=True):
            fp = np.asarray(a @ x)
            ratio = model[rows] * counts[rows] / np.maximum(model[rows] * fp + background, tiny)
            x *= np.asarray(at @ ratio) / np.maximum(s, tiny)
    return x


def simulate_pet(
    suv: np.ndarray,
    spacing_mm: tuple[float, float, float],
    rng: np.random.Generator,
    drfs: Sequence[int] = (4, 10, 20, 50, 100),
    params: PETParams | None = None,
    *,
    noise_free: bool = False,
) -> PETSimulation:
    """Simulate full-dose and low-dose PET reconstructions of one SUV map.

    Parameters
    ----------
    suv
        ``(z, y, x)`` true SUVbw map (>= 0); 0 is outside the body.
    spacing_mm
        Voxel size ``(x, y, z)`` in mm.
    rng
        Source of all randomness (protocol draw when ``params`` is None, and noise).
    drfs
        Dose reduction factors; one low-dose image per factor.
    params
        Protocol; ``None`` draws :meth:`PETParams.random`.
    noise_free
        Also reconstruct the expected (noise-free) full-dose sinogram, the image an ideal
        denoiser would aim at. It draws nothing from ``rng``: ``full`` and ``low`` are unchanged.

    Returns
    -------
    PETSimulation
        Full-dose and low-dose SUV images on the input grid.
    """
    _validate(suv, spacing_mm, drfs)
    p = params if params is not None else PETParams.random(rng)
    nz, ny, nx = suv.shape
    dx, dy, dz = (float(s) for s in spacing_mm)
    conc = suv.astype(np.float32) * np.float32(p.kbq_ml_per_suv)
    if p.psf_fwhm_mm > 0:
        sig = p.psf_fwhm_mm * _FWHM_TO_SIGMA
        # axially the body continues beyond the volume; in-plane, outside is air
        conc = ndimage.gaussian_filter(
            conc, sigma=(sig / dz, sig / dy, sig / dx), mode=("nearest", "constant", "constant")
        )
    py, px = max(8, round(ny * dy / p.pixel_mm)), max(8, round(nx * dx / p.pixel_mm))
    pdx, pdy = nx * dx / px, ny * dy / py
    conc_pet = _resample(conc, (py, px))
    stack = np.ascontiguousarray(conc_pet.reshape(nz, -1).T)

    ds = min(pdx, pdy)
    n_bins = math.ceil(math.hypot(px * pdx, py * pdy) / ds) + 1
    theta = np.asarray(np.arange(p.n_angles) * (math.pi / p.n_angles), dtype=np.float64)
    s_mm = proj.detector_u_mm(n_bins, ds)
    a_mat = proj.parallel_matrix((py, px), (pdx, pdy), theta, s_mm)

    if p.attenuation:
        body = _resample(suv.astype(np.float32), (py, px)) > BODY_SUV_THRESHOLD
        body = np.stack([ndimage.binary_fill_holes(b) for b in body])
        mu = np.ascontiguousarray((body.reshape(nz, -1).T * MU_WATER_511_PER_MM).astype(np.float32))
        att = np.exp(-(a_mat @ mu)).astype(np.float32)
    else:
        att = np.ones((a_mat.shape[0], nz), dtype=np.float32)
    kappa = p.sensitivity_cps_per_kbq * p.frame_s * ds * dz / (1000.0 * p.n_angles)
    model1 = att * np.float32(kappa)
    trues = model1 * np.asarray(a_mat @ stack)
    trues_per_slice = trues.sum(axis=0)
    bg1 = (p.background_fraction * trues_per_slice / a_mat.shape[0]).astype(np.float32)

    levels = [1, *[int(d) for d in drfs]]
    columns = [rng.poisson((trues + bg1) / d).astype(np.float32) for d in levels]
    if noise_free:  # appended after the draws, so the noisy images are those of noise_free=False
        columns.append((trues + bg1).astype(np.float32))
        levels.append(1)
    counts = np.concatenate(columns, axis=1)
    model = np.concatenate([model1 / np.float32(d) for d in levels], axis=1)
    background = np.concatenate([bg1 / np.float32(d) for d in levels])[None, :]

    n_bins_angle = n_bins
    mats: list[tuple[sp.csr_matrix, sp.csr_matrix, slice]] = []
    order = np.concatenate([np.arange(s, p.n_angles, p.subsets) for s in range(p.subsets)])
    rays = (order[:, None] * n_bins_angle + np.arange(n_bins_angle)[None, :]).ravel()
    a_sorted = a_mat[rays]
    counts, model = counts[rays], model[rays]
    per = a_mat.shape[0] // p.subsets
    for s in range(p.subsets):
        rows = slice(s * per, (s + 1) * per)
        sub = a_sorted[rows]
        mats.append((sub, sub.T.tocsr(), rows))
    x = _osem(counts, model, background, mats, py * px, p.iterations)

    vol = x.T.reshape(len(levels) * nz, py, px).reshape(len(levels), nz, py, px)
    if p.postfilter_fwhm_mm > 0:
        sig = p.postfilter_fwhm_mm * _FWHM_TO_SIGMA
        vol = ndimage.gaussian_filter(vol, sigma=(0, sig / dz, sig / pdy, sig / pdx), mode="nearest")
    out = [_resample(v, (ny, nx)) / np.float32(p.kbq_ml_per_suv) for v in vol]
    if not all(np.all(np.isfinite(o)) for o in out):
        raise NumericError("simulate_pet produced NaN or inf SUV: check suv for extreme values (> 1e6).")
    expected = out.pop() if noise_free else None
    low = {int(d): o for d, o in zip(drfs, out[1:], strict=True)}
    return PETSimulation(
        full=out[0], low=low, params=p, trues_per_slice=float(trues_per_slice.mean()), expected=expected
    )
