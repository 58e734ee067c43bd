"""Acquisition and reconstruction protocol of the CBCT simulator (:class:`CBCTParams`).

Ranges and sources are in ``docs/simulation_physics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from models.simulation.projector import RECON_FILTERS
from service.errors import OptionError

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
    i0_per_mm2 : unattenuated detected photons per mm^2 of detector (projected to the isocentre)
        and view; a bin gets ``i0_per_mm2 * du * dz`` (``None`` = noise-free).
    recon_filter : ramp apodisation. calibration_water_mm : water-phantom path of the HU
        calibration. truncation_taper_mm : cosine extrapolation of truncated projections.
    recon_oversample : reconstruct each voxel at ``k x k`` in-plane sub-pixel centres and
        average them (1 = at the voxel centre only). With ``det_spacing_mm`` = voxel / ``k``
        this is a clinical scanner's reconstruction at voxel / ``k``, resampled to the voxel.
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
    i0_per_mm2: float | None = 6.0e3
    recon_filter: ReconFilter = "hann"
    calibration_water_mm: float = 200.0
    truncation_taper_mm: float = 40.0
    recon_oversample: int = 1

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
            self.i0_per_mm2 is None or 1 <= self.i0_per_mm2 <= 1e9,
            "i0_per_mm2",
            "None or in [1, 1e9]",
            self.i0_per_mm2,
            "pass photons per mm^2 at the isocentre, or None for no noise.",
        )
        _check(
            self.recon_filter in RECON_FILTERS,
            "recon_filter",
            f"one of {RECON_FILTERS}",
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
        _check(
            isinstance(self.recon_oversample, int) and 1 <= self.recon_oversample <= 4,
            "recon_oversample",
            "an integer in [1, 4]",
            self.recon_oversample,
            "pass 1 to reconstruct at the voxel centres, 2 for a grid twice as fine.",
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
            i0_per_mm2=None,
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
            i0_per_mm2=float(np.exp(rng.uniform(np.log(1.5e3), np.log(5e4)))),
            recon_filter="hann" if rng.random() < 0.7 else "shepp-logan",
            truncation_taper_mm=float(rng.uniform(30.0, 100.0)),
        )
