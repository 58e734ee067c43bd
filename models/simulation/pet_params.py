"""Acquisition and reconstruction protocol of the PET simulator (:class:`PETParams`).

Ranges and sources are in ``docs/simulation_physics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from service.errors import OptionError

F18_HALF_LIFE_MIN = 109.77


def _check(ok: bool, name: str, expect: str, value: object, fix: str) -> None:
    if not ok:
        raise OptionError(f"{name} must be {expect}, got {value!r}: {fix}")


@dataclass(frozen=True)
class PETParams:
    """Acquisition and reconstruction settings of one simulated PET (validated on creation).

    Attributes
    ----------
    psf_fwhm_mm : scanner resolution (mm FWHM, isotropic). pixel_mm : reconstruction pixel.
    n_angles : sinogram angles over 180 deg; subsets must divide it.
    iterations, subsets : OSEM settings. postfilter_fwhm_mm : Gaussian post-filter (0 = none).
    injected_mbq_per_kg : injected 18F-FDG activity per body mass. uptake_min : injection to scan.
    sensitivity_cps_per_kbq : effective sensitivity, trues per second per kBq in the slice before
        attenuation, including the noise-equivalent gain of time of flight (NEMA NU 2 sensitivity
        x TOF gain, about 30-150 cps/kBq for current scanners; non-TOF 2D equivalent counts).
    frame_s : acquisition time per bed position (s) at full dose.
    background_fraction : randoms + scatter counts per true count (uniform over the sinogram).
    attenuation : model photon attenuation (and correct it in the reconstruction).
    """

    psf_fwhm_mm: float = 5.0
    pixel_mm: float = 4.0
    n_angles: int = 96
    iterations: int = 3
    subsets: int = 12
    postfilter_fwhm_mm: float = 4.0
    injected_mbq_per_kg: float = 3.5
    uptake_min: float = 60.0
    sensitivity_cps_per_kbq: float = 50.0
    frame_s: float = 150.0
    background_fraction: float = 0.4
    attenuation: bool = True

    def __post_init__(self) -> None:
        _check(
            0 <= self.psf_fwhm_mm <= 20,
            "psf_fwhm_mm",
            "in [0, 20] mm",
            self.psf_fwhm_mm,
            "pass the scanner resolution, e.g. 5.",
        )
        _check(
            0.5 <= self.pixel_mm <= 10,
            "pixel_mm",
            "in [0.5, 10] mm",
            self.pixel_mm,
            "pass the reconstruction pixel size, e.g. 4.",
        )
        _check(
            isinstance(self.n_angles, int) and 8 <= self.n_angles <= 1000,
            "n_angles",
            "an integer in [8, 1000]",
            self.n_angles,
            "pass e.g. 96.",
        )
        _check(
            isinstance(self.iterations, int) and 1 <= self.iterations <= 50,
            "iterations",
            "an integer in [1, 50]",
            self.iterations,
            "pass e.g. 3.",
        )
        _check(
            isinstance(self.subsets, int) and self.subsets >= 1 and self.n_angles % self.subsets == 0,
            "subsets",
            f"a positive divisor of n_angles={self.n_angles}",
            self.subsets,
            "pick a divisor, e.g. 8, 12 or 16 for 96 angles.",
        )
        _check(
            0 <= self.postfilter_fwhm_mm <= 20,
            "postfilter_fwhm_mm",
            "in [0, 20] mm",
            self.postfilter_fwhm_mm,
            "pass 0 for no post-filter.",
        )
        _check(
            0.1 <= self.injected_mbq_per_kg <= 20,
            "injected_mbq_per_kg",
            "in [0.1, 20]",
            self.injected_mbq_per_kg,
            "pass the injected activity per kg, e.g. 3.5.",
        )
        _check(
            0 <= self.uptake_min <= 600,
            "uptake_min",
            "in [0, 600] min",
            self.uptake_min,
            "pass the time from injection to scan.",
        )
        _check(
            0.01 <= self.sensitivity_cps_per_kbq <= 1000,
            "sensitivity_cps_per_kbq",
            "in [0.01, 1000]",
            self.sensitivity_cps_per_kbq,
            "pass e.g. 50 (NEMA sensitivity x TOF gain).",
        )
        _check(1 <= self.frame_s <= 3600, "frame_s", "in [1, 3600] s", self.frame_s, "pass e.g. 150.")
        _check(
            0 <= self.background_fraction <= 5,
            "background_fraction",
            "in [0, 5]",
            self.background_fraction,
            "pass randoms+scatter per true, e.g. 0.4.",
        )

    @classmethod
    def random(cls, rng: np.random.Generator) -> PETParams:
        """Draw a clinically plausible 18F-FDG protocol (ranges in docs/simulation_physics.md)."""
        return cls(
            psf_fwhm_mm=float(rng.uniform(4.0, 6.0)),
            pixel_mm=float(rng.uniform(3.0, 4.5)),
            iterations=int(rng.integers(2, 5)),
            subsets=int(rng.choice([8, 12, 16])),
            postfilter_fwhm_mm=float(rng.uniform(3.0, 6.0)),
            injected_mbq_per_kg=float(rng.uniform(2.5, 4.5)),
            uptake_min=float(rng.uniform(55.0, 75.0)),
            sensitivity_cps_per_kbq=float(rng.uniform(25.0, 100.0)),
            frame_s=float(rng.uniform(90.0, 180.0)),
            background_fraction=float(rng.uniform(0.2, 0.8)),
        )

    @property
    def kbq_ml_per_suv(self) -> float:
        """Activity concentration (kBq/ml) at scan time of SUV 1."""
        return self.injected_mbq_per_kg * math.exp(-math.log(2.0) * self.uptake_min / F18_HALF_LIFE_MIN)
