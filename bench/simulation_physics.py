"""Timing and physics figures of the CBCT and PET simulators (figures quoted in docs/simulation_physics.md).

Run: ``nice -n 10 python bench/simulation_physics.py`` (about 2 minutes on one core).

- Time per subject of :func:`simulate_cbct` (random protocol and the heaviest, 360 views) and
  :func:`simulate_pet` (5 dose levels) on the default pelvis and head grids, using the digital
  anatomy when it is importable, else an elliptical water/bone phantom of the same size.
- Cupping of a 200 mm water cylinder per physics switch (noise-free, 180 views).
- PET coefficient of variation against DRF in a 200 mm SUV-1 cylinder and its log-log slope.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from models.simulation.cbct import CBCTParams, simulate_cbct
from models.simulation.pet import PETParams, simulate_pet

GRIDS = {"pelvis": ((48, 160, 160), (2.5, 2.5, 3.0)), "head": ((56, 128, 128), (2.0, 2.0, 3.0))}


def _subject(
    site: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """CT (HU) and SUV of one subject: the project's anatomy if available, else a phantom."""
    try:
        from models.simulation.anatomy import make_anatomy
        from models.simulation.ct import simulate_ct
        from models.simulation.tissues import suv_map

        anatomy = make_anatomy("brain" if site == "head" else "pelvis", rng)
        ct = simulate_ct(anatomy, rng)
        suv = suv_map(anatomy.dominant(), rng, anatomy.lesions)
        return ct, suv, anatomy.grid.spacing_mm
    except ImportError:
        shape, spacing = GRIDS[site]
        nz, ny, nx = shape
        y, x = np.meshgrid(
            (np.arange(ny) - ny / 2) * spacing[1], (np.arange(nx) - nx / 2) * spacing[0], indexing="ij"
        )
        body = (x / 180) ** 2 + (y / 120) ** 2 < 1
        bone = (np.hypot(np.abs(x) - 90, y) < 25) & body
        sl = np.where(body, 40.0, -1000.0)
        sl[bone] = 1200.0
        ct = np.repeat(sl[None], nz, axis=0).astype(np.float32)
        suv = np.repeat(np.where(body, 1.0, 0.0)[None], nz, axis=0).astype(np.float32)
        return ct, suv, spacing


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Result, CPU seconds of this process and wall seconds (wall > CPU on a shared machine)."""
    t0, w0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, f"{time.process_time() - t0:.1f} s CPU, {time.perf_counter() - w0:.1f} s wall"


def timing() -> None:
    for site in GRIDS:
        rng = np.random.default_rng(0)
        ct, suv, spacing = _subject(site, rng)
        for label, params in [("random", CBCTParams.random(rng)), ("360 views", CBCTParams(n_views=360))]:
            _, cpu = _timed(simulate_cbct, ct, spacing, rng, params)
            print(f"cbct {site} {ct.shape} {label} (n_views={params.n_views}): {cpu}")
        sim, cpu = _timed(simulate_pet, suv, spacing, rng, (4, 10, 20, 50, 100), PETParams())
        print(
            f"pet  {site} {suv.shape} 6 reconstructions: {cpu}, "
            f"{sim.trues_per_slice:.3g} effective trues per slice at full dose"
        )


def cupping() -> None:
    n, d = 96, 3.0
    c = (np.arange(n) - (n - 1) / 2) * d
    x, y = np.meshgrid(c, c)
    r = np.hypot(x, y)
    ct = np.repeat(np.where(r < 100, 0.0, -1000.0)[None], 3, axis=0).astype(np.float32)
    ideal = CBCTParams.ideal(n_views=180)
    cases = {
        "no physics": ideal,
        "beam hardening 120 kVp 4 mm Al": dataclasses.replace(ideal, polychromatic=True),
        "beam hardening 100 kVp 2.5 mm Al": dataclasses.replace(
            ideal, polychromatic=True, kvp=100.0, filter_mm_al=2.5
        ),
        "scatter SPR 0.5": dataclasses.replace(ideal, scatter_spr=0.5),
        "scatter SPR 1.0": dataclasses.replace(ideal, scatter_spr=1.0),
        "default (BH + SPR 0.5 + 6e3 photons/mm2)": CBCTParams(n_views=180),
    }
    for label, params in cases.items():
        out = simulate_cbct(ct, (d, d, d), np.random.default_rng(1), params)[1]
        centre, edge = out[r < 20].mean(), out[(r > 75) & (r < 88)].mean()
        print(
            f"water 200 mm, {label}: centre {centre:.0f} HU, edge {edge:.0f} HU, "
            f"centre-edge {centre - edge:.0f} HU, noise {out[r < 40].std():.0f} HU"
        )


def pet_noise() -> None:
    n, d, drfs = 96, 2.5, (4, 10, 20, 50, 100)
    c = (np.arange(n) - (n - 1) / 2) * d
    r = np.hypot(*np.meshgrid(c, c))
    suv = np.repeat(np.where(r < 100, 1.0, 0.0)[None], 48, axis=0).astype(np.float32)
    sim = simulate_pet(suv, (d, d, d), np.random.default_rng(0), drfs, PETParams())
    cvs = []
    for label, img in [("full", sim.full), *[(f"DRF {k}", v) for k, v in sim.low.items()]]:
        v = img[2:-2][:, r < 50]
        cvs.append(v.std() / v.mean())
        print(f"pet {label}: mean SUV {img[2:-2][:, r < 85].mean():.4f}, CV {cvs[-1]:.3f}")
    print(f"pet CV ~ DRF^{np.polyfit(np.log(drfs), np.log(cvs[1:]), 1)[0]:.3f}")


if __name__ == "__main__":
    cupping()
    pet_noise()
    timing()
