"""Smooth random fields shared by the simulators (texture, bias, correlated noise)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

FloatArray = npt.NDArray[np.float32]


def gaussian_basis(n: int, count: int) -> npt.NDArray[np.float64]:
    """``(n, count)`` Gaussian bumps centred evenly over ``n`` samples, width one centre spacing."""
    centres = (np.arange(count) + 0.5) * n / count
    width = n / count
    return np.asarray(np.exp(-0.5 * ((np.arange(n)[:, None] - centres[None, :]) / width) ** 2))


def smooth_field(
    rng: np.random.Generator, shape_zyx: tuple[int, int, int], control_points: tuple[int, int, int]
) -> FloatArray:
    """A very smooth random field of zero mean and unit SD (sum of Gaussian bumps), float32 ``(z, y, x)``."""
    coarse = rng.standard_normal(control_points)
    bases = [gaussian_basis(n, c) for n, c in zip(shape_zyx, control_points, strict=True)]
    field = np.einsum("abc,za,yb,xc->zyx", coarse, *bases, optimize=True)
    field -= field.mean()
    field /= max(float(field.std()), 1e-12)
    return np.asarray(field, dtype=np.float32)


def correlated_noise(
    rng: np.random.Generator, shape_zyx: tuple[int, int, int], sigma_voxels: tuple[float, float, float]
) -> FloatArray:
    """White Gaussian noise blurred by a Gaussian of ``sigma_voxels`` (z, y, x), rescaled to unit SD."""
    noise = rng.standard_normal(shape_zyx, dtype=np.float32)
    if any(s > 0 for s in sigma_voxels):
        noise = ndi.gaussian_filter(noise, sigma=sigma_voxels, mode="wrap", truncate=3.0)
    noise /= max(float(noise.std()), 1e-12)
    return np.asarray(noise, dtype=np.float32)
