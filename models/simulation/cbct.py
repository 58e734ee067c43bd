"""Physics-based cone-beam CT (CBCT) simulation from a planning CT in HU.

Pipeline (per subject, all slices at once; see ``docs/simulation_physics.md``):

1. HU -> water-equivalent and cortical-bone densities (:func:`decompose_hu`).
2. Fan-beam forward projection per slice (divergent source at ``sid_mm``, flat detector
   covering ``fov_mm`` at the isocentre) over ``n_views`` views spread on ``arc_deg``.
3. Polychromatic primary transmission (Kramers spectrum through ``filter_mm_al``):
   beam hardening that differs between soft tissue and bone (cupping, dark bands).
4. Scatter: ``S = spr * G_sigma (x) (T * l / 200 mm)`` on the 2D detector (u, z), with ``l``
   the water-equivalent path: smooth, grows with object size (shading, HU shifts).
5. Poisson noise on detected counts ``i0_photons * (T + S)``; log with a one-count floor.
6. FBP (cosine weight, Parker short-scan weights, apodised ramp, distance-weighted
   backprojection), no scatter or beam-hardening correction; HU from a water calibration
   at ``calibration_water_mm``. Outside the reconstructed field of view: -1000 HU (air).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter

from models.simulation import projector as proj
from models.simulation.cbct_spectrum import (
    E_REF_KEV,
    decompose_hu,
    mass_attenuation,
    mu_water_per_mm,
    polychromatic_transmission,
    spectrum,
    water_calibration_mu_per_mm,
)
from service.errors import NumericError, OptionError, VolumeError

F32 = npt.NDArray[np.float32]

#: HU written outside the reconstructed field of view.
OUTSIDE_FOV_HU = -1000.0
#: Water path (mm) at which the scatter-to-primary ratio equals ``scatter_spr``.
SCATTER_REF_WATER_MM = 200.0

ReconFilter = Literal["ram-lak", "shepp-logan", "hann"]


def _check(ok: bool, name: str, expect: str, value: object, fix: str) -> None:
    if not ok:
        raise OptionError(f"{name} must be {expect}, got {value!r}: {fix}")


@dataclass(frozen=True)
class CBCTParams:
    """Acquisition and reconstruction settings of one simulated CBCT (validated on creation).

    Attributes
    ----------
    n_views : projections over the arc (clinical kV CBCT: 300-900; fewer gives streaks).
    arc_deg : gantry arc (deg), from ``180 + fan angle`` (short scan) to 360.
    start_deg : source angle of the first view (deg).
    sid_mm, sdd_mm : source-isocentre and source-detector distances (mm).
    fov_mm : detector width projected to the isocentre (mm); sets the truncation.
    det_spacing_mm : detector bin at the isocentre (mm); ``None`` = the in-plane voxel size.
    kvp : tube voltage (kV). filter_mm_al : total filtration (mm Al equivalent); less
        filtration = stronger beam hardening. polychromatic : False = monochromatic at 70 keV.
    scatter_spr : scatter-to-primary ratio behind 200 mm of water (0 = no scatter).
    scatter_sigma_mm : Gaussian scatter kernel width at the detector (mm).
    i0_photons : unattenuated photons per detector bin and view (``None`` = noise-free).
    recon_filter : ramp apodisation. calibration_water_mm : water-phantom path of the HU
        calibration. truncation_taper_mm : cosine extrapolation of truncated projections.
    """

    n_views: int = 200
    arc_deg: float = 360.0
    start_deg: float = 0.0
    sid_mm: float = 1000.0
    sdd_mm: float = 1500.0
    fov_mm: float = 260.0
    det_spacing_mm: float | None = None
    kvp: float = 120.0
    filter_mm_al: float = 4.0
    polychromatic: bool = True
    scatter_spr: float = 0.5
    scatter_sigma_mm: float = 60.0
    i0_photons: float | None = 5.0e4
    recon_filter: ReconFilter = "hann"
    calibration_water_mm: float = 200.0
    truncation_taper_mm: float = 40.0

    def __post_init__(self) -> None:
        _check(
            isinstance(self.n_views, int) and 8 <= self.n_views <= 2000,
            "n_views",
            "an integer in [8, 2000]",
            self.n_views,
            "pass the number of projections.",
        )
        _check(math.isfinite(self.start_deg), "start_deg", "finite", self.start_deg, "pass an angle in deg.")
        _check(
            0 < self.sid_mm < self.sdd_mm <= 3000,
            "sid_mm/sdd_mm",
            "0 < sid_mm < sdd_mm <= 3000",
            (self.sid_mm, self.sdd_mm),
            "pass e.g. sid_mm=1000, sdd_mm=1500.",
        )
        _check(
            20 <= self.fov_mm < 1.5 * self.sid_mm,
            "fov_mm",
            "in [20, 1.5 * sid_mm)",
            self.fov_mm,
            "pass the detector width at the isocentre in mm, e.g. 260.",
        )
        min_arc = 180.0 + self.fan_angle_deg
        _check(
            min_arc <= self.arc_deg <= 360.0,
            "arc_deg",
            f"in [{min_arc:.1f}, 360] (180 + fan angle)",
            self.arc_deg,
            "widen the arc or reduce fov_mm.",
        )
        _check(
            self.det_spacing_mm is None or 0.1 <= self.det_spacing_mm <= 10,
            "det_spacing_mm",
            "None or in [0.1, 10] mm",
            self.det_spacing_mm,
            "pass the bin size at the isocentre.",
        )
        _check(40 <= self.kvp <= 150, "kvp", "in [40, 150] kV", self.kvp, "pass the tube voltage.")
        _check(
            0 <= self.filter_mm_al <= 30,
            "filter_mm_al",
            "in [0, 30] mm",
            self.filter_mm_al,
            "pass the total filtration in mm Al.",
        )
        _check(
            0 <= self.scatter_spr <= 5,
            "scatter_spr",
            "in [0, 5]",
            self.scatter_spr,
            "pass a scatter-to-primary ratio, 0 to switch scatter off.",
        )
        _check(
            1 <= self.scatter_sigma_mm <= 500,
            "scatter_sigma_mm",
            "in [1, 500] mm",
            self.scatter_sigma_mm,
            "pass the kernel width at the detector.",
        )
        _check(
            self.i0_photons is None or 10 <= self.i0_photons <= 1e9,
            "i0_photons",
            "None or in [10, 1e9]",
            self.i0_photons,
            "pass photons per bin, or None for no noise.",
        )
        _check(
            self.recon_filter in proj.RECON_FILTERS,
            "recon_filter",
            f"one of {proj.RECON_FILTERS}",
            self.recon_filter,
            "pass one of these names.",
        )
        _check(
            10 <= self.calibration_water_mm <= 500,
            "calibration_water_mm",
            "in [10, 500] mm",
            self.calibration_water_mm,
            "pass the calibration phantom's diameter.",
        )
        _check(
            0 <= self.truncation_taper_mm <= 500,
            "truncation_taper_mm",
            "in [0, 500] mm",
            self.truncation_taper_mm,
            "pass 0 to switch the extrapolation off.",
        )

    @property
    def fan_angle_deg(self) -> float:
        """Full fan angle (deg) of the detector."""
        return 2.0 * math.degrees(math.atan(self.fov_mm / 2.0 / self.sid_mm))

    @classmethod
    def ideal(cls, n_views: int = 360, fov_mm: float = 260.0) -> CBCTParams:
        """All physics off (monochromatic, no scatter, no noise, ramp filter): validates the projector."""
        return cls(
            n_views=n_views,
            fov_mm=fov_mm,
            polychromatic=False,
            scatter_spr=0.0,
            i0_photons=None,
            recon_filter="ram-lak",
        )

    @classmethod
    def random(cls, rng: np.random.Generator) -> CBCTParams:
        """Draw a clinically plausible kV CBCT protocol (ranges in docs/simulation_physics.md)."""
        sid = 1000.0
        sdd = float(rng.choice([1500.0, 1536.0]))
        fov = float(rng.uniform(250.0, 270.0))
        full = bool(rng.random() < 0.5)
        arc = 360.0 if full else float(rng.uniform(200.0, 360.0))
        return cls(
            n_views=int(rng.integers(90, 361)),
            arc_deg=arc,
            start_deg=float(rng.uniform(0.0, 360.0)),
            sid_mm=sid,
            sdd_mm=sdd,
            fov_mm=fov,
            kvp=float(rng.choice([100.0, 110.0, 120.0, 125.0])),
            filter_mm_al=float(rng.uniform(2.5, 8.0)),
            scatter_spr=float(rng.uniform(0.15, 1.0)),
            scatter_sigma_mm=float(rng.uniform(40.0, 100.0)),
            i0_photons=float(np.exp(rng.uniform(np.log(1e4), np.log(1e5)))),
            recon_filter="hann" if rng.random() < 0.7 else "shepp-logan",
        )


def _validate_input(ct_hu: np.ndarray, spacing_mm: tuple[float, float, float]) -> None:
    if not isinstance(ct_hu, np.ndarray) or ct_hu.ndim != 3 or min(ct_hu.shape) < 2:
        shape = getattr(ct_hu, "shape", None)
        raise VolumeError(f"ct_hu must be a 3D (z, y, x) array, got shape {shape}: pass the CT volume.")
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
    if p.i0_photons is not None:
        counts = rng.poisson(p.i0_photons * signal.astype(np.float64))
        signal = (np.maximum(counts, 1.0) / p.i0_photons).astype(np.float32)
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
    inside = np.hypot(xy[:, 0], xy[:, 1]) <= r_fov
    mu = proj.fan_backproject(filtered, xy[inside], beta, u, p.sid_mm, dbeta)
    out = np.full((ny * nx, nz), OUTSIDE_FOV_HU, dtype=np.float32)
    out[inside] = 1000.0 * (mu - mu_cal) / mu_cal
    result = np.ascontiguousarray(out.T.reshape(nz, ny, nx))
    if not np.all(np.isfinite(result)):
        raise NumericError(
            "simulate_cbct produced NaN or inf HU: check ct_hu for extreme values (e.g. > 30000 HU) "
            "and that i0_photons is not tiny."
        )
    return result


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
