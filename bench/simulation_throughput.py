"""Simulation throughput: subjects per minute per task and site, and seconds per stage.

Usage::

    python bench/simulation_throughput.py [--subjects 4] [--workers 2]

Part 1 runs ``write_dataset`` (simulation + writing .nii.gz) for each task and site with
``--workers`` processes and reports subjects per minute (wall clock, including process start
and the one-off MNI152 load in each worker). Part 2 times each stage on one core for one
subject per site (anatomy, CT, MR, CBCT, PET), after a warm-up that loads the MNI template.
Prints Markdown tables (paste them into docs/benchmarks.md, section "Simulation throughput").
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from models.simulation.anatomy import make_anatomy
from models.simulation.ct import CTParams, simulate_ct
from models.simulation.dataset import DatasetOptions, subject_rng, suv_truth, write_dataset
from models.simulation.mr import MRParams, simulate_mr

TASKS = ("mr-to-ct", "cbct-to-ct", "pet")
SITES = ("brain", "pelvis")


def throughput(subjects: int, workers: int) -> list[tuple[str, str, float, float]]:
    rows = []
    for task in TASKS:
        for site in SITES:
            with tempfile.TemporaryDirectory() as tmp:
                options = DatasetOptions(task=task, site=site, subjects=subjects, seed=0)  # type: ignore[arg-type]
                start = time.perf_counter()
                write_dataset(Path(tmp) / "ds", options, workers=workers)
                seconds = time.perf_counter() - start
            rows.append((task, site, seconds, 60.0 * subjects / seconds))
            rate = 60.0 * subjects / seconds
            print(f"  {task:10s} {site:6s} {seconds:7.1f} s  {rate:6.2f} subjects/min", flush=True)
    return rows


def stages(site: str) -> dict[str, float]:
    from models.simulation.cbct import simulate_cbct
    from models.simulation.pet import simulate_pet

    make_anatomy(site, np.random.default_rng(99))  # warm-up: loads the MNI template once
    rng = subject_rng(0, "mr-to-ct", site, 0)
    times: dict[str, float] = {}
    t = time.perf_counter()
    anatomy = make_anatomy(site, rng)
    times["anatomy"] = time.perf_counter() - t
    t = time.perf_counter()
    ct = simulate_ct(anatomy, rng, CTParams.random(rng))
    times["CT"] = time.perf_counter() - t
    t = time.perf_counter()
    simulate_mr(anatomy, rng, MRParams.random(rng))
    times["MR"] = time.perf_counter() - t
    t = time.perf_counter()
    simulate_cbct(ct, anatomy.grid.spacing_mm, rng)
    times["CBCT"] = time.perf_counter() - t
    t = time.perf_counter()
    simulate_pet(suv_truth(anatomy, rng), anatomy.grid.spacing_mm, rng)
    times["PET (5 doses)"] = time.perf_counter() - t
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"# {machine}, {os.cpu_count()} CPUs visible, load {os.getloadavg()}")
    print(f"Part 1: write_dataset, {args.subjects} subjects, {args.workers} workers")
    rows = throughput(args.subjects, args.workers)
    print(f"Part 2: one subject per site, one core, after warm-up (load {os.getloadavg()})")
    per_site = {site: stages(site) for site in SITES}
    print()
    print(f"| task | site | wall s ({args.subjects} subjects, {args.workers} workers) | subjects / min |")
    print("|---|---|---:|---:|")
    for task, site, seconds, rate in rows:
        print(f"| {task} | {site} | {seconds:.1f} | {rate:.2f} |")
    print()
    print("| stage (one core) | " + " | ".join(f"{s} s" for s in SITES) + " |")
    print("|---|" + "---:|" * len(SITES))
    for stage in per_site[SITES[0]]:
        print(f"| {stage} | " + " | ".join(f"{per_site[s][stage]:.2f}" for s in SITES) + " |")
    print("| CT + MR | " + " | ".join(f"{per_site[s]['CT'] + per_site[s]['MR']:.2f}" for s in SITES) + " |")


if __name__ == "__main__":
    main()
