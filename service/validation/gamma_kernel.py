"""Gamma search kernels: the search offsets and the per-point minimum over them.

Both kernels compute, for each reference point ``p`` with dose ``D_r`` and dose
criterion ``dD`` (Gy, per point so local gamma is the same code), the minimum over
search offsets ``o`` (mm) of::

    sqrt(((E(p + o) - D_r) / dD) ** 2 + (|o| / dta_mm) ** 2)

where ``E`` is the evaluated distribution, trilinearly interpolated on its regular grid.
Offsets outside the evaluated grid are skipped (as pymedphys does). The offsets are the
shells of :func:`shell_offsets`, visited in order of distance; a point stops as soon as
the next shell cannot lower its gamma (``|o| / dta_mm >= best``), or as soon as a lower
bound on the dose term over the whole search ball (from a min/max filter of ``E``) shows
that no remaining offset can beat ``min(best, max_gamma)``. Both stops are exact: they
change run time, never the value.

Two implementations give the same values: :func:`search_numpy` (pure NumPy, vectorised over
the offsets of one shell and the points still searching) and, when numba is installed,
a compiled per-point loop (:func:`search_numba`). Arrays here are float64 and 3D; 2D
inputs are lifted to 3D with a singleton axis by the caller.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Number of reference points handled per vectorised block in the NumPy kernel.
_BLOCK_ELEMENTS = 500_000


def shell_distances_mm(dta_mm: float, interp_fraction: int, max_gamma: float) -> list[float]:
    """Search distances (mm), pymedphys' sequence: steps of ``dta/fraction`` up to ``max_gamma*dta``.

    The distance is accumulated as pymedphys does (``d += step``) and snapped onto
    ``dta_mm`` when it first reaches it, so both visit the same shells.
    """
    step = dta_mm / interp_fraction
    limit = dta_mm * max_gamma
    distances: list[float] = []
    forced = [dta_mm]
    distance = 0.0
    while distance <= limit:
        distances.append(distance)
        step = max(distance / interp_fraction / max_gamma, dta_mm / interp_fraction)
        distance += step
        if forced and distance >= forced[0]:
            distance = forced.pop(0)
    return distances


def _shell_points(distance: float, ndim: int, step: float) -> F64:
    """Points on a circle (2D) or sphere (3D) of radius ``distance`` no more than ``step`` apart.

    Same construction as pymedphys' ``calculate_coordinates_shell`` (rings of equal
    elevation, each ring sampled evenly in azimuth), returned as ``(n, 3)`` with the last
    column zero in 2D. Coordinates are in array-axis order.
    """
    if distance == 0.0:
        return np.zeros((1, 3))
    if ndim == 2:
        count = int(np.ceil(2 * np.pi * distance / step)) + 1
        theta = np.linspace(0, 2 * np.pi, count + 1)[:-1]
        return np.stack([distance * np.cos(theta), distance * np.sin(theta), np.zeros_like(theta)], axis=1)
    rows = int(np.ceil(np.pi * distance / step)) + 1
    elevation = np.linspace(0, np.pi, rows)
    ring_counts = np.ceil(2 * np.pi * distance * np.sin(elevation) / step).astype(int) + 1
    parts = []
    for phi, count in zip(elevation, ring_counts, strict=True):
        azimuth = np.linspace(0, 2 * np.pi, int(count) + 1)[:-1]
        parts.append(
            np.stack(
                [
                    distance * np.sin(phi) * np.cos(azimuth),
                    distance * np.sin(phi) * np.sin(azimuth),
                    distance * np.cos(phi) * np.ones_like(azimuth),
                ],
                axis=1,
            )
        )
    return np.concatenate(parts, axis=0)


@functools.lru_cache(maxsize=16)
def shell_offsets(dta_mm: float, interp_fraction: int, max_gamma: float, ndim: int) -> tuple[F64, I64, F64]:
    """All search offsets, grouped in shells of increasing distance.

    Returns
    -------
    offsets
        ``(m, 3)`` offsets in mm, array-axis order (last column zero in 2D).
    shell_start
        ``(k + 1,)`` index of each shell's first offset, then ``m``.
    shell_distance
        ``(k,)`` radius of each shell in mm.
    """
    step = dta_mm / interp_fraction
    distances = shell_distances_mm(dta_mm, interp_fraction, max_gamma)
    shells = [_shell_points(d, ndim, step) for d in distances]
    starts = np.zeros(len(shells) + 1, dtype=np.int64)
    starts[1:] = np.cumsum([len(s) for s in shells])
    offsets = np.concatenate(shells, axis=0)
    radii = np.asarray(distances, dtype=np.float64)
    for array in (offsets, starts, radii):
        array.setflags(write=False)  # cached: shared between calls
    return offsets, starts, radii


def interpolate_numpy(evaluated: F64, first: F64, spacing: F64, last: F64, points: F64) -> F64:
    """Trilinear interpolation of ``evaluated`` at ``points`` (``(..., 3)``, mm); +inf outside the grid."""
    shape = np.asarray(evaluated.shape)
    inside = np.all((points >= first) & (points <= last), axis=-1)
    frac = (points - first) / spacing
    low = np.clip(np.floor(frac), 0, np.maximum(shape - 2, 0)).astype(np.int64)
    weight = np.where(shape > 1, frac - low, 0.0)
    high = np.minimum(low + 1, shape - 1)
    flat = evaluated.ravel()
    strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)
    result = np.zeros(points.shape[:-1])
    for corner in range(8):
        bits = [(corner >> (2 - a)) & 1 for a in range(3)]
        index = np.zeros(points.shape[:-1], dtype=np.int64)
        factor = np.ones(points.shape[:-1])
        for axis, bit in enumerate(bits):
            index += (high[..., axis] if bit else low[..., axis]) * strides[axis]
            factor *= weight[..., axis] if bit else 1.0 - weight[..., axis]
        result += factor * flat[index]
    return np.where(inside, result, np.inf)


def search_numpy(
    points: F64,
    dose_ref: F64,
    dose_tol: F64,
    bound: F64,
    evaluated: F64,
    grid: tuple[F64, F64, F64],
    shells: tuple[F64, I64, F64],
    dta_mm: float,
    max_gamma: float,
) -> F64:
    """Minimum gamma per point (+inf where no offset fell inside the evaluated grid), in NumPy.

    ``points`` ``(n, 3)`` mm; ``dose_ref``, ``dose_tol`` (the dose criterion in Gy) and
    ``bound`` (a lower bound on ``|E - D_r|`` over the search ball, Gy) are ``(n,)``.
    """
    first, spacing, last = grid
    offsets, starts, distances = shells
    best = np.full(len(points), np.inf)
    active = np.arange(len(points))
    bound_term = (bound / dose_tol) ** 2
    for shell, distance in enumerate(distances):
        dist_term = (distance / dta_mm) ** 2
        if len(active) == 0:
            break
        limit = np.minimum(best[active], max_gamma)
        keep = (distance / dta_mm < best[active]) & ~(
            np.isfinite(best[active]) & (bound_term[active] + dist_term >= limit**2)
        )
        active = active[keep]
        if len(active) == 0:
            break
        shell_offs = offsets[starts[shell] : starts[shell + 1]]
        block = max(1, _BLOCK_ELEMENTS // len(shell_offs))
        for begin in range(0, len(active), block):
            idx = active[begin : begin + block]
            values = interpolate_numpy(
                evaluated, first, spacing, last, points[idx, None, :] + shell_offs[None]
            )
            with np.errstate(invalid="ignore"):
                diff = np.min(np.abs(values - dose_ref[idx, None]), axis=1) / dose_tol[idx]
            candidate = np.sqrt(diff**2 + dist_term)
            best[idx] = np.minimum(best[idx], candidate)
    return best


_NUMBA: list[Callable[..., F64] | None] = []


def search_numba() -> Callable[..., F64] | None:
    """The compiled kernel (same signature as :func:`search_numpy`), or None without numba."""
    if not _NUMBA:
        try:
            from service.validation.gamma_numba import search
        except ImportError:  # numba not installed: the NumPy kernel is used
            _NUMBA.append(None)
        except (RuntimeError, OSError) as exc:  # e.g. numba finds no writable cache folder
            log.warning("compiled gamma kernel unavailable (%s); using the NumPy kernel (same values)", exc)
            _NUMBA.append(None)
        else:
            _NUMBA.append(search)
    return _NUMBA[0]
