"""Gamma index speed: ours (numba and NumPy kernels) vs pymedphys.gamma on the same 3D case.

Run: ``python bench/gamma_bench.py [--skip-large] [--large-shape 200 256 256]``.

Case A (compared): a 3D dose on a 50x64x64 grid of 2.5 mm voxels: a box field (smoothed
edges, 60 Gy) plus a low-dose bath; the evaluated dose is the reference scaled by 1 %,
shifted by (0, 0.4, 0.4) mm and with Gaussian noise of 0.3 Gy. Criteria 3%/2mm,
2%/2mm and 1%/1mm global, cutoff 10 %, interp_fraction 10, max_gamma 2, pymedphys with its default
(numba) interpolator, random_subset off. Times are wall clock after a warm-up call (numba
compilation excluded for both; it is cached on disk for ours), shortest of 5 runs for ours
with numba, of 2 runs for our NumPy kernel and for pymedphys.

Case B (ours alone): the same kind of field on a 200x256x256 grid of 1 mm voxels (13.1 M
voxels), 3%/2mm, numba kernel.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import ndimage

from service.validation.gamma import GammaOptions, gamma


def make_case(
    shape: tuple[int, int, int], spacing: float, seed: int = 1
) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    axes = tuple(np.arange(n) * spacing for n in shape)
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    centre = [a[-1] / 2 for a in axes]
    half = [0.35 * a[-1] for a in axes]
    box = (abs(zz - centre[0]) < half[0]) & (abs(yy - centre[1]) < half[1]) & (abs(xx - centre[2]) < half[2])
    ref = 60.0 * ndimage.gaussian_filter(box.astype(np.float64), 2.0)
    ref += 3.0 * np.exp(-((xx - centre[2]) ** 2 + (yy - centre[1]) ** 2) / (2 * (0.4 * axes[2][-1]) ** 2))
    ev = 1.01 * ndimage.shift(ref, (0.0, 0.4 / spacing, 0.4 / spacing), order=1, mode="nearest")
    ev += rng.normal(0.0, 0.3, ref.shape)
    return axes, ref, ev


def timed(fn, *args, repeats: int = 1, **kwargs):  # type: ignore[no-untyped-def]
    """Result and the shortest wall time of ``repeats`` calls (the machine is shared)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return out, best


def compare(criteria: list[str]) -> list[dict[str, object]]:
    import pymedphys

    axes, ref, ev = make_case((50, 64, 64), 2.5)
    small = tuple(a[:4] for a in axes)
    rows = []
    for text in criteria:
        fast_opts = GammaOptions(criteria=text)
        slow_opts = GammaOptions(criteria=text, use_numba=False)
        crit = fast_opts.criteria[0]
        # Warm-ups: compile (or load) both sides' numba code.
        gamma(small, ref[:4, :4, :4], small, ev[:4, :4, :4], fast_opts)
        pymedphys.gamma(small, ref[:4, :4, :4], small, ev[:4, :4, :4], crit.dose_percent, crit.distance_mm,
                        lower_percent_dose_cutoff=10, interp_fraction=10, max_gamma=2.0)  # fmt: skip
        ours, t_ours = timed(gamma, axes, ref, axes, ev, fast_opts, repeats=5)
        numpy_res, t_numpy = timed(gamma, axes, ref, axes, ev, slow_opts, repeats=2)
        g, t_pmp = timed(
            pymedphys.gamma, axes, ref, axes, ev, crit.dose_percent, crit.distance_mm,
            lower_percent_dose_cutoff=10, interp_fraction=10, max_gamma=2.0, random_subset=None, repeats=2,
        )  # fmt: skip
        valid = g[~np.isnan(g)]
        rate_pmp = 100.0 * float(np.mean(valid <= 1.0))
        res = ours.results[0]
        rows.append(
            {
                "criterion": text,
                "points": res.points_evaluated,
                "pass_ours": res.pass_rate_percent,
                "pass_numpy": numpy_res.results[0].pass_rate_percent,
                "pass_pymedphys": rate_pmp,
                "max_abs_gamma_diff": float(np.nanmax(np.abs(g - res.gamma_map))),
                "t_ours_numba_s": t_ours,
                "t_ours_numpy_s": t_numpy,
                "t_pymedphys_s": t_pmp,
                "ratio_numba": t_pmp / t_ours,
                "ratio_numpy": t_pmp / t_numpy,
            }
        )
    return rows


def large(shape: tuple[int, int, int]) -> dict[str, object]:
    axes, ref, ev = make_case(shape, 1.0 if max(shape) > 128 else 2.5, seed=2)
    opts = GammaOptions(criteria="3%/2mm")
    small = tuple(a[:4] for a in axes)
    gamma(small, ref[:4, :4, :4], small, ev[:4, :4, :4], opts)
    result, seconds = timed(gamma, axes, ref, axes, ev, opts)
    res = result.results[0]
    return {"shape": shape, "points": res.points_evaluated, "pass": res.pass_rate_percent, "t_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--large-shape", type=int, nargs=3, default=[200, 256, 256])
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    rows = compare(["3%/2mm", "2%/2mm", "1%/1mm"])
    print("\nCase A, 50x64x64 @ 2.5 mm")
    print(f"{'criterion':<9}{'points':>8}{'ours %':>9}{'numpy %':>9}{'pmp %':>9}{'max|dg|':>10}"
          f"{'numba s':>9}{'numpy s':>9}{'pmp s':>8}{'pmp/numba':>10}{'pmp/numpy':>10}")  # fmt: skip
    for r in rows:
        print(
            f"{r['criterion']:<9}{r['points']:>8}{r['pass_ours']:>9.3f}{r['pass_numpy']:>9.3f}"
            f"{r['pass_pymedphys']:>9.3f}{r['max_abs_gamma_diff']:>10.1e}{r['t_ours_numba_s']:>9.3f}"
            f"{r['t_ours_numpy_s']:>9.3f}{r['t_pymedphys_s']:>8.2f}"
            f"{r['ratio_numba']:>10.1f}{r['ratio_numpy']:>10.2f}"
        )
    if not args.skip_large:
        big = large(tuple(args.large_shape))
        print(f"\nCase B, {big['shape']} @ 1 mm, 3%/2mm: {big['points']} points, pass {big['pass']:.3f} %, "
              f"{big['t_s']:.2f} s (numba)")  # fmt: skip
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
