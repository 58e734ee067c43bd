"""Physics-based cone-beam CT (CBCT) simulation from a planning CT in HU.

Pipeline (per subject, all slices at once; see ``docs/simulation_physics.md``):

1. HU -> water-equivalent and cortical-bone densities (:func:`decompose_hu`).
2. Fan-beam forward projection per slice (divergent source at ``sid_mm``, flat detector
   covering ``fov_mm`` at the isocentre) over ``n_views`` views spread on ``arc_deg``.
3. Polychromatic primary transmission (Kramers spectrum through ``filter_mm_al``):
   beam hardening that differs between soft tissue and bone (cupping, dark bands).
4. Scatter: ``S = spr * G_sigma (x) (T * l / 200 mm)`` on the 2D detector (u, z), with ``l``
   the water-equivalent path: smooth, grows with object size (shading, HU shifts).
5. Poisson noise on detected counts ``i0 * (T + S)``, ``i0 = i0_per_mm2 * du * dz`` per bin;
   log with a one-count floor.
6. FBP (cosine weight, Parker short-scan weights, apodised ramp, distance-weighted
   backprojection), no scatter or beam-hardening correction; HU from a water calibration
   at ``calibration_water_mm``. Outside the reconstructed field of view: -1000 HU (air).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter

from models.simulation import projector as proj
from models.simulation.cbct_params import CBCTParams
from models.simulation.cbct_spectrum import (
    E_REF_KEV,
    decompose_hu,
    mass_attenuation,
    mu_water_per_mm,
    polychromatic_transmission,
    spectrum,
    water_calibration_mu_per_mm,
)
from service.errors import NumericError, VolumeError

__all__ = ["OUTSIDE_FOV_HU", "CBCTParams", "fov_mask", "fov_radius_mm", "scatter_intensity", "simulate_cbct"]

F32 = npt.NDArray[np.float32]

#: HU written outside the reconstructed field of view.
OUTSIDE_FOV_HU = -1000.0
#: Water path (mm) at which the scatter-to-primary ratio equals ``scatter_spr``.
SCATTER_REF_WATER_MM = 200.0


def _validate_input(ct_hu: np.ndarray, spacing_mm: tuple[float, float, float]) -> None:
    if not isinstance(ct_hu, np.ndarray) or ct_hu.ndim != 3 or min(ct_hu.shape[1:]) < 8:
        shape = getattr(ct_hu, "shape", None)
        raise VolumeError(
            f"ct_hu must be a 3D (z, y, x) array of at least 8 x 8 pixels per slice, got shape {shape}: "
            "pass the CT volume."
        )
    if not np.all(np.isfinite(ct_hu)):
        raise VolumeError("ct_hu must be finite, got NaN or inf voxels: clean the CT before simulating.")
    if len(spacing_mm) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing_mm):
        raise VolumeError(
            f"spacing_mm must be three positive finite numbers (x, y, z), got {spacing_mm!r}: "
            "pass the voxel size in millimetres."
        )


def simulate_cbct(
    ct_hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    rng: np.random.Generator,
    params: CBCTParams | None = None,
) -> F32:
    """Simulate a raw clinical CBCT of a CT volume.

    Parameters
    ----------
    ct_hu
        ``(z, y, x)`` CT in HU. The isocentre is the centre of each slice.
    spacing_mm
        Voxel size ``(x, y, z)`` in mm.
    rng
        Source of all randomness (protocol draw when ``params`` is None, and noise).
    params
        Acquisition settings; ``None`` draws :meth:`CBCTParams.random`.

    Returns
    -------
    numpy.ndarray
        float32 ``(z, y, x)`` CBCT in HU on the same grid; -1000 outside the field of view.
    """
    _validate_input(ct_hu, spacing_mm)
    p = params if params is not None else CBCTParams.random(rng)
    nz, ny, nx = ct_hu.shape
    dx, dy, dz = (float(s) for s in spacing_mm)
    du = p.det_spacing_mm if p.det_spacing_mm is not None else min(dx, dy)
    n_det = max(8, math.ceil(p.fov_mm / du))
    u = proj.detector_u_mm(n_det, du)
    arc = math.radians(p.arc_deg)
    dbeta = arc / p.n_views
    beta_rel = np.asarray((np.arange(p.n_views) + 0.5) * dbeta, dtype=np.float64)
    beta = beta_rel + math.radians(p.start_deg)

    water, bone = decompose_hu(ct_hu.astype(np.float32))
    stack = np.concatenate([water.reshape(nz, -1).T, bone.reshape(nz, -1).T], axis=1)
    line = proj.fan_forward(np.ascontiguousarray(stack), (ny, nx), (dx, dy), beta, u, p.sid_mm)
    line *= np.float32(0.1)  # g/cm^3 * mm -> g/cm^2
    lw, lb = line[..., :nz], line[..., nz:]
    ref_path = (
        np.float32(mass_attenuation("water", E_REF_KEV)) * lw
        + np.float32(mass_attenuation("bone", E_REF_KEV)) * lb
    )
    if p.polychromatic:
        energies, weights = spectrum(p.kvp, p.filter_mm_al)
        primary = polychromatic_transmission(lw, lb, energies, weights)
        mu_cal = water_calibration_mu_per_mm(energies, weights, p.calibration_water_mm)
    else:
        primary = np.asarray(np.exp(-ref_path), dtype=np.float32)
        mu_cal = mu_water_per_mm(E_REF_KEV)
    del line, lw, lb

    signal = primary
    if p.scatter_spr > 0:
        water_mm = np.asarray(ref_path / mu_water_per_mm(E_REF_KEV), dtype=np.float32)
        signal = np.asarray(primary + scatter_intensity(primary, water_mm, p, du, dz), dtype=np.float32)
    if p.i0_per_mm2 is not None:
        i0 = p.i0_per_mm2 * du * dz  # photons per detector bin and view
        counts = rng.poisson(i0 * signal.astype(np.float64))
        signal = (np.maximum(counts, 1.0) / i0).astype(np.float32)
    sino = -np.log(np.maximum(signal, np.float32(1e-30)))

    gamma = np.arctan(u / p.sid_mm)
    if p.arc_deg >= 360.0 - 1e-9:
        weight = np.full((p.n_views, n_det), 0.5)
    else:
        weight = proj.parker_weights(beta_rel, gamma, arc)
    weight *= (p.sid_mm / np.sqrt(p.sid_mm**2 + u**2))[None, :]
    sino *= weight.astype(np.float32)[:, :, None]
    pad = round(p.truncation_taper_mm / du)
    filtered = proj.ramp_filter(sino, du, p.recon_filter, pad_bins=pad, axis=1)

    xy = proj.pixel_centres_mm((ny, nx), (dx, dy))
    r_fov = fov_radius_mm(p, du)
    inside = np.hypot(xy[:, 0], xy[:, 1]) <= r_fov  # same rule as fov_mask
    mu = _backproject_voxels(filtered, xy[inside], (dx, dy), p.recon_oversample, beta, u, p, dbeta)
    out = np.full((ny * nx, nz), OUTSIDE_FOV_HU, dtype=np.float32)
    out[inside] = 1000.0 * (mu - mu_cal) / mu_cal
    result = np.ascontiguousarray(out.T.reshape(nz, ny, nx))
    if not np.all(np.isfinite(result)):
        raise NumericError(
            "simulate_cbct produced NaN or inf HU: check ct_hu for extreme values (e.g. > 30000 HU) "
            "and that i0_per_mm2 is not tiny."
        )
    return result


def _backproject_voxels(
    filtered: F32,
    centres_mm: npt.NDArray[np.float64],
    spacing_xy_mm: tuple[float, float],
    k: int,
    beta: npt.NDArray[np.float64],
    u: npt.NDArray[np.float64],
    params: CBCTParams,
    dbeta: float,
) -> F32:
    """Backprojection averaged over ``k x k`` sub-pixel centres of each voxel ``(n_vox, n_cols)``."""
    if k == 1:
        return proj.fan_backproject(filtered, centres_mm, beta, u, params.sid_mm, dbeta)
    steps = ((np.arange(k) + 0.5) / k - 0.5)[:, None] * np.asarray(spacing_xy_mm)[None, :]
    total = np.zeros((centres_mm.shape[0], filtered.shape[2]), dtype=np.float32)
    for oy in steps[:, 1]:
        for ox in steps[:, 0]:
            shifted = centres_mm + np.array([ox, oy])
            total += proj.fan_backproject(filtered, shifted, beta, u, params.sid_mm, dbeta)
    return np.asarray(total / np.float32(k * k), dtype=np.float32)


def scatter_intensity(primary: F32, water_mm: F32, params: CBCTParams, du_mm: float, dz_mm: float) -> F32:
    """Scatter reaching the detector, relative to the unattenuated beam.

    ``S = scatter_spr * G (x) (P * l / 200 mm)``: each ray scatters in proportion to its
    transmitted primary ``P`` times its water-equivalent path ``l`` (single-scatter
    approximation), spread by a Gaussian of ``scatter_sigma_mm`` (at the detector) over
    the detector's two axes ``(u, z)``. Behind a wide 200 mm water slab ``S / P`` equals
    ``scatter_spr``; for finite objects it rises with their size.

    Parameters
    ----------
    primary, water_mm
        ``(n_views, n_det, n_z)`` primary transmission and water-equivalent path (mm).
    du_mm, dz_mm
        Detector bin and slice spacing at the isocentre (mm).
    """
    sigma_iso = params.scatter_sigma_mm * params.sid_mm / params.sdd_mm
    source = primary * water_mm * np.float32(params.scatter_spr / SCATTER_REF_WATER_MM)
    out = gaussian_filter(
        source,
        sigma=(0.0, sigma_iso / du_mm, sigma_iso / dz_mm),
        mode=("nearest", "constant", "nearest"),
        truncate=3.0,
    )
    return np.asarray(out, dtype=np.float32)


def fov_radius_mm(params: CBCTParams, det_spacing_mm: float) -> float:
    """Radius (mm) of the reconstructed field of view for ``params`` and a detector bin size."""
    du = params.det_spacing_mm if params.det_spacing_mm is not None else det_spacing_mm
    n_det = max(8, math.ceil(params.fov_mm / du))
    u_max = (n_det - 1) / 2.0 * du
    return params.sid_mm * math.sin(math.atan(u_max / params.sid_mm)) - du / 2.0


def fov_mask(
    shape_zyx: tuple[int, int, int], spacing_mm: tuple[float, float, float], params: CBCTParams
) -> np.ndarray:
    """Boolean ``(z, y, x)`` mask of the voxels :func:`simulate_cbct` reconstructs (inside the FOV).

    Outside it the CBCT holds :data:`OUTSIDE_FOV_HU`, which is not a measurement: use this
    mask to exclude those voxels from losses and metrics.
    """
    nz, ny, nx = shape_zyx
    dx, dy = float(spacing_mm[0]), float(spacing_mm[1])
    xy = proj.pixel_centres_mm((ny, nx), (dx, dy))
    inside = np.hypot(xy[:, 0], xy[:, 1]) <= fov_radius_mm(params, min(dx, dy))
    return np.broadcast_to(inside.reshape(1, ny, nx), (nz, ny, nx)).copy()
