"""Dose of one simple plan on a CT and on a synthetic CT, their differences and gamma.

The plan's beam weights ("monitor units") are set on the real CT so the isocentre gets
the prescription, then the *same* weights are used on the synthetic CT: an sCT whose CT
numbers attenuate too much or too little shows as a dose difference at the isocentre too
(normalising each dose to its own isocentre would hide it).

Regions: the body is the largest connected region of the CT above ``body_threshold_hu``
with holes (lungs, bowel gas) filled slice by slice; the PTV is a sphere of
``ptv_radius_mm`` around the isocentre. Differences are sCT minus CT.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from service.errors import OptionError, VolumeError
from service.validation.dose_calc import DoseCalculation, calculate_dose_detailed
from service.validation.dose_plan import BeamModel, BeamPlan
from service.validation.hu_density import GENERIC_CURVE
from service.volume import Modality, Unit, Volume

if TYPE_CHECKING:  # pragma: no cover
    from service.validation.gamma import GammaOptions, GammaResult

log = logging.getLogger(__name__)

Mask = npt.NDArray[np.bool_]

DEFAULT_CRITERIA = ("3%/3mm", "2%/2mm")


@dataclass(frozen=True)
class RegionDifference:
    """sCT-minus-CT dose differences in one region (Gy, and % of the prescription)."""

    region: str
    voxels: int
    mean_dose_ct_gy: float
    mean_dose_sct_gy: float
    mean_difference_gy: float
    mean_abs_difference_gy: float
    max_abs_difference_gy: float
    prescription_gy: float

    def to_dict(self) -> dict[str, Any]:
        pct = 100.0 / self.prescription_gy
        return {
            "region": self.region,
            "voxels": self.voxels,
            "mean_dose_ct_gy": self.mean_dose_ct_gy,
            "mean_dose_sct_gy": self.mean_dose_sct_gy,
            "mean_difference_gy": self.mean_difference_gy,
            "mean_abs_difference_gy": self.mean_abs_difference_gy,
            "max_abs_difference_gy": self.max_abs_difference_gy,
            "mean_difference_percent_of_prescription": self.mean_difference_gy * pct,
            "max_abs_difference_percent_of_prescription": self.max_abs_difference_gy * pct,
        }


@dataclass(frozen=True)
class DoseComparison:
    """Doses on CT and sCT, regional differences and gamma (CT dose is the reference)."""

    plan: BeamPlan
    on_ct: DoseCalculation = field(repr=False)
    on_sct: DoseCalculation = field(repr=False)
    body: RegionDifference
    ptv: RegionDifference
    gamma: GammaResult = field(repr=False)
    ptv_radius_mm: float = 30.0
    model: BeamModel = field(default_factory=BeamModel)

    def pass_rates(self) -> dict[str, float]:
        """Gamma pass rate (%) per criterion, keyed like ``"3%/3mm"``."""
        return {str(r.criterion): float(r.pass_rate_percent) for r in self.gamma.results}

    def to_dict(self) -> dict[str, Any]:
        model = self.model
        return {
            "engine": "radtranslate simple photon ray-trace (not a clinical dose engine)",
            "hu_density_curve": GENERIC_CURVE.source,
            "beam_model": {**asdict(model), "dmax_mm": round(model.dmax_mm, 2)},
            "plan": {
                "isocentre_mm_lps": list(self.plan.isocentre_mm),
                "prescription_gy": self.plan.prescription_gy,
                "beams": [
                    {"gantry_deg": b.gantry_deg, "field_size_mm": b.field_size_mm, "energy_mv": b.energy_mv}
                    for b in self.plan.beams
                ],
                "beam_weights": list(self.on_ct.beam_weights),
            },
            "isocentre_dose_ct_gy": self.on_ct.isocentre_dose_gy,
            "isocentre_dose_sct_gy": self.on_sct.isocentre_dose_gy,
            "radiological_depth_iso_ct_mm": list(self.on_ct.radiological_depth_iso_mm),
            "radiological_depth_iso_sct_mm": list(self.on_sct.radiological_depth_iso_mm),
            "max_dose_ct_gy": float(self.on_ct.dose.array.max()),
            "max_dose_sct_gy": float(self.on_sct.dose.array.max()),
            "voxels_hu_clamped": {"ct": self.on_ct.voxels_hu_clamped, "sct": self.on_sct.voxels_hu_clamped},
            "ptv_radius_mm": self.ptv_radius_mm,
            "body": self.body.to_dict(),
            "ptv": self.ptv.to_dict(),
            "gamma": self.gamma.to_dict(),
        }


def body_mask(ct: Volume, threshold_hu: float = -400.0) -> Mask:
    """Largest connected region above ``threshold_hu`` (HU), holes filled per axial slice."""
    above = ct.array > threshold_hu
    labels, count = ndimage.label(above)
    if count == 0:
        raise VolumeError(
            f"no CT voxel is above {threshold_hu:g} HU, so there is no body: check that the CT is in HU."
        )
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    for k in range(body.shape[0]):
        body[k] = ndimage.binary_fill_holes(body[k])
    return np.asarray(body, dtype=bool)


def body_centre_mm(ct: Volume, threshold_hu: float = -400.0) -> tuple[float, float, float]:
    """LPS centre (mm) of :func:`body_mask`, the default isocentre of the CLI."""
    k, j, i = np.nonzero(body_mask(ct, threshold_hu))
    centre = ct.index_to_lps(np.array([[i.mean(), j.mean(), k.mean()]]))[0]
    return (float(centre[0]), float(centre[1]), float(centre[2]))


def sphere_mask(ct: Volume, centre_mm: Sequence[float], radius_mm: float) -> Mask:
    """Voxels whose centres lie within ``radius_mm`` of the LPS point ``centre_mm``."""
    nz, ny, nx = ct.shape
    m = ct.direction * np.asarray(ct.spacing_mm)[None, :]
    offset = np.asarray(ct.origin_mm) - np.asarray(centre_mm, dtype=np.float64)
    i, j, k = np.arange(nx), np.arange(ny), np.arange(nz)
    dist2 = np.zeros(ct.shape)
    for row in range(3):
        comp = (offset[row] + k[:, None, None] * m[row, 2] + j[None, :, None] * m[row, 1]
                + i[None, None, :] * m[row, 0])  # fmt: skip
        dist2 += comp**2
    return np.asarray(dist2 <= radius_mm**2, dtype=bool)


def _region(
    name: str, mask: Mask, ct_dose: Volume, sct_dose: Volume, prescription: float
) -> RegionDifference:
    if not np.any(mask):
        raise VolumeError(f"the {name} region is empty: check the isocentre and the CT.")
    a = ct_dose.array[mask].astype(np.float64)
    b = sct_dose.array[mask].astype(np.float64)
    diff = b - a
    return RegionDifference(
        region=name,
        voxels=int(mask.sum()),
        mean_dose_ct_gy=float(a.mean()),
        mean_dose_sct_gy=float(b.mean()),
        mean_difference_gy=float(diff.mean()),
        mean_abs_difference_gy=float(np.abs(diff).mean()),
        max_abs_difference_gy=float(np.abs(diff).max()),
        prescription_gy=prescription,
    )


def _crop(dose: Volume, lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64]) -> Volume:
    """Sub-volume [lo, hi) given as (k, j, i) bounds, with its origin moved accordingly."""
    sub = dose.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    origin = dose.index_to_lps(np.array([[lo[2], lo[1], lo[0]]], dtype=np.float64))[0]
    return Volume(sub, dose.spacing_mm, tuple(origin), dose.direction, Modality.RTDOSE, Unit.GY)


def dose_gamma(reference: Volume, evaluated: Volume, options: GammaOptions) -> GammaResult:
    """:func:`service.validation.gamma.gamma_volumes` on the box that holds the evaluated points.

    Reference points below the cutoff are not evaluated anyway; the box keeps a margin of
    the largest search radius so the evaluated dose around every point is kept.
    """
    from service.validation.gamma import gamma_volumes

    norm = options.normalisation_dose or float(reference.array.max())
    keep = reference.array >= options.cutoff_percent / 100.0 * norm
    if not np.any(keep):
        return gamma_volumes(reference, evaluated, options)
    reach_mm = options.max_gamma * max(c.distance_mm for c in options.criteria)
    pad = np.ceil(reach_mm / np.asarray(reference.spacing_mm)[::-1]).astype(np.int64) + 2
    idx = np.nonzero(keep)
    lo = np.maximum(np.array([ix.min() for ix in idx]) - pad, 0)
    hi = np.minimum(np.array([ix.max() + 1 for ix in idx]) + pad, np.asarray(reference.shape))
    return gamma_volumes(_crop(reference, lo, hi), _crop(evaluated, lo, hi), options)


def compare_dose_on_ct_and_sct(
    ct: Volume,
    sct: Volume,
    plan: BeamPlan,
    criteria: Sequence[Any] | str = DEFAULT_CRITERIA,
    *,
    cutoff_percent: float = 10.0,
    ptv_radius_mm: float = 30.0,
    body_threshold_hu: float = -400.0,
    model: BeamModel | None = None,
    use_numba: bool = True,
) -> DoseComparison:
    """Compute ``plan`` on ``ct`` and ``sct`` and compare the doses.

    Parameters
    ----------
    ct, sct
        The real CT and the synthetic CT (HU), on the same grid.
    plan
        Beams, isocentre (LPS mm) and prescription (Gy at the isocentre on the CT).
    criteria
        Gamma criteria, e.g. ``("3%/3mm", "2%/2mm")`` or :class:`GammaCriterion` items;
        global normalisation to the CT dose maximum.
    cutoff_percent
        Gamma lower dose cutoff (% of the CT dose maximum).
    ptv_radius_mm
        Radius (mm) of the spherical PTV around the isocentre.
    body_threshold_hu
        CT threshold (HU) of the body mask.
    model
        Beam model; default :class:`BeamModel` ().
    use_numba
        Let gamma use its compiled kernel when numba is installed (same values; compiling
        costs seconds once per process, so small cases may be faster without).
    """
    from service.validation.gamma import GammaCriterion, GammaOptions

    for name, vol in (("ct", ct), ("sct", sct)):
        if vol.modality is not Modality.CT or vol.unit is not Unit.HU:
            raise VolumeError(
                f"{name} must be a CT in HU, got {vol.modality.value} in {vol.unit.value}: "
                "pass the CT and the synthetic CT in HU."
            )
    if not ct.same_grid(sct):
        raise VolumeError(
            f"sct (shape {sct.shape}, spacing {sct.spacing_mm}) is not on the CT grid (shape {ct.shape}, "
            f"spacing {ct.spacing_mm}): resample the synthetic CT onto the CT grid first."
        )
    if not (np.isfinite(ptv_radius_mm) and 1.0 <= ptv_radius_mm <= 200.0):
        raise OptionError(f"ptv_radius_mm must be in [1, 200], got {ptv_radius_mm!r}: pass e.g. 30 (mm).")
    items = criteria.split(",") if isinstance(criteria, str) else list(criteria)
    parsed = tuple(GammaCriterion.parse(c) for c in items)
    options = GammaOptions(criteria=parsed, cutoff_percent=cutoff_percent, use_numba=use_numba)
    on_ct = calculate_dose_detailed(ct, plan, model=model)
    on_sct = calculate_dose_detailed(sct, plan, model=model, beam_weights=on_ct.beam_weights)
    body = body_mask(ct, body_threshold_hu)
    ptv = sphere_mask(ct, plan.isocentre_mm, ptv_radius_mm) & body
    rx = plan.prescription_gy
    result = DoseComparison(
        plan=plan,
        on_ct=on_ct,
        on_sct=on_sct,
        body=_region("body", body, on_ct.dose, on_sct.dose, rx),
        ptv=_region("ptv", ptv, on_ct.dose, on_sct.dose, rx),
        gamma=dose_gamma(on_ct.dose, on_sct.dose, options),
        ptv_radius_mm=float(ptv_radius_mm),
        model=model or BeamModel(),
    )
    log.info("dose comparison: isocentre %.4f Gy (CT) vs %.4f Gy (sCT); gamma %s",
             on_ct.isocentre_dose_gy, on_sct.isocentre_dose_gy, result.pass_rates())  # fmt: skip
    return result
