"""Point-spread of the simulated CBCT: a one-voxel rod in a water cylinder, noise and scatter off.

python tools/cbct_psf.py [--pixel-mm 2.0] [--views 360] [--oversample 1]

Prints, per reconstruction filter, the rod's peak (HU above water, of 1000) and the sigma of the
Gaussian with the same area-to-peak ratio (mm). The simulated CT has no blur beyond the voxel itself,
so this is how much finer detail the CT reference holds than the CBCT (docs/training.md).
``--oversample K`` simulates detector bins and reconstruction points K times finer than the voxel
(``radtranslate simulate --cbct-oversample K``).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Literal

import numpy as np

from models.simulation.cbct import simulate_cbct
from models.simulation.cbct_params import CBCTParams

Filter = Literal["ram-lak", "shepp-logan", "hann"]
FILTERS: tuple[Filter, ...] = ("ram-lak", "shepp-logan", "hann")


def rod_psf(
    filter_name: Filter, pixel_mm: float, views: int, n: int = 128, oversample: int = 1
) -> tuple[float, float]:
    """(peak HU of a 1000 HU one-voxel rod, Gaussian-equivalent sigma in mm) for one filter."""
    yy, xx = (np.mgrid[0:n, 0:n] - (n - 1) / 2) * pixel_mm
    ct = np.where(xx**2 + yy**2 < (0.3 * n * pixel_mm) ** 2, 0.0, -1000.0).astype(np.float32)
    r, c = n // 2 - 10, n // 2 + 5
    ct[r, c] = 1000.0
    params = dataclasses.replace(
        CBCTParams.ideal(views),
        recon_filter=filter_name,
        det_spacing_mm=pixel_mm / oversample,
        recon_oversample=oversample,
    )
    image = simulate_cbct(
        np.repeat(ct[None], 3, axis=0), (pixel_mm, pixel_mm, 3.0), np.random.default_rng(0), params
    )[1]
    image = image - float(np.median(image[xx**2 + yy**2 < (0.2 * n * pixel_mm) ** 2]))
    peak = float(image[r, c])
    area = float(image[r - 6 : r + 7, c - 6 : c + 7].sum())
    return peak, float(np.sqrt(area / peak / (2 * np.pi))) * pixel_mm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixel-mm", type=float, default=2.0)
    parser.add_argument("--views", type=int, default=360)
    parser.add_argument("--oversample", type=int, default=1, help="detector and recon grid K times finer")
    args = parser.parse_args()
    for name in FILTERS:
        peak, sigma = rod_psf(name, args.pixel_mm, args.views, oversample=args.oversample)
        print(f"{name}: rod peak {peak:.0f} HU of 1000, Gaussian-equivalent sigma {sigma:.2f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
