"""The gamma index (Low et al. 1998) with pymedphys' search conventions.

:func:`gamma` works on coordinate axes (mm) and arrays, in 2D or 3D, with the evaluated
distribution on its own regular grid (interpolated trilinearly at each reference point
plus search offsets). :func:`gamma_volumes` takes two RT dose :class:`~service.volume.Volume`
objects and works in physical LPS coordinates.

Conventions (as ``pymedphys.gamma`` with ``random_subset=None``):

- global normalisation: the dose criterion is ``dose_percent`` of ``normalisation_dose``
  (default: the reference maximum); local: of the reference dose at each point;
- points are evaluated where the reference dose is ``>= cutoff_percent`` of the
  normalisation dose; other points are NaN in the map;
- offsets are shells ``distance_mm / interp_fraction`` apart up to ``max_gamma *
  distance_mm``; gamma values above ``max_gamma`` are reported as ``max_gamma``;
- a point passes when ``gamma <= 1``.

Difference from pymedphys: a reference point above the cutoff with no evaluated dose
inside its search radius (the evaluated grid does not cover it) gets ``inf`` and counts
as failing; pymedphys drops it from the pass rate. Its count is reported.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from service.errors import NumericError, OptionError, VolumeError
from service.validation import gamma_kernel
from service.volume import DIRECTION_TOLERANCE, Modality, Unit, Volume

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

#: Upper bound on max_gamma * interp_fraction (60 gives about 1.5 million 3D offsets).
MAX_SEARCH_STEPS = 60

_CRITERION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*/\s*([0-9]*\.?[0-9]+)\s*mm\s*$", re.IGNORECASE)


class Normalisation(enum.StrEnum):
    """What the dose criterion is a percentage of."""

    GLOBAL = "global"
    LOCAL = "local"

    @classmethod
    def parse(cls, value: Normalisation | str) -> Normalisation:
        if isinstance(value, Normalisation):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise OptionError(
                f"normalisation must be 'global' or 'local', got {value!r}: pass one of these."
            ) from None


@dataclass(frozen=True)
class GammaCriterion:
    """A dose-difference / distance-to-agreement pair, e.g. 3 %/2 mm."""

    dose_percent: float
    distance_mm: float

    def __post_init__(self) -> None:
        for name in ("dose_percent", "distance_mm"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
                raise OptionError(
                    f"{name} must be a positive finite number, got {value!r}: pass e.g. 3 or 2.0."
                )
            object.__setattr__(self, name, float(value))

    @classmethod
    def parse(cls, text: GammaCriterion | str) -> GammaCriterion:
        """Parse ``"3%/2mm"`` (spaces and case ignored)."""
        if isinstance(text, GammaCriterion):
            return text
        match = _CRITERION.match(str(text))
        if not match:
            raise OptionError(
                f"gamma criterion must look like '3%/2mm', got {text!r}: write the dose percent, '%/', "
                "the distance and 'mm'."
            )
        return cls(float(match.group(1)), float(match.group(2)))

    def __str__(self) -> str:
        return f"{self.dose_percent:g}%/{self.distance_mm:g}mm"


@dataclass(frozen=True)
class GammaOptions:
    """Validated gamma options (see the module docstring for their meaning).

    Parameters
    ----------
    criteria
        One or more :class:`GammaCriterion` or strings like ``"3%/2mm"``.
    normalisation
        ``"global"`` (default) or ``"local"``.
    normalisation_dose
        Dose (same unit as the arrays, Gy for volumes) that global percentages and the cutoff
        refer to; default: the reference maximum.
    cutoff_percent
        Reference points below this percentage of the normalisation dose are not evaluated.
    interp_fraction
        Search step = distance / interp_fraction.
    max_gamma
        Search radius = max_gamma * distance; larger gamma values are reported as max_gamma.
    use_numba
        Use the compiled kernel when numba is installed (same values, faster).
    """

    criteria: tuple[GammaCriterion, ...]
    normalisation: Normalisation | str = Normalisation.GLOBAL
    normalisation_dose: float | None = None
    cutoff_percent: float = 10.0
    interp_fraction: int = 10
    max_gamma: float = 2.0
    use_numba: bool = True

    if TYPE_CHECKING:  # what the generated __init__ accepts (criteria are parsed into a tuple)

        def __init__(
            self,
            criteria: str | GammaCriterion | Sequence[GammaCriterion | str],
            normalisation: Normalisation | str = Normalisation.GLOBAL,
            normalisation_dose: float | None = None,
            cutoff_percent: float = 10.0,
            interp_fraction: int = 10,
            max_gamma: float = 2.0,
            use_numba: bool = True,
        ) -> None: ...

    def __post_init__(self) -> None:
        raw: Any = self.criteria
        if isinstance(raw, str | GammaCriterion):
            raw = [raw] if isinstance(raw, GammaCriterion) else raw.split(",")
        criteria = tuple(GammaCriterion.parse(c) for c in raw)
        if not criteria:
            raise OptionError("criteria is empty: pass at least one criterion such as '3%/2mm'.")
        object.__setattr__(self, "criteria", criteria)
        object.__setattr__(self, "normalisation", Normalisation.parse(self.normalisation))
        if self.normalisation_dose is not None and not (
            np.isfinite(self.normalisation_dose) and self.normalisation_dose > 0
        ):
            raise OptionError(
                f"normalisation_dose must be a positive dose, got {self.normalisation_dose!r}: "
                "pass e.g. the prescription dose in Gy, or None for the reference maximum."
            )
        if not (np.isfinite(self.cutoff_percent) and 0 <= self.cutoff_percent < 100):
            raise OptionError(
                f"cutoff_percent must be in [0, 100), got {self.cutoff_percent!r}: pass e.g. 10."
            )
        if self.normalisation_mode is Normalisation.LOCAL and self.cutoff_percent <= 0:
            raise OptionError(
                "cutoff_percent must be > 0 with local normalisation (the criterion is a percentage "
                f"of the local dose, which may be 0), got {self.cutoff_percent!r}: pass e.g. 10."
            )
        if (
            isinstance(self.interp_fraction, bool)
            or not isinstance(self.interp_fraction, int)
            or not (1 <= self.interp_fraction <= 100)
        ):
            raise OptionError(
                f"interp_fraction must be an integer in [1, 100], got {self.interp_fraction!r}: pass e.g. 10."
            )
        if not (np.isfinite(self.max_gamma) and 1 <= self.max_gamma <= 10):
            raise OptionError(f"max_gamma must be in [1, 10], got {self.max_gamma!r}: pass e.g. 2.")
        if self.max_gamma * self.interp_fraction > MAX_SEARCH_STEPS:
            raise OptionError(
                f"max_gamma x interp_fraction must be <= {MAX_SEARCH_STEPS} (search shells per radius; the "
                f"3D offsets grow with its cube), got {self.max_gamma:g} x {self.interp_fraction}: lower "
                "interp_fraction or max_gamma."
            )

    @property
    def normalisation_mode(self) -> Normalisation:
        """``normalisation`` as the enum (it is converted on construction)."""
        return Normalisation.parse(self.normalisation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "criteria": [str(c) for c in self.criteria],
            "normalisation": self.normalisation_mode.value,
            "normalisation_dose": self.normalisation_dose,
            "cutoff_percent": self.cutoff_percent,
            "interp_fraction": self.interp_fraction,
            "max_gamma": self.max_gamma,
        }


@dataclass(frozen=True)
class CriterionResult:
    """Gamma for one criterion.

    ``gamma_map`` has the reference's shape: NaN below the cutoff, ``inf`` where no
    evaluated dose was inside the search radius, otherwise min(gamma, max_gamma).
    """

    criterion: GammaCriterion
    gamma_map: F64 = field(repr=False)
    pass_rate_percent: float
    points_evaluated: int
    points_passed: int
    points_without_evaluated_dose: int

    def to_dict(self) -> dict[str, Any]:
        finite = self.gamma_map[np.isfinite(self.gamma_map)]
        return {
            "criterion": str(self.criterion),
            "pass_rate_percent": self.pass_rate_percent,
            "points_evaluated": self.points_evaluated,
            "points_passed": self.points_passed,
            "points_without_evaluated_dose": self.points_without_evaluated_dose,
            "mean_gamma": float(finite.mean()) if finite.size else None,
            "gamma_p95": float(np.percentile(finite, 95)) if finite.size else None,
        }


@dataclass(frozen=True)
class GammaResult:
    """Gamma for every criterion, with the doses the percentages resolved to."""

    results: tuple[CriterionResult, ...]
    options: GammaOptions
    normalisation_dose: float
    cutoff_dose: float
    kernel: str

    def __getitem__(self, criterion: GammaCriterion | str) -> CriterionResult:
        wanted = GammaCriterion.parse(criterion)
        for result in self.results:
            if result.criterion == wanted:
                return result
        raise KeyError(str(wanted))

    def to_dict(self) -> dict[str, Any]:
        return {
            "options": self.options.to_dict(),
            "normalisation_dose": self.normalisation_dose,
            "cutoff_dose": self.cutoff_dose,
            "kernel": self.kernel,
            "results": [r.to_dict() for r in self.results],
        }


def _check_axes(name: str, axes: Sequence[Any], shape: tuple[int, ...], *, regular: bool) -> list[F64]:
    if len(axes) != len(shape) or len(shape) not in (2, 3):
        raise VolumeError(
            f"{name} must give one coordinate axis per array dimension (2 or 3), got {len(axes)} axes for "
            f"an array of shape {shape}: pass a tuple of 1D coordinate arrays in mm."
        )
    out = []
    for number, (axis, size) in enumerate(zip(axes, shape, strict=True)):
        arr = np.asarray(axis, dtype=np.float64)
        if arr.ndim != 1 or arr.size != size or not np.all(np.isfinite(arr)):
            raise VolumeError(
                f"{name}[{number}] must be {size} finite coordinates (mm), got shape {arr.shape}: "
                "pass the coordinates of the array's axis."
            )
        if regular and size > 1:
            steps = np.diff(arr)
            if not (np.all(steps > 0) and np.allclose(steps, steps[0], rtol=1e-4, atol=1e-6)):
                raise VolumeError(
                    f"{name}[{number}] must be increasing with a constant step, got steps "
                    f"{steps.min():g} to {steps.max():g} mm: resample the evaluated dose onto a regular grid."
                )
        out.append(arr)
    return out


def _lift(axes: list[F64]) -> list[F64]:
    return axes if len(axes) == 3 else [*axes, np.zeros(1)]


def gamma(
    axes_reference: Sequence[Any],
    dose_reference: npt.ArrayLike,
    axes_evaluation: Sequence[Any],
    dose_evaluation: npt.ArrayLike,
    options: GammaOptions,
) -> GammaResult:
    """Gamma index of an evaluated dose against a reference dose, in 2D or 3D.

    Parameters
    ----------
    axes_reference, axes_evaluation
        One 1D coordinate array (mm) per array axis, in the arrays' axis order. The
        evaluated axes must be increasing and regular; the reference axes are any points.
    dose_reference, dose_evaluation
        Dose arrays (any one unit, e.g. Gy), finite.
    options
        :class:`GammaOptions`.

    Returns
    -------
    GammaResult
        One :class:`CriterionResult` per criterion, maps shaped like ``dose_reference``.

    Raises
    ------
    VolumeError
        Axes that do not match the arrays, an irregular evaluated grid, 2D against 3D, or a
        reference without positive dose.
    NumericError
        NaN or infinite doses.
    """
    ref = np.asarray(dose_reference, dtype=np.float64)
    ev = np.asarray(dose_evaluation, dtype=np.float64)
    ax_ref = _check_axes("axes_reference", axes_reference, ref.shape, regular=False)
    ax_ev = _check_axes("axes_evaluation", axes_evaluation, ev.shape, regular=True)
    if ref.ndim != ev.ndim:
        raise VolumeError(
            f"dose_reference is {ref.ndim}D but dose_evaluation is {ev.ndim}D: pass both in 2D or both in 3D."
        )
    for name, arr in (("dose_reference", ref), ("dose_evaluation", ev)):
        if not np.all(np.isfinite(arr)):
            raise NumericError(
                f"{name} has NaN or infinite values: fix the dose computation that produced them."
            )
    norm = float(options.normalisation_dose) if options.normalisation_dose is not None else float(ref.max())
    if not norm > 0:
        raise VolumeError(
            f"the reference dose maximum is {norm:g}, so percentages are undefined: check the reference dose "
            "or pass normalisation_dose."
        )
    cutoff = options.cutoff_percent / 100.0 * norm
    mask = ref >= cutoff
    lifted_ref = _lift(ax_ref)
    lifted_ev = _lift(ax_ev)
    evaluated = ev.reshape([a.size for a in lifted_ev])
    index = np.nonzero(mask.reshape([a.size for a in lifted_ref]))
    points = np.stack([axis[i] for axis, i in zip(lifted_ref, index, strict=True)], axis=1)
    dose_ref = ref[mask]
    first = np.array([a[0] for a in lifted_ev])
    last = np.array([a[-1] for a in lifted_ev])
    spacing = np.array([a[1] - a[0] if a.size > 1 else 1.0 for a in lifted_ev])
    compiled = gamma_kernel.search_numba() if options.use_numba else None
    search = compiled or gamma_kernel.search_numpy
    results = []
    for criterion in options.criteria:
        if options.normalisation_mode is Normalisation.LOCAL:
            tol = criterion.dose_percent / 100.0 * dose_ref
        else:
            tol = np.full(dose_ref.shape, criterion.dose_percent / 100.0 * norm)
        radius = options.max_gamma * criterion.distance_mm
        # The compiled kernel bounds per cell itself; the NumPy one uses a min/max-filter bound.
        if compiled:
            bound = np.zeros_like(dose_ref)
        else:
            bound = _dose_bound(evaluated, first, spacing, last, points, dose_ref, radius)
        shells = gamma_kernel.shell_offsets(
            criterion.distance_mm, options.interp_fraction, options.max_gamma, ref.ndim
        )
        best = search(
            points, dose_ref, tol, bound, evaluated, (first, spacing, last), shells,
            criterion.distance_mm, options.max_gamma,
        )  # fmt: skip
        if np.any(np.isnan(best)):
            raise NumericError("gamma produced NaN values: check the dose arrays for extreme values.")
        best = np.minimum(best, options.max_gamma, where=np.isfinite(best), out=best.copy())
        passed = int(np.count_nonzero(best <= 1.0))
        gamma_map = np.full(ref.shape, np.nan)
        gamma_map[mask] = best
        evaluated_count = int(best.size)
        results.append(
            CriterionResult(
                criterion=criterion,
                gamma_map=gamma_map,
                pass_rate_percent=100.0 * passed / evaluated_count if evaluated_count else float("nan"),
                points_evaluated=evaluated_count,
                points_passed=passed,
                points_without_evaluated_dose=int(np.count_nonzero(np.isinf(best))),
            )
        )
    return GammaResult(tuple(results), options, norm, cutoff, "numba" if compiled else "numpy")


def _dose_bound(
    evaluated: F64, first: F64, spacing: F64, last: F64, points: F64, dose_ref: F64, radius_mm: float
) -> F64:
    """Lower bound (dose units) on |E(p + o) - D_r| over |o| <= radius, from a min/max filter of E."""
    half = [
        int(np.ceil(radius_mm / s)) + 2 if n > 1 else 0 for s, n in zip(spacing, evaluated.shape, strict=True)
    ]
    size = [2 * h + 1 for h in half]
    emin = ndimage.minimum_filter(evaluated, size=size, mode="nearest")
    emax = ndimage.maximum_filter(evaluated, size=size, mode="nearest")
    inside = np.all((points >= first) & (points <= last), axis=1)
    nearest = np.rint((points - first) / spacing).astype(np.int64)
    nearest = np.clip(nearest, 0, np.asarray(evaluated.shape) - 1)
    lo = emin[nearest[:, 0], nearest[:, 1], nearest[:, 2]]
    hi = emax[nearest[:, 0], nearest[:, 1], nearest[:, 2]]
    bound = np.maximum(0.0, np.maximum(dose_ref - hi, lo - dose_ref))
    return np.where(inside, bound, 0.0)


def volume_axes(volume: Volume, frame: Volume) -> list[F64]:
    """Coordinates (mm) of ``volume``'s (z, y, x) axes in ``frame``'s index-aligned frame.

    The frame has its origin at ``frame``'s voxel 0 and axes along ``frame``'s direction
    columns, so distances are physical. Both volumes must share the direction.
    """
    shift = frame.direction.T @ (np.asarray(volume.origin_mm) - np.asarray(frame.origin_mm))
    axes_xyz = [shift[a] + volume.spacing_mm[a] * np.arange(volume.size_xyz[a]) for a in range(3)]
    return [axes_xyz[2], axes_xyz[1], axes_xyz[0]]


def gamma_volumes(reference: Volume, evaluated: Volume, options: GammaOptions) -> GammaResult:
    """Gamma of an evaluated RT dose against a reference RT dose, in physical LPS coordinates.

    Both volumes must be RTDOSE in Gy with the same direction cosines (grids, spacing and
    origins may differ: the evaluated dose is interpolated). Maps are shaped like the
    reference, ``(z, y, x)``. Two single-slice doses in the same plane get a 2D gamma.
    """
    for name, vol in (("reference", reference), ("evaluated", evaluated)):
        if vol.modality is not Modality.RTDOSE or vol.unit is not Unit.GY:
            raise VolumeError(
                f"{name} must be an RT dose in Gy, got {vol.modality.value} in {vol.unit.value}: "
                "read doses with service.validation.dose_io.read_dose."
            )
    if not np.allclose(reference.direction, evaluated.direction, atol=DIRECTION_TOLERANCE):
        raise VolumeError(
            "reference and evaluated doses have different directions "
            f"({reference.direction.ravel().round(4).tolist()} vs "
            f"{evaluated.direction.ravel().round(4).tolist()}): "
            "resample the evaluated dose onto the reference orientation first."
        )
    axes_ref = volume_axes(reference, reference)
    axes_ev = volume_axes(evaluated, reference)
    if reference.shape[0] == 1 and evaluated.shape[0] == 1 and abs(axes_ref[0][0] - axes_ev[0][0]) < 1e-6:
        # Two single planes in the same plane: a 2D gamma (3D shells would only sample the
        # plane on their equator).
        flat = gamma(axes_ref[1:], reference.array[0], axes_ev[1:], evaluated.array[0], options)
        lifted = tuple(replace(r, gamma_map=r.gamma_map[None]) for r in flat.results)
        return replace(flat, results=lifted)
    return gamma(axes_ref, reference.array, axes_ev, evaluated.array, options)
