"""The compiled gamma kernel (numba): same values as :func:`gamma_kernel.search_numpy`.

Imported only when numba is installed. Per reference point it visits the shells of
offsets in order of distance, like the NumPy kernel, and in addition skips work using
the evaluated grid's cells near the point, split into sub-cells: trilinear interpolation
inside a (sub-)cell lies between its corner minimum and maximum, so a sub-cell whose dose
range is far from the reference dose gives a lower bound on gamma for every offset landing
in it. A shell
is skipped when every cell it can touch has a bound above the best gamma so far, and a
point stops when no remaining cell can beat ``min(best, max_gamma)``. These skips are
exact: they change run time, not values.

Points whose whole search box lies inside the evaluated grid skip bounds checks; when
every reference point lies on the evaluated lattice (the same grid, or a sub-grid of it),
the corner index and weights of each offset are precomputed once for all points.

Compiled code is cached by numba (``cache=True``: next to this file, or in the user's
cache folder when that is read-only), so only the first run pays the compile time.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Relative slack on cell bounds so float rounding in the interpolation never makes a skip inexact.
_SLACK = 1e-9

#: Reference points per scheduling chunk of the parallel loop.
_CHUNK = 32

#: Sub-cells per axis over the search radius (bounds resolution), at most 4 per grid cell.
_SUB_TARGET = 2.0

#: The cell table is built once a shell has this many times more offsets than it has cells.
_BUILD_FACTOR = 4


@numba.njit(cache=True, nogil=True)
def _cell_table(  # pragma: no cover - compiled
    f: Any, ref: float, tol: float, lo: Any, hi: Any, sub: Any, evaluated: Any,
    spacing: Any, size: Any, cbound: Any, cdmin: Any, cdmax: Any,
) -> None:  # fmt: skip
    """Fill the dose bound and distance range of the sub-cells near one point (index position f).

    Each grid cell is split into ``sub`` parts per axis; ``lo``/``hi`` are sub-cell indices.
    Trilinear interpolation restricted to a sub-cell is multilinear, so its extremes are at
    the sub-cell's corners: the bounds below are exact, not estimates.
    """
    n0, n1, n2 = hi[0] - lo[0] + 2, hi[1] - lo[1] + 2, hi[2] - lo[2] + 2
    nodes = np.empty((n0, n1, n2))
    top0, top1, top2 = max(size[0] - 2, 0), max(size[1] - 2, 0), max(size[2] - 2, 0)
    for a in range(n0):
        x0 = (lo[0] + a) / sub[0]
        i0 = min(int(x0), top0)
        w0 = x0 - i0
        j0 = min(i0 + 1, size[0] - 1)
        for b in range(n1):
            x1 = (lo[1] + b) / sub[1]
            i1 = min(int(x1), top1)
            w1 = x1 - i1
            j1 = min(i1 + 1, size[1] - 1)
            for c in range(n2):
                x2 = (lo[2] + c) / sub[2]
                i2 = min(int(x2), top2)
                w2 = x2 - i2
                j2 = min(i2 + 1, size[2] - 1)
                c00 = evaluated[i0, i1, i2] * (1 - w2) + evaluated[i0, i1, j2] * w2
                c01 = evaluated[i0, j1, i2] * (1 - w2) + evaluated[i0, j1, j2] * w2
                c10 = evaluated[j0, i1, i2] * (1 - w2) + evaluated[j0, i1, j2] * w2
                c11 = evaluated[j0, j1, i2] * (1 - w2) + evaluated[j0, j1, j2] * w2
                nodes[a, b, c] = (c00 * (1 - w1) + c01 * w1) * (1 - w0) + (c10 * (1 - w1) + c11 * w1) * w0
    c = 0
    for i in range(n0 - 1):
        for j in range(n1 - 1):
            for k in range(n2 - 1):
                low = nodes[i, j, k]
                high = low
                for di in range(2):
                    for dj in range(2):
                        for dk in range(2):
                            v = nodes[i + di, j + dj, k + dk]
                            low = min(low, v)
                            high = max(high, v)
                m = max(0.0, ref - high, low - ref)
                m = max(0.0, m - _SLACK * (abs(ref) + tol)) / tol
                cbound[c] = m * m
                near = 0.0
                far = 0.0
                idx = (lo[0] + i, lo[1] + j, lo[2] + k)
                for a in range(3):
                    low_edge = idx[a] / sub[a]
                    high_edge = low_edge + 1.0 / sub[a] if size[a] > 1 else low_edge
                    gap = max(low_edge - f[a], f[a] - high_edge, 0.0) * spacing[a]
                    span = max(abs(f[a] - low_edge), abs(f[a] - high_edge)) * spacing[a]
                    near += gap * gap
                    far += span * span
                cdmin[c] = math.sqrt(near) * (1 - 1e-9) - 1e-9
                cdmax[c] = math.sqrt(far) * (1 + 1e-9) + 1e-9
                c += 1


@numba.njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz", "reassoc", "contract", "arcp"})
def _shell_min_interior(  # pragma: no cover - compiled
    flat: Any, f: Any, goffsets: Any, start: int, stop: int, top: Any, strides: Any, ref: float
) -> float:
    """Min |E - ref| over one shell for a point whose whole search box is inside the grid.

    No bounds checks, so the loop vectorises; every value here is finite (the inputs are
    checked), which the fast-math flags assume.
    """
    sz, sy, dz, dy, dx = strides[0], strides[1], strides[2], strides[3], strides[4]
    min_diff = 1e300
    for o in range(start, stop):
        g0 = f[0] + goffsets[o, 0]
        g1 = f[1] + goffsets[o, 1]
        g2 = f[2] + goffsets[o, 2]
        i0 = min(int(g0), top[0])
        i1 = min(int(g1), top[1])
        i2 = min(int(g2), top[2])
        w0 = g0 - i0
        w1 = g1 - i1
        w2 = g2 - i2
        b = i0 * sz + i1 * sy + i2
        c00 = flat[b] * (1 - w2) + flat[b + dx] * w2
        c01 = flat[b + dy] * (1 - w2) + flat[b + dy + dx] * w2
        c10 = flat[b + dz] * (1 - w2) + flat[b + dz + dx] * w2
        c11 = flat[b + dz + dy] * (1 - w2) + flat[b + dz + dy + dx] * w2
        c0 = c00 * (1 - w1) + c01 * w1
        c1 = c10 * (1 - w1) + c11 * w1
        min_diff = min(min_diff, abs(c0 * (1 - w0) + c1 * w0 - ref))
    return min_diff


@numba.njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz", "reassoc", "contract", "arcp"})
def _shell_min_lattice(  # pragma: no cover - compiled
    flat: Any, base: int, obase: Any, weights: Any, start: int, stop: int, strides: Any, ref: float
) -> float:
    """As :func:`_shell_min_interior` for a point on the evaluated lattice: the corner index
    and weights of each offset are the same for every such point and are precomputed."""
    dz, dy, dx = strides[2], strides[3], strides[4]
    min_diff = 1e300
    for o in range(start, stop):
        b = base + obase[o]
        w0 = weights[o, 0]
        w1 = weights[o, 1]
        w2 = weights[o, 2]
        c00 = flat[b] * (1 - w2) + flat[b + dx] * w2
        c01 = flat[b + dy] * (1 - w2) + flat[b + dy + dx] * w2
        c10 = flat[b + dz] * (1 - w2) + flat[b + dz + dx] * w2
        c11 = flat[b + dz + dy] * (1 - w2) + flat[b + dz + dy + dx] * w2
        c0 = c00 * (1 - w1) + c01 * w1
        c1 = c10 * (1 - w1) + c11 * w1
        min_diff = min(min_diff, abs(c0 * (1 - w0) + c1 * w0 - ref))
    return min_diff


@numba.njit(parallel=True, cache=True, nogil=True)
def _kernel(  # pragma: no cover - compiled
    findex: Any,  # (n, 3) reference points in evaluated index units
    dose_ref: Any,
    dose_tol: Any,
    evaluated: Any,
    sub: Any,  # (3,) sub-cells per grid cell along each axis, for the bounds
    spacing: Any,
    goffsets: Any,  # (m, 3) offsets in index units
    starts: Any,
    distances: Any,
    radius_index: Any,  # (3,) search radius in index units
    dta_mm: float,
    max_gamma: float,
    lattice: bool,  # every point lies on the evaluated lattice: use obase and weights
    obase: Any,
    weights: Any,
) -> Any:
    n = findex.shape[0]
    nz, ny, nx = evaluated.shape
    top = np.array([max(nz - 2, 0), max(ny - 2, 0), max(nx - 2, 0)])
    top_sub = np.array(
        [max((nz - 1) * sub[0] - 1, 0), max((ny - 1) * sub[1] - 1, 0), max((nx - 1) * sub[2] - 1, 0)]
    )
    flat = evaluated.ravel()
    sz = ny * nx
    sy = nx
    # Flat offsets to the upper corner along each axis (0 on a singleton axis).
    dz = sz if nz > 1 else 0
    dy = sy if ny > 1 else 0
    dx = 1 if nx > 1 else 0
    strides = np.array([sz, sy, dz, dy, dx])
    size = np.array([nz, ny, nx])
    out = np.full(n, np.inf)
    for p in numba.prange(n):
        ref = dose_ref[p]
        tol = dose_tol[p]
        f = findex[p]
        lo = np.empty(3, dtype=np.int64)
        hi = np.empty(3, dtype=np.int64)
        for a in range(3):
            lo[a] = min(max(math.floor((f[a] - radius_index[a]) * sub[a]), 0), top_sub[a])
            hi[a] = min(max(math.floor((f[a] + radius_index[a]) * sub[a]), 0), top_sub[a])
        interior = True  # the whole search box lies inside the grid: no bounds checks needed
        for a in range(3):
            if f[a] - radius_index[a] < 0 or f[a] + radius_index[a] > size[a] - 1:
                interior = False
        wy = hi[1] - lo[1] + 1  # cell-table widths along y and x
        wx = hi[2] - lo[2] + 1
        ncell = (hi[0] - lo[0] + 1) * wy * wx
        built = False  # the cell table is built only for points that search beyond a few shells
        cbound = np.empty(0)  # per cell: (dose bound / tol) ** 2
        cdmin = np.empty(0)  # per cell: nearest and farthest distance (mm) from the point
        cdmax = np.empty(0)
        best = np.inf
        for s in range(distances.shape[0]):
            d = distances[s]
            ratio = d / dta_mm
            if ratio >= best:
                break
            dterm = ratio * ratio
            best2 = best * best
            count = starts[s + 1] - starts[s]
            if best < np.inf and ncell * _BUILD_FACTOR <= count:
                if not built:
                    cbound = np.empty(ncell)
                    cdmin = np.empty(ncell)
                    cdmax = np.empty(ncell)
                    _cell_table(f, ref, tol, lo, hi, sub, evaluated, spacing, size, cbound, cdmin, cdmax)
                    built = True
                # Stop if no cell at distance >= d can beat min(best, max_gamma); skip this
                # shell if no cell it touches can beat best.
                limit = min(best, max_gamma)
                remaining = np.inf
                here = np.inf
                for c in range(ncell):
                    if cdmax[c] >= d:
                        r = max(d, cdmin[c]) / dta_mm
                        remaining = min(remaining, cbound[c] + r * r)
                        if cdmin[c] <= d:
                            here = min(here, cbound[c])
                if remaining >= limit * limit:
                    break
                if here + dterm >= best2:
                    continue
            if interior and lattice:
                base = int(f[0] + 0.5) * sz + int(f[1] + 0.5) * sy + int(f[2] + 0.5)
                min_diff = _shell_min_lattice(
                    flat, base, obase, weights, starts[s], starts[s + 1], strides, ref
                )
                best = min(best, math.sqrt((min_diff / tol) ** 2 + dterm))
                continue
            if interior:
                min_diff = _shell_min_interior(flat, f, goffsets, starts[s], starts[s + 1], top, strides, ref)
                best = min(best, math.sqrt((min_diff / tol) ** 2 + dterm))
                continue
            min_diff = np.inf
            for o in range(starts[s], starts[s + 1]):
                g0 = f[0] + goffsets[o, 0]
                g1 = f[1] + goffsets[o, 1]
                g2 = f[2] + goffsets[o, 2]
                if g0 < 0 or g0 > nz - 1 or g1 < 0 or g1 > ny - 1 or g2 < 0 or g2 > nx - 1:
                    continue
                i0 = min(int(g0), top[0])
                i1 = min(int(g1), top[1])
                i2 = min(int(g2), top[2])
                if built:
                    s0 = min(int(g0 * sub[0]), top_sub[0]) - lo[0]
                    s1 = min(int(g1 * sub[1]), top_sub[1]) - lo[1]
                    s2 = min(int(g2 * sub[2]), top_sub[2]) - lo[2]
                    cell = (s0 * wy + s1) * wx + s2
                    if cbound[cell] + dterm >= best2:
                        continue
                w0 = g0 - i0
                w1 = g1 - i1
                w2 = g2 - i2
                b = i0 * sz + i1 * sy + i2
                c00 = flat[b] * (1 - w2) + flat[b + dx] * w2
                c01 = flat[b + dy] * (1 - w2) + flat[b + dy + dx] * w2
                c10 = flat[b + dz] * (1 - w2) + flat[b + dz + dx] * w2
                c11 = flat[b + dz + dy] * (1 - w2) + flat[b + dz + dy + dx] * w2
                c0 = c00 * (1 - w1) + c01 * w1
                c1 = c10 * (1 - w1) + c11 * w1
                min_diff = min(min_diff, abs(c0 * (1 - w0) + c1 * w0 - ref))
            if min_diff < np.inf:
                best = min(best, math.sqrt((min_diff / tol) ** 2 + dterm))
        out[p] = best
    return out


def search(
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
    """Minimum gamma per point; same arguments and values as :func:`gamma_kernel.search_numpy`.

    ``bound`` is not needed (the per-cell bounds here are tighter) and is ignored.
    """
    del bound
    first, spacing, _last = grid
    offsets, starts, distances = shells
    findex = np.ascontiguousarray((points - first) / spacing)
    goffsets = np.ascontiguousarray(offsets / spacing)
    radius_index = distances[-1] / spacing if len(distances) else np.zeros(3)
    radius_index = np.where(np.asarray(evaluated.shape) > 1, radius_index, 0.0)  # singleton (2D) axis
    # Sub-cells for the bounds: about 10 per axis over the search box, at most 4 per cell.
    reach = float(radius_index.max()) if len(radius_index) else 0.0
    split = int(max(1, min(4, _SUB_TARGET / reach))) if reach > 0 else 1
    sub = np.where(np.asarray(evaluated.shape) > 1, split, 1).astype(np.int64)
    lattice = bool(np.all(np.abs(findex - np.rint(findex)) < 1e-9))
    # Corner index and weight of each offset for lattice points: floor for g <= 0, ceil - 1
    # for g > 0, so an interior point never reads past the grid's last plane.
    low = np.where(goffsets > 0, np.ceil(goffsets) - 1, np.floor(goffsets))
    weights = np.ascontiguousarray(goffsets - low)
    shape = evaluated.shape
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    obase = np.ascontiguousarray(low.astype(np.int64) @ strides)
    # Failing points cluster in space and cost up to 100x more than passing ones: small
    # chunks scheduled dynamically keep all threads busy.
    with numba.parallel_chunksize(_CHUNK):
        result: F64 = _kernel(
            findex, dose_ref, dose_tol, np.ascontiguousarray(evaluated), sub, spacing,
            goffsets, starts, distances, radius_index, float(dta_mm), float(max_gamma),
            lattice, obase, weights,
        )  # fmt: skip
    return result
