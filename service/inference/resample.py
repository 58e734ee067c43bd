"""In-plane linear resampling between an input grid and a model's training spacing.

Only the two in-plane axes (y, x) of a ``(z, y, x)`` array are resampled; slices are never
mixed. The model grid is centred on the input grid: both share the physical centre of the
slice, the model grid has exactly the card's spacing and ``max(1, round(n * s / t))``
samples per axis (``n`` input samples of spacing ``s``, target spacing ``t``), so it covers
the same extent to within half a voxel. Interpolation is linear; sample positions outside
the source grid take the value of the nearest edge sample (no extrapolation).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from service.volume import Volume

FloatArray = npt.NDArray[np.float32]

#: Relative spacing difference below which no resampling is done.
SPACING_RTOL = 1e-4


def same_spacing(source_mm: float, target_mm: float) -> bool:
    """True when two spacings differ by less than :data:`SPACING_RTOL` (relative)."""
    return abs(source_mm - target_mm) <= SPACING_RTOL * target_mm


def model_size(n: int, source_mm: float, target_mm: float) -> int:
    """Samples of the model grid along one axis (``n`` when the spacings are the same)."""
    if same_spacing(source_mm, target_mm):
        return n
    return max(1, round(n * source_mm / target_mm))


def _coordinates(n_out: int, n_in: int, step: float) -> npt.NDArray[np.float64]:
    """Source index of each output sample for centre-aligned grids (``step`` = out/in spacing)."""
    return (n_in - 1) / 2.0 + (np.arange(n_out, dtype=np.float64) - (n_out - 1) / 2.0) * step


def _interp_axis(array: FloatArray, coords: npt.NDArray[np.float64], axis: int) -> FloatArray:
    n = array.shape[axis]
    pos = np.clip(coords, 0.0, n - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n - 1)
    w_shape = [1] * array.ndim
    w_shape[axis] = len(pos)
    w = (pos - i0).astype(np.float32).reshape(w_shape)
    low = np.take(array, i0, axis=axis)
    high: FloatArray = np.take(array, i1, axis=axis)
    high -= low
    high *= w
    high += low
    return high


def resample_axis(array: FloatArray, axis: int, n_out: int, source_mm: float, target_mm: float) -> FloatArray:
    """Resample ``array`` along ``axis`` from spacing ``source_mm`` to ``target_mm`` with ``n_out``
    centre-aligned samples. Returns the array itself when nothing changes."""
    n_in = array.shape[axis]
    if n_out == n_in and same_spacing(source_mm, target_mm):
        return array
    coords = _coordinates(n_out, n_in, target_mm / source_mm)
    return _interp_axis(array, coords, axis)


def to_model_grid(
    array: FloatArray, spacing_xy_mm: tuple[float, float], target_xy_mm: tuple[float, float]
) -> FloatArray:
    """Resample a ``(z, y, x)`` array in-plane from ``spacing_xy_mm`` to ``target_xy_mm``."""
    (sx, sy), (tx, ty) = spacing_xy_mm, target_xy_mm
    _, ny, nx = array.shape
    out = resample_axis(array, 2, model_size(nx, sx, tx), sx, tx)
    return resample_axis(out, 1, model_size(ny, sy, ty), sy, ty)


def to_input_grid(
    array: FloatArray,
    spacing_xy_mm: tuple[float, float],
    target_xy_mm: tuple[float, float],
    shape_yx: tuple[int, int],
) -> FloatArray:
    """Resample a model-grid ``(z, y', x')`` array back onto the input grid of ``shape_yx``.

    ``spacing_xy_mm`` is the input's spacing, ``target_xy_mm`` the model's (as in
    :func:`to_model_grid`).
    """
    (sx, sy), (tx, ty) = spacing_xy_mm, target_xy_mm
    ny, nx = shape_yx
    out = resample_axis(array, 2, nx, tx, sx)
    return resample_axis(out, 1, ny, ty, sy)


def mask_to_input_grid(
    mask: npt.NDArray[np.bool_],
    spacing_xy_mm: tuple[float, float],
    target_xy_mm: tuple[float, float],
    shape_yx: tuple[int, int],
) -> npt.NDArray[np.bool_]:
    """A model-grid mask ``(z, y', x')`` on the input grid of ``shape_yx``, by nearest neighbour:
    each input pixel takes the value of the model voxel whose centre is nearest (the grids are
    centre-aligned as in :func:`to_model_grid`)."""
    (sx, sy), (tx, ty) = spacing_xy_mm, target_xy_mm
    ny, nx = shape_yx
    _, my, mx = mask.shape
    iy = np.clip(np.rint(_coordinates(ny, my, sy / ty)), 0, my - 1).astype(np.intp)
    ix = np.clip(np.rint(_coordinates(nx, mx, sx / tx)), 0, mx - 1).astype(np.intp)
    out: npt.NDArray[np.bool_] = np.take(np.take(mask, iy, axis=1), ix, axis=2)
    return out


def model_grid_volume(volume: Volume, array: FloatArray, target_xy_mm: tuple[float, float]) -> Volume:
    """``array`` (from :func:`to_model_grid` of ``volume.array``) as a volume on the model grid:
    the card's in-plane spacing, the same slices and axes, centred on the input grid."""
    (tx, ty), (sx, sy, sz) = target_xy_mm, volume.spacing_mm
    _, ny, nx = volume.shape
    _, my, mx = array.shape
    # Model index (0, 0) sits at input index ((n - 1) - (m - 1) * t / s) / 2 along each axis.
    corner = np.array([((nx - 1) - (mx - 1) * tx / sx) / 2.0, ((ny - 1) - (my - 1) * ty / sy) / 2.0, 0.0])
    origin = volume.index_to_lps(corner)
    return dataclasses.replace(
        volume,
        array=array,
        spacing_mm=(float(tx), float(ty), float(sz)),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
    )
