"""A simple photon dose calculation on a CT: ray-traced radiological depth, analytic 6 MV beam.

NOT a clinical dose engine. It exists to compare the dose of one simple plan on a CT and
on a synthetic CT (:mod:`service.validation.dose_compare`); the heterogeneity correction is
by radiological depth only (no lateral scatter transport, no electron disequilibrium at
interfaces). See ``docs/dose_calc.md`` and :mod:`service.validation.dose_plan` for the model.

Algorithm, per beam:

1. HU -> relative electron density (:mod:`service.validation.hu_density`).
2. Trace a fan of rays (divergent from the source, or parallel) on a regular grid of
   isocentre-plane positions ``(a, b)`` and distances ``s`` from the source; sample the
   density trilinearly (outside the CT: 0) and integrate it along each ray (midpoint rule)
   into the radiological depth.
3. For every CT voxel inside the field's extent, interpolate the radiological depth at its
   ``(a, b, s)`` and evaluate ``G(d_rad) * ISQ(s) * P(a) * P(b)``.

Beams are weighted so that each delivers ``prescription / n_beams`` at the isocentre of
the CT they are computed on, unless weights are given (to recompute the same plan, with
the same "monitor units", on a synthetic CT).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from service.errors import InputError, NumericError, OptionError, VolumeError
from service.validation.dose_plan import Beam, BeamModel, BeamPlan
from service.validation.hu_density import GENERIC_CURVE, HuDensityCurve, hu_to_relative_electron_density
from service.volume import Modality, Unit, Volume

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

#: Body voxels processed at a time when mapping the fans back onto the grid (bounds memory).
_CHUNK = 1_000_000


@dataclass(frozen=True)
class DoseCalculation:
    """Dose of a plan on one CT.

    Attributes
    ----------
    dose
        RT dose in Gy on the CT grid (``(z, y, x)``).
    beam_weights
        Weight of each beam (dose at the isocentre = sum of weight x unit-weight dose).
    isocentre_dose_gy
        Dose at the isocentre (Gy), from the analytic model at the traced depth (0 when the
        isocentre is in air, which only given beam weights allow).
    radiological_depth_iso_mm
        Radiological depth (mm water) of the isocentre along each beam.
    voxels_hu_clamped
        CT voxels outside the HU-density curve's range (clamped to its ends).
    """

    dose: Volume
    beam_weights: tuple[float, ...]
    isocentre_dose_gy: float
    radiological_depth_iso_mm: tuple[float, ...]
    voxels_hu_clamped: int


class _Fan:
    """Radiological depth on a grid of rays of one beam, and lookup at any LPS points."""

    def __init__(self, density: npt.NDArray[np.float32], ct: Volume, beam: Beam, iso: F64, model: BeamModel):
        self.model = model
        self.d = beam.direction_lps()
        self.u, self.v = beam.lateral_axes_lps()
        self.source = iso - model.sad_mm * self.d
        self.half = model.lateral_extent_mm(beam.field_size_mm)
        self.field = beam.field_size_mm
        n_lat = int(np.ceil(self.half / model.ray_spacing_mm))
        self.lat = model.ray_spacing_mm * np.arange(-n_lat, n_lat + 1, dtype=np.float64)
        corners = ct.index_to_lps(np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
                                  * (np.asarray(ct.size_xyz) - 1))  # fmt: skip
        along = (corners - self.source) @ self.d
        margin = 2.0 * max(ct.spacing_mm) + model.step_mm
        s_lo = max(float(along.min()) - margin, model.step_mm)
        s_hi = float(along.max()) + margin
        if s_hi <= s_lo:
            raise InputError(
                f"the CT lies behind the source of the beam at gantry {beam.gantry_deg:g} deg: "
                "check isocentre_mm, which must be inside the CT."
            )
        n_s = int(np.ceil((s_hi - s_lo) / model.step_mm)) + 1
        self.s = s_lo + model.step_mm * np.arange(n_s, dtype=np.float64)
        self.to_index = np.linalg.inv(ct.direction * np.asarray(ct.spacing_mm)[None, :])
        self.origin = np.asarray(ct.origin_mm)
        self.depth = self._trace(density)
        # the field edges, tabulated every 0.05 mm (linear interpolation error < 1e-5)
        self.edge_x = np.linspace(-self.half, self.half, int(np.ceil(2 * self.half / 0.05)) + 1)
        self.edge_p, self.edge_s = model.edges(self.edge_x, beam.field_size_mm)

    def _trace(self, density: npt.NDArray[np.float32]) -> F64:
        a = self.lat[:, None, None]
        b = self.lat[None, :, None]
        s = self.s[None, None, :]
        scale = s / self.model.sad_mm if self.model.divergent else np.ones_like(s)
        coords = np.empty((3, a.size, b.size, s.size))  # (k, j, i) for a (z, y, x) array
        for axis, row in zip((2, 1, 0), self.to_index, strict=True):  # CT index i, j, k
            start = float(row @ (self.source - self.origin))
            out = coords[axis]
            np.add(start + s * float(row @ self.d), (scale * a) * float(row @ self.u), out=out)
            out += (scale * b) * float(row @ self.v)
        rho = ndimage.map_coordinates(density, coords.reshape(3, -1), order=1, mode="constant", cval=0.0)
        del coords
        if self.model.divergent:
            stretch = np.sqrt(1.0 + (a**2 + b**2) / self.model.sad_mm**2)
        else:
            stretch = np.ones((a.size, b.size, 1))
        path = rho.reshape(a.size, b.size, s.size) * (self.model.step_mm * stretch)
        depth = np.cumsum(path, axis=2)
        depth -= 0.5 * path
        return depth

    def beam_coordinates(self, points: F64) -> tuple[F64, F64, F64]:
        """Isocentre-plane offsets a, b (mm) and source distance s (mm) of LPS points (N, 3)."""
        r = np.asarray(points, dtype=np.float64) - self.source
        s = r @ self.d
        scale = self.model.sad_mm / s if self.model.divergent else np.ones_like(s)
        return (r @ self.u) * scale, (r @ self.v) * scale, s

    def unit_dose(self, a: F64, b: F64, s: F64) -> F64:
        """Dose per unit beam weight at beam coordinates (a, b, s); 0 outside the field's extent."""
        inside = (np.abs(a) <= self.half) & (np.abs(b) <= self.half) & (s > self.s[0])
        out = np.zeros(a.shape, dtype=np.float64)
        if not np.any(inside):
            return out
        a, b, s = a[inside], b[inside], s[inside]
        step_lat = self.model.ray_spacing_mm
        coords = np.stack([
            (a - self.lat[0]) / step_lat, (b - self.lat[0]) / step_lat, (s - self.s[0]) / self.model.step_mm,
        ])  # fmt: skip
        depth = ndimage.map_coordinates(self.depth, coords, order=1, mode="nearest")
        isq = (self.model.sad_mm / s) ** 2 if self.model.divergent else 1.0
        profiles = []
        for x in (a, b):
            primary = np.interp(x, self.edge_x, self.edge_p)
            broad = np.interp(x, self.edge_x, self.edge_s)
            profiles.append(self.model.combine(primary, broad, depth, self.field))
        dose = self.model.depth_dose(depth) * isq * profiles[0] * profiles[1]
        out[inside] = dose
        return out

    def voxel_coordinates(self, ct: Volume, ijk: tuple[F64, F64, F64]) -> tuple[F64, F64, F64]:
        """Beam coordinates (a, b, s) of CT voxels given by index arrays (i, j, k)."""
        m = ct.direction * np.asarray(ct.spacing_mm)[None, :]
        base = self.origin - self.source
        proj = []
        for axis in (self.d, self.u, self.v):
            step = m.T @ axis  # mm along `axis` per index step in i, j, k
            proj.append(float(base @ axis) + ijk[0] * step[0] + ijk[1] * step[1] + ijk[2] * step[2])
        s, ru, rv = proj
        scale = self.model.sad_mm / s if self.model.divergent else np.ones_like(s)
        return ru * scale, rv * scale, s

    def iso_depth(self) -> float:
        """Radiological depth (mm) of the isocentre along the central ray."""
        centre = -self.lat[0] / self.model.ray_spacing_mm
        along = (self.model.sad_mm - self.s[0]) / self.model.step_mm
        coords = np.array([[centre], [centre], [along]])
        return float(ndimage.map_coordinates(self.depth, coords, order=1, mode="nearest")[0])


def _check_ct(ct: Volume) -> None:
    if ct.modality is not Modality.CT or ct.unit is not Unit.HU:
        raise VolumeError(
            f"ct must be a CT in HU, got {ct.modality.value} in {ct.unit.value}: "
            "pass a CT or synthetic CT volume."
        )


def calculate_dose_detailed(
    ct: Volume,
    plan: BeamPlan,
    *,
    beam_weights: tuple[float, ...] | None = None,
    model: BeamModel | None = None,
    curve: HuDensityCurve = GENERIC_CURVE,
) -> DoseCalculation:
    """Dose of ``plan`` on ``ct`` with the beam weights used (see :class:`DoseCalculation`).

    Parameters
    ----------
    ct
        CT or synthetic CT in HU.
    plan
        The beams, isocentre (LPS, mm, inside the CT and not in air) and prescription (Gy).
    beam_weights
        Weights to use instead of normalising to the prescription (one per beam), e.g. those
        of the same plan on the real CT.
    model
        Beam model; default :class:`BeamModel` ().
    curve
        HU -> relative electron density calibration.
    """
    _check_ct(ct)
    model = model or BeamModel()
    if beam_weights is not None:
        weights_in = tuple(float(w) for w in beam_weights)
        if len(weights_in) != len(plan.beams) or not all(np.isfinite(w) and w >= 0 for w in weights_in):
            raise OptionError(
                f"beam_weights must be {len(plan.beams)} finite non-negative numbers, got {beam_weights!r}: "
                "pass the beam_weights of a previous DoseCalculation of the same plan."
            )
    conversion = hu_to_relative_electron_density(ct.array, curve)
    density = conversion.density
    iso = np.asarray(plan.isocentre_mm, dtype=np.float64)
    iso_index = np.linalg.inv(ct.direction * np.asarray(ct.spacing_mm)[None, :]) @ (
        iso - np.asarray(ct.origin_mm)
    )
    inside = all(-0.5 <= iso_index[a] <= ct.size_xyz[a] - 0.5 for a in range(3))
    iso_density = float(
        ndimage.map_coordinates(density, iso_index[::-1].reshape(3, 1), order=1, mode="nearest")[0]
    )
    iso_in_air = iso_density < model.air_density
    # normalising needs tissue at the isocentre; with given weights (an sCT) air there is a finding
    if not inside or (iso_in_air and beam_weights is None):
        raise InputError(
            f"isocentre_mm {plan.isocentre_mm} is {'outside the CT' if not inside else 'in air'} "
            f"(relative electron density {iso_density:.3f}): pass an isocentre inside the body."
        )
    fans = [_Fan(density, ct, beam, iso, model) for beam in plan.beams]
    iso_unit = np.array([fan.unit_dose(*fan.beam_coordinates(iso[None, :]))[0] for fan in fans])
    iso_depths = tuple(fan.iso_depth() for fan in fans)
    if beam_weights is None:
        if np.any(iso_unit <= 1e-9):
            raise InputError(
                f"a beam gives no dose at the isocentre (unit doses {iso_unit.round(6).tolist()}): "
                "check isocentre_mm and the field sizes."
            )
        weights = np.full(len(fans), plan.prescription_gy / len(fans)) / iso_unit
    else:
        weights = np.asarray(weights_in)
    body = density >= model.air_density  # dose to air is not reported
    k_idx, j_idx, i_idx = np.nonzero(body)
    body_dose = np.zeros(k_idx.size, dtype=np.float64)
    for start in range(0, k_idx.size, _CHUNK):
        part = slice(start, start + _CHUNK)
        ijk = (i_idx[part].astype(np.float64), j_idx[part].astype(np.float64), k_idx[part].astype(np.float64))
        for weight, fan in zip(weights, fans, strict=True):
            body_dose[part] += weight * fan.unit_dose(*fan.voxel_coordinates(ct, ijk))
    dose = np.zeros(ct.shape, dtype=np.float64)
    dose[body] = body_dose
    iso_dose = 0.0 if iso_in_air else float(np.dot(weights, iso_unit))
    if not (np.all(np.isfinite(dose)) and np.all(np.isfinite(weights)) and np.isfinite(iso_dose)):
        raise NumericError("the dose has NaN or infinite values: check the CT values and the beam model.")
    volume = replace(ct, array=dose.astype(np.float32), modality=Modality.RTDOSE, unit=Unit.GY, source=None)
    log.info("dose: %d beam(s), isocentre dose %.4f Gy, max %.4f Gy", len(fans), iso_dose, float(dose.max()))
    return DoseCalculation(
        dose=volume,
        beam_weights=tuple(float(w) for w in weights),
        isocentre_dose_gy=iso_dose,
        radiological_depth_iso_mm=iso_depths,
        voxels_hu_clamped=conversion.voxels_below + conversion.voxels_above,
    )


def calculate_dose(ct: Volume, plan: BeamPlan, *, model: BeamModel | None = None) -> Volume:
    """RT dose (Gy) of ``plan`` on ``ct``, normalised so the isocentre gets the prescription.

    See :func:`calculate_dose_detailed` for the parameters.
    """
    return calculate_dose_detailed(ct, plan, model=model).dose
