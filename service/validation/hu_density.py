"""CT number (HU) to relative electron density (RED, water = 1) by a piecewise-linear curve.

The default :data:`GENERIC_CURVE` is a *generic* curve, not a site calibration. Its
relative electron densities are the nominal values of the tissue-equivalent inserts of
the CIRS Model 062M electron density phantom (CIRS Inc., Norfolk VA, product data
sheet), its CT numbers are representative 120 kVp values for those inserts; air and
water are fixed at -1000 HU / 0.001 and 0 HU / 1.000. Above dense bone the curve
continues the trabecular-to-dense-bone slope up to 3071 HU, the top of the 12-bit CT
range. A clinic's own scanner calibration should replace it for any absolute use; for
comparing a CT with a synthetic CT *under the same curve* (what
:mod:`service.validation.dose_calc` does) the choice matters much less.

HU outside the curve's range (e.g. -2048 or -3024 padding outside the reconstruction
circle, metal above 3071 HU) are clamped to the end values and *counted*, never
repaired silently: :class:`DensityConversion` reports the counts, and a warning is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.errors import NumericError, OptionError

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class HuDensityCurve:
    """A piecewise-linear HU -> relative electron density calibration.

    Parameters
    ----------
    hu
        CT numbers (HU) of the nodes, strictly increasing.
    relative_electron_density
        Electron density relative to water (unitless) at each node, non-decreasing, > 0.
    source
        Where the nodes come from (shown in reports).
    """

    hu: tuple[float, ...]
    relative_electron_density: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        hu = np.asarray(self.hu, dtype=np.float64)
        red = np.asarray(self.relative_electron_density, dtype=np.float64)
        if hu.ndim != 1 or hu.shape != red.shape or hu.size < 2:
            raise OptionError(
                f"hu and relative_electron_density must be two 1D sequences of the same length >= 2, got "
                f"{hu.shape} and {red.shape}: pass one density per CT number."
            )
        if not (np.all(np.isfinite(hu)) and np.all(np.isfinite(red))):
            raise OptionError("the calibration curve has NaN or infinite nodes: pass finite numbers.")
        if not np.all(np.diff(hu) > 0):
            raise OptionError(f"hu must be strictly increasing, got {hu.tolist()}: sort the nodes by HU.")
        if not (np.all(red > 0) and np.all(np.diff(red) >= 0)):
            raise OptionError(
                f"relative_electron_density must be positive and non-decreasing, got {red.tolist()}: "
                "check the calibration table."
            )
        object.__setattr__(self, "hu", tuple(float(v) for v in hu))
        object.__setattr__(self, "relative_electron_density", tuple(float(v) for v in red))

    @property
    def hu_range(self) -> tuple[float, float]:
        """Lowest and highest CT number (HU) the curve covers."""
        return (self.hu[0], self.hu[-1])


#: Generic curve (see the module docstring): CIRS 062M nominal RED, representative HU.
GENERIC_CURVE = HuDensityCurve(
    hu=(-1024.0, -1000.0, -800.0, -500.0, -90.0, -45.0, 0.0, 45.0, 60.0, 240.0, 900.0, 3071.0),
    relative_electron_density=(
        0.001,  # below air: clamp level
        0.001,  # air
        0.190,  # lung, inhale
        0.489,  # lung, exhale
        0.949,  # adipose
        0.976,  # breast 50/50
        1.000,  # water
        1.043,  # muscle
        1.052,  # liver
        1.117,  # trabecular bone 200 mg/cc
        1.456,  # dense bone 800 mg/cc
        2.571,  # 3071 HU: dense-bone slope continued (5.14e-4 per HU)
    ),
    source=(
        "generic: CIRS Model 062M nominal relative electron densities at representative 120 kVp CT "
        "numbers; not a site calibration"
    ),
)


@dataclass(frozen=True)
class DensityConversion:
    """Result of :func:`hu_to_relative_electron_density`.

    Attributes
    ----------
    density
        Relative electron density (unitless, water = 1), same shape as the input, float32.
    voxels_below, voxels_above
        How many voxels were below / above the curve's HU range and were clamped to its ends.
    """

    density: F32
    voxels_below: int
    voxels_above: int


def hu_to_relative_electron_density(
    hu: npt.ArrayLike, curve: HuDensityCurve = GENERIC_CURVE
) -> DensityConversion:
    """Convert CT numbers to relative electron density by linear interpolation.

    Parameters
    ----------
    hu
        CT numbers in HU, any shape (e.g. a ``(z, y, x)`` volume).
    curve
        The calibration; default :data:`GENERIC_CURVE`.

    Returns
    -------
    DensityConversion
        The densities (float32, input shape) and the counts of clamped voxels.

    Raises
    ------
    NumericError
        If ``hu`` holds NaN or infinite values.
    """
    values = np.asarray(hu, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise NumericError(
            f"hu has {bad} NaN or infinite value(s): fix the CT (or synthetic CT) that produced them."
        )
    low, high = curve.hu_range
    below = int(np.count_nonzero(values < low))
    above = int(np.count_nonzero(values > high))
    if below or above:
        log.warning(
            "HU to density: %d voxel(s) below %g HU and %d above %g HU were clamped to the curve's ends",
            below,
            low,
            above,
            high,
        )
    density = np.interp(values, np.asarray(curve.hu), np.asarray(curve.relative_electron_density))
    return DensityConversion(np.asarray(density, dtype=np.float32), below, above)
