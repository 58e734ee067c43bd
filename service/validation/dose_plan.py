"""Beams, plans and the analytic 6 MV beam model of :mod:`service.validation.dose_calc`.

Geometry (IEC 61217 gantry angles, couch at 0, patient head first supine, so the
mapping to DICOM patient coordinates LPS is fixed):

- the source of a beam at gantry angle ``g`` sits at ``isocentre - SAD * d`` with the
  beam direction ``d = (-sin g, cos g, 0)`` in LPS: gantry 0 irradiates from anterior
  (beam towards +P), gantry 90 from the patient's left (beam towards -L);
- the beam's lateral axes are ``u = (cos g, sin g, 0)`` (in the axial plane) and
  ``v = (0, 0, 1)`` (superior); field sizes and the penumbra are defined in the
  isocentre plane, at ``SAD`` from the source.

The beam model (per unit beam weight, "MU-like"):

``D(p) = G(d_rad) * ISQ(s) * P(a) * P(b)`` with

- ``G(d) = exp(-mu d) (1 - exp(-beta d)) / G_max``: primary attenuation with an
  effective coefficient ``mu`` (scatter folded in) times an exponential build-up, as a
  function of the radiological (water-equivalent) depth ``d`` along the ray from the
  source, normalised to 1 at its maximum;
- ``ISQ(s) = (SAD / s)^2`` for a divergent beam (``s``: distance from the source along
  the central axis), 1 for a parallel beam;
- ``P(x; d) = [(1 - f) E(x; sigma_p) + f E(x; sigma_s)] / [(1 - f) E(0; sigma_p) + f E(0; sigma_s)]``
  with ``E(x; sigma) = [erf((W/2 - x) / (sqrt2 sigma)) + erf((W/2 + x) / (sqrt2 sigma))] / 2``:
  a square field of width ``W`` whose edge is an error function (the primary penumbra,
  ``sigma_p``) plus a broad component of weight ``f(d) = f0 + f1 d`` (``sigma_s``)
  standing for phantom scatter (rounded shoulders in the field, a low-dose tail outside
  it, both growing with depth); normalised to 1 on the central axis, so the central-axis
  depth dose is ``G * ISQ``; ``(a, b)`` are the point's coordinates projected to the
  isocentre plane.

Default parameters were fitted (least squares) to pyRadPlan 0.5.0's SVD photon pencil
beam with its bundled "Generic" 6 MV machine (matRad's), for a 100 mm open field on a
water cube (``bench/dose_crosscheck_pyradplan.py`` documents the run): central-axis depth
dose (rms 1.3 % of the maximum, dmax 13 mm, PDD(10 cm) at SSD 100 cm about 64 %) and
profiles at 14 to 200 mm depth (rms < 1.2 %). They do not vary with field size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.errors import OptionError

F64 = npt.NDArray[np.float64]

#: The only photon energy the model is parametrised for (MV).
SUPPORTED_ENERGIES_MV = (6.0,)


def _finite(name: str, value: object, *, low: float, high: float, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OptionError(f"{name} must be a finite number, got {value!r}: {fix}")
    if not low <= float(value) <= high:
        raise OptionError(f"{name} must be in [{low:g}, {high:g}], got {value!r}: {fix}")
    return float(value)


@dataclass(frozen=True)
class Beam:
    """One static square photon field.

    Parameters
    ----------
    gantry_deg
        IEC 61217 gantry angle in degrees, in [0, 360).
    field_size_mm
        Side of the square field in the isocentre plane (mm), 10 to 400.
    energy_mv
        Nominal energy (MV); only 6 is supported.
    """

    gantry_deg: float
    field_size_mm: float = 100.0
    energy_mv: float = 6.0

    def __post_init__(self) -> None:
        gantry = _finite("gantry_deg", self.gantry_deg, low=0.0, high=360.0, fix="pass an angle in [0, 360).")
        if gantry >= 360.0:
            raise OptionError(
                f"gantry_deg must be below 360, got {self.gantry_deg!r}: pass 0 instead of 360."
            )
        object.__setattr__(self, "gantry_deg", gantry)
        object.__setattr__(
            self,
            "field_size_mm",
            _finite("field_size_mm", self.field_size_mm, low=10.0, high=400.0, fix="pass e.g. 100 (mm)."),
        )
        energy = _finite("energy_mv", self.energy_mv, low=0.0, high=100.0, fix="pass 6.")
        if energy not in SUPPORTED_ENERGIES_MV:
            raise OptionError(
                f"energy_mv must be one of {SUPPORTED_ENERGIES_MV}, got {self.energy_mv!r}: the beam model "
                "is parametrised for 6 MV only; pass 6."
            )
        object.__setattr__(self, "energy_mv", energy)

    def direction_lps(self) -> F64:
        """Unit vector from the source to the isocentre, LPS."""
        g = math.radians(self.gantry_deg)
        return np.array([-math.sin(g), math.cos(g), 0.0])

    def lateral_axes_lps(self) -> tuple[F64, F64]:
        """Unit vectors ``u`` (axial plane) and ``v`` (superior) of the field, LPS."""
        g = math.radians(self.gantry_deg)
        return np.array([math.cos(g), math.sin(g), 0.0]), np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class BeamPlan:
    """A single-isocentre plan of static square fields.

    Parameters
    ----------
    beams
        The fields (at least one).
    isocentre_mm
        Isocentre, LPS (mm).
    prescription_gy
        Dose at the isocentre (Gy) on the CT the beam weights are computed on; each beam
        contributes an equal share there.
    """

    beams: tuple[Beam, ...]
    isocentre_mm: tuple[float, float, float]
    prescription_gy: float = 2.0

    def __post_init__(self) -> None:
        beams = tuple(self.beams)
        if not beams or not all(isinstance(b, Beam) for b in beams):
            raise OptionError(
                f"beams must be a non-empty sequence of Beam, got {self.beams!r}: pass Beam(...) items."
            )
        try:
            iso = tuple(float(v) for v in self.isocentre_mm)
        except (TypeError, ValueError):
            raise OptionError(
                f"isocentre_mm must be three numbers (x, y, z) LPS in mm, got {self.isocentre_mm!r}: "
                "pass e.g. (0.0, -20.0, 15.0)."
            ) from None
        if len(iso) != 3 or not all(math.isfinite(v) for v in iso):
            raise OptionError(
                f"isocentre_mm must be three finite numbers (x, y, z) LPS in mm, got {self.isocentre_mm!r}: "
                "pass e.g. (0.0, -20.0, 15.0)."
            )
        object.__setattr__(self, "beams", beams)
        object.__setattr__(self, "isocentre_mm", (iso[0], iso[1], iso[2]))
        object.__setattr__(
            self,
            "prescription_gy",
            _finite("prescription_gy", self.prescription_gy, low=1e-3, high=100.0, fix="pass e.g. 2 (Gy)."),
        )

    @classmethod
    def equally_spaced(
        cls,
        n_beams: int,
        isocentre_mm: Sequence[float],
        *,
        field_size_mm: float = 100.0,
        prescription_gy: float = 2.0,
        first_gantry_deg: float = 0.0,
    ) -> BeamPlan:
        """``n_beams`` coplanar fields at ``first + k * 360 / n`` degrees (4 beams: a box)."""
        if isinstance(n_beams, bool) or not isinstance(n_beams, int) or not 1 <= n_beams <= 36:
            raise OptionError(f"n_beams must be an integer in [1, 36], got {n_beams!r}: pass e.g. 4.")
        angles = [(first_gantry_deg + k * 360.0 / n_beams) % 360.0 for k in range(n_beams)]
        beams = tuple(Beam(gantry_deg=a, field_size_mm=field_size_mm) for a in angles)
        iso = tuple(float(v) for v in isocentre_mm)
        return cls(beams=beams, isocentre_mm=iso, prescription_gy=prescription_gy)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BeamModel:
    """Parameters of the analytic 6 MV model (defaults: fitted to pyRadPlan's Generic 6 MV).

    Parameters
    ----------
    mu_eff_per_mm
        Effective attenuation coefficient in water (1/mm), scatter folded in.
    buildup_per_mm
        Build-up coefficient (1/mm); with the default ``mu`` dmax is 13 mm.
    penumbra_sigma_mm
        Standard deviation (mm, isocentre plane) of the primary error-function field edge.
    scatter_fraction_surface, scatter_fraction_per_mm
        Weight of the broad (scatter) profile component: ``f0 + f1 * depth``, clipped to
        [0, 0.6]; 0 and 0 give a pure error-function edge (80 %-20 % = 1.683 sigma).
    scatter_sigma_mm
        Standard deviation (mm, isocentre plane) of the broad component.
    sad_mm
        Source-axis distance (mm).
    divergent
        True: rays diverge from the source and the inverse-square law applies; False: parallel.
    step_mm
        Ray-tracing step along the central axis (mm).
    ray_spacing_mm
        Spacing of the traced rays in the isocentre plane (mm).
    air_density
        Voxels with relative electron density below this get no dose (dose to air is not reported).
    """

    mu_eff_per_mm: float = 0.0035
    buildup_per_mm: float = 0.356
    penumbra_sigma_mm: float = 3.7
    scatter_fraction_surface: float = 0.10
    scatter_fraction_per_mm: float = 0.0011
    scatter_sigma_mm: float = 38.0
    sad_mm: float = 1000.0
    divergent: bool = True
    step_mm: float = 2.0
    ray_spacing_mm: float = 3.0
    air_density: float = 0.05

    def __post_init__(self) -> None:
        checks = (
            ("mu_eff_per_mm", 1e-5, 0.1, "pass e.g. 0.0035 (1/mm)."),
            ("buildup_per_mm", 1e-3, 10.0, "pass e.g. 0.356 (1/mm)."),
            ("penumbra_sigma_mm", 0.1, 50.0, "pass e.g. 3.7 (mm)."),
            ("scatter_fraction_surface", 0.0, 0.6, "pass e.g. 0.1, or 0 for no scatter component."),
            ("scatter_fraction_per_mm", 0.0, 0.01, "pass e.g. 0.0011 (1/mm), or 0."),
            ("scatter_sigma_mm", 1.0, 100.0, "pass e.g. 38 (mm)."),
            ("sad_mm", 500.0, 2000.0, "pass e.g. 1000 (mm)."),
            ("step_mm", 0.1, 10.0, "pass e.g. 2 (mm)."),
            ("ray_spacing_mm", 0.2, 10.0, "pass e.g. 3 (mm)."),
            ("air_density", 0.0, 0.9, "pass e.g. 0.05."),
        )
        for name, low, high, fix in checks:
            object.__setattr__(self, name, _finite(name, getattr(self, name), low=low, high=high, fix=fix))
        if not isinstance(self.divergent, bool):
            raise OptionError(f"divergent must be True or False, got {self.divergent!r}: pass a bool.")

    @property
    def has_scatter(self) -> bool:
        """Whether the profile has a broad (scatter) component."""
        return self.scatter_fraction_surface > 0.0 or self.scatter_fraction_per_mm > 0.0

    def scatter_fraction(self, depth_mm: npt.ArrayLike) -> F64:
        """Weight ``f(d)`` of the broad profile component at radiological depth ``d`` (mm)."""
        d = np.maximum(np.asarray(depth_mm, dtype=np.float64), 0.0)
        return np.clip(self.scatter_fraction_surface + self.scatter_fraction_per_mm * d, 0.0, 0.6)

    @property
    def dmax_mm(self) -> float:
        """Depth (mm, water) where :meth:`depth_dose` peaks."""
        mu, beta = self.mu_eff_per_mm, self.buildup_per_mm
        return math.log((mu + beta) / mu) / beta

    def depth_dose(self, depth_mm: npt.ArrayLike) -> F64:
        """``G(d)``: relative dose at radiological depth ``d`` (mm), 1 at :attr:`dmax_mm`, 0 at d <= 0."""
        d = np.maximum(np.asarray(depth_mm, dtype=np.float64), 0.0)
        mu, beta = self.mu_eff_per_mm, self.buildup_per_mm
        dm = self.dmax_mm
        peak = math.exp(-mu * dm) * (1.0 - math.exp(-beta * dm))
        return np.asarray(np.exp(-mu * d) * -np.expm1(-beta * d) / peak, dtype=np.float64)

    def edges(self, x_mm: npt.ArrayLike, field_size_mm: float) -> tuple[F64, F64]:
        """``E(x; sigma_p)`` and ``E(x; sigma_s)``: the primary and broad field edges (unitless)."""
        from scipy.special import erf

        x = np.asarray(x_mm, dtype=np.float64)
        half = 0.5 * field_size_mm
        out = []
        for sigma in (self.penumbra_sigma_mm, self.scatter_sigma_mm):
            scale = math.sqrt(2.0) * sigma
            edge = 0.5 * (erf((half - x) / scale) + erf((half + x) / scale))
            out.append(np.asarray(edge, dtype=np.float64))
        return out[0], out[1]

    def combine(self, primary: F64, broad: F64, depth_mm: npt.ArrayLike, field_size_mm: float) -> F64:
        """``P``: the edges of :meth:`edges` mixed by ``f(depth)``, normalised to 1 on the axis."""
        f = self.scatter_fraction(depth_mm)
        p0, b0 = self.edges(0.0, field_size_mm)
        return np.asarray(((1.0 - f) * primary + f * broad) / ((1.0 - f) * p0 + f * b0), dtype=np.float64)

    def profile(self, x_mm: npt.ArrayLike, field_size_mm: float, depth_mm: npt.ArrayLike = 100.0) -> F64:
        """``P(x; d)``: relative lateral profile at isocentre-plane offset ``x`` (mm), 1 at x = 0."""
        primary, broad = self.edges(x_mm, field_size_mm)
        return self.combine(primary, broad, depth_mm, field_size_mm)

    def lateral_extent_mm(self, field_size_mm: float) -> float:
        """Half-width (mm, isocentre plane) beyond which the profile is below 1e-3 and is taken as 0."""
        reach = 5.0 * self.penumbra_sigma_mm
        if self.has_scatter:
            reach = max(reach, 3.0 * self.scatter_sigma_mm)
        return 0.5 * field_size_mm + reach
