"""Cross-check the simple dose engine against pyRadPlan's photon pencil beam on the real CT.

pyRadPlan (the Python matRad, ``pip install pyradplan``; its SVD pencil-beam engine with
the bundled "Generic" 6 MV machine) cannot live in the project's environment (it pins
numpy < 2.4, pulls ~150 packages, and its default pydantic 2.14 resolution fails in
``model_dump``; it works with pydantic < 2.12), so this runs in two steps:

1. in a separate virtual environment holding pyRadPlan (and pydantic<2.12)::

       PYTHONPATH=. /path/to/prp-venv/bin/python bench/dose_crosscheck_pyradplan.py pyradplan OUT.npz

   computes each field of the 4-field box (100 mm square open fields, gantry 0/90/180/270,
   isocentre at the centre of the body mask) separately, scales each to 0.5 Gy at the
   isocentre and sums them (the same weighting as :mod:`service.validation.dose_calc`);
2. in the project's environment::

       python bench/dose_crosscheck_pyradplan.py compare OUT.npz

   computes the same plan with :mod:`service.validation.dose_calc` and reports dose
   differences inside the body and gamma (pyRadPlan dose as the reference).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "ct-cort-liver"
GANTRY = (0.0, 90.0, 180.0, 270.0)
FIELD_MM = 100.0


def _ct_and_iso():  # type: ignore[no-untyped-def]
    from service.dicom.reader import read_series
    from service.validation.dose_compare import body_centre_mm

    ct = read_series(REAL)
    return ct, body_centre_mm(ct)


def run_pyradplan(out: Path) -> None:
    import SimpleITK as sitk
    from pyRadPlan import CT, PhotonPlan, calc_dose_forward, generate_stf
    from pyRadPlan.cst import StructureSet
    from pyRadPlan.cst._voi import ExternalVOI, Target
    from scipy import ndimage

    from service.validation.dose_compare import body_mask, sphere_mask

    ct, iso = _ct_and_iso()
    image = ct.to_sitk()
    prp_ct = CT(cube_hu=image)

    def mask(array: np.ndarray):  # type: ignore[no-untyped-def]
        m = sitk.GetImageFromArray(array.astype(np.uint8))
        m.CopyInformation(image)
        return m

    body = body_mask(ct)
    cst = StructureSet(
        vois=[
            Target(name="PTV", mask=mask(sphere_mask(ct, iso, 30.0) & body), ct_image=prp_ct),
            ExternalVOI(name="BODY", mask=mask(body), ct_image=prp_ct),
        ],
        ct_image=prp_ct,
    )
    iso_index = (np.linalg.inv(ct.affine_lps()) @ np.array([*iso, 1.0]))[:3][::-1]
    total = np.zeros(ct.shape)
    start = time.perf_counter()
    for gantry in GANTRY:
        pln = PhotonPlan(machine="Generic")
        pln.prop_stf = {
            "gantry_angles": [gantry],
            "couch_angles": [0.0],
            "generator": "photonOpenFields",
            "bixel_width": FIELD_MM,
            "iso_center": list(iso),
        }
        # the default 50 mm geometric lateral cut-off truncates a 100 mm open field
        pln.prop_dose_calc = {"geometric_lateral_cutoff": 150.0}
        stf = generate_stf(prp_ct, cst, pln)
        dose = calc_dose_forward(prp_ct, cst, stf, pln)["physical_dose"]
        arr = sitk.GetArrayFromImage(dose) if isinstance(dose, sitk.Image) else np.asarray(dose)
        at_iso = float(ndimage.map_coordinates(arr, iso_index.reshape(3, 1), order=1)[0])
        total += arr * (0.5 / at_iso)
    took = time.perf_counter() - start
    np.savez_compressed(out, dose=total.astype(np.float32), seconds=took, iso=np.asarray(iso))
    print(f"pyRadPlan: 4 fields (one run each) in {took:.1f} s; wrote {out}")


def compare(path: Path) -> None:
    from service.validation.dose_calc import calculate_dose_detailed
    from service.validation.dose_compare import body_mask, dose_gamma
    from service.validation.dose_plan import BeamPlan
    from service.validation.gamma import GammaOptions
    from service.volume import Modality, Unit

    data = np.load(path)
    ct, iso = _ct_and_iso()
    plan = BeamPlan.equally_spaced(4, iso, field_size_mm=FIELD_MM, prescription_gy=2.0)
    body = body_mask(ct)
    # pyRadPlan reports dose only inside the structures (the body); ours also in the couch
    ours = ct.with_array(
        calculate_dose_detailed(ct, plan).dose.array * body, modality=Modality.RTDOSE, unit=Unit.GY
    )
    reference = ct.with_array(data["dose"], modality=Modality.RTDOSE, unit=Unit.GY)
    high = body & (reference.array >= 0.5 * reference.array.max())
    diff = ours.array.astype(np.float64) - reference.array
    print(f"pyRadPlan time (4 separate fields): {float(data['seconds']):.1f} s")
    print(f"max dose: pyRadPlan {reference.array.max():.3f} Gy, ours {ours.array.max():.3f} Gy")
    print(f"mean |diff| where pyRadPlan >= 50 % of max: {np.abs(diff[high]).mean():.4f} Gy "
          f"(mean {diff[high].mean():+.4f} Gy, {int(high.sum())} voxels)")  # fmt: skip
    result = dose_gamma(reference, ours, GammaOptions(criteria=("3%/3mm", "2%/2mm")))  # type: ignore[arg-type]
    for item in result.results:
        print(f"gamma {item.criterion} (pyRadPlan reference, 10 % cutoff): {item.pass_rate_percent:.2f} %")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("pyradplan", "compare"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "pyradplan":
        run_pyradplan(Path(sys.argv[2]))
    else:
        compare(Path(sys.argv[2]))
