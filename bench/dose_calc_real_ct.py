"""Time the simple photon dose calculation and the CT-vs-sCT comparison on the real CT.

    nice -n 10 python bench/dose_calc_real_ct.py [--repeats 3] [--threads 2]

Data: the 168-slice abdominal CT in ../shared/data/real/ct-cort-liver (217 x 217 x 168,
3 x 3 x 2.5 mm). Plan: 4-field box (gantry 0/90/180/270), 100 mm square fields, 2 Gy at
the centre of the body mask. The dose time is the median over ``--repeats`` after one
warm-up; the comparisons run after a warm-up on a 16-slice crop (which compiles the numba
gamma kernel). The "sCT" is the CT with every voxel above 200 HU lowered by 200 HU (a
bone error) and, separately, with those voxels set to 40 HU (missing bone).
``--threads`` caps the BLAS/OpenMP/numba threads (the service's 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from timing import median_seconds  # bench/timing.py (scripts run from bench/)

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "ct-cort-liver"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if not REAL.is_dir():
        print(f"real CT folder {REAL} is absent: nothing to time", file=sys.stderr)
        return 2

    import numpy as np

    from service.dicom.reader import read_series
    from service.validation.dose_calc import calculate_dose_detailed
    from service.validation.dose_compare import body_centre_mm, compare_dose_on_ct_and_sct
    from service.validation.dose_plan import BeamPlan
    from service.volume import Volume

    ct = read_series(REAL)
    iso = body_centre_mm(ct)
    plan = BeamPlan.equally_spaced(4, iso, field_size_mm=100.0, prescription_gy=2.0)
    print(f"CT {ct.shape} (z, y, x), spacing {ct.spacing_mm} mm; isocentre {tuple(round(v, 1) for v in iso)}")
    dose_s = median_seconds(lambda: calculate_dose_detailed(ct, plan), args.repeats)
    print(f"4-field dose on the CT: {dose_s:.2f} s (median of {args.repeats}, {args.threads} threads)")

    # warm-up on a 16-slice crop: compiles the numba gamma kernel outside the timings
    k_iso = round(float((np.linalg.inv(ct.affine_lps()) @ np.array([*iso, 1.0]))[2]))
    first = ct.index_to_lps([[0, 0, k_iso - 8]])[0]
    crop = Volume(ct.array[k_iso - 8 : k_iso + 8], ct.spacing_mm, tuple(first), ct.direction)
    compare_dose_on_ct_and_sct(crop, crop, plan)

    lowered = ct.array.copy()
    lowered[lowered > 200] -= 200.0
    no_bone = ct.array.copy()
    no_bone[no_bone > 200] = 40.0
    for name, arr in (("bone -200 HU", lowered), ("bone -> 40 HU", no_bone)):
        sct = ct.with_array(arr)
        criteria = ("3%/3mm", "2%/2mm", "1%/1mm")
        start = time.perf_counter()
        result = compare_dose_on_ct_and_sct(ct, sct, plan, criteria)
        took = time.perf_counter() - start
        rates = ", ".join(f"{k} {v:.2f} %" for k, v in result.pass_rates().items())
        iso_ct, iso_sct = result.on_ct.isocentre_dose_gy, result.on_sct.isocentre_dose_gy
        print(
            f"sCT '{name}': compare {took:.1f} s; isocentre {iso_ct:.4f} -> {iso_sct:.4f} Gy; "
            f"PTV mean diff {result.ptv.mean_difference_gy:+.4f} Gy; "
            f"body max |diff| {result.body.max_abs_difference_gy:.4f} Gy; gamma {rates}; "
            f"points {result.gamma.results[0].points_evaluated}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
