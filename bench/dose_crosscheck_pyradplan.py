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

The default parameters of :class:`service.validation.dose_plan.BeamModel` come from the
same engine on water: ``water OUT.npy`` (pyRadPlan venv) computes one 100 mm field,
gantry 0, on a 303 mm water cube (3 mm voxels, surface at y = -136.5 mm, isocentre at
its centre) and ``fit OUT.npy`` (project venv) fits ``mu``, ``beta`` to the central axis
(with the inverse-square law) and ``f``, ``sigma_s``, ``sigma_p`` to profiles at 14-200 mm.
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
    result = dose_gamma(reference, ours, GammaOptions(criteria=("3%/3mm", "2%/2mm")))
    for item in result.results:
        print(f"gamma {item.criterion} (pyRadPlan reference, 10 % cutoff): {item.pass_rate_percent:.2f} %")


def run_water(out: Path) -> None:
    import SimpleITK as sitk
    from pyRadPlan import CT, PhotonPlan, calc_dose_forward, generate_stf
    from pyRadPlan.cst import StructureSet
    from pyRadPlan.cst._voi import ExternalVOI, Target

    hu = np.zeros((101, 101, 101), dtype=np.float32)
    hu[:, :5, :] = -1000.0  # air in front: the water surface is at y = -136.5 mm
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing((3.0, 3.0, 3.0))
    image.SetOrigin((-150.0, -150.0, -150.0))
    prp_ct = CT(cube_hu=image)

    def mask(array: np.ndarray):  # type: ignore[no-untyped-def]
        m = sitk.GetImageFromArray(array.astype(np.uint8))
        m.CopyInformation(image)
        return m

    target = np.zeros(hu.shape, dtype=bool)
    target[45:56, 45:56, 45:56] = True
    cst = StructureSet(
        vois=[
            Target(name="PTV", mask=mask(target), ct_image=prp_ct),
            ExternalVOI(name="BODY", mask=mask(hu > -500), ct_image=prp_ct),
        ],
        ct_image=prp_ct,
    )
    pln = PhotonPlan(machine="Generic")
    pln.prop_stf = {"gantry_angles": [0.0], "couch_angles": [0.0], "generator": "photonOpenFields",
                    "bixel_width": FIELD_MM, "iso_center": [0.0, 0.0, 0.0]}  # fmt: skip
    pln.prop_dose_calc = {"geometric_lateral_cutoff": 150.0}
    dose = calc_dose_forward(prp_ct, cst, generate_stf(prp_ct, cst, pln), pln)["physical_dose"]
    np.save(out, sitk.GetArrayFromImage(dose) if isinstance(dose, sitk.Image) else np.asarray(dose))
    print(f"wrote {out}")


def fit(path: Path) -> None:
    from scipy.optimize import least_squares
    from scipy.special import erf

    dose = np.load(path)  # (z, y, x), 3 mm, beam along +y through x = z = 0 (index 50)
    y = -150.0 + 3.0 * np.arange(dose.shape[1])
    depth = y + 136.5
    s = 1000.0 + y  # distance from the source
    cax = dose[50, :, 50]
    m = depth > 0

    def pdd(p: np.ndarray) -> np.ndarray:
        mu, beta, scale = p
        return np.asarray(scale * np.exp(-mu * depth[m]) * -np.expm1(-beta * depth[m]) * (1000.0 / s[m]) ** 2)

    r = least_squares(
        lambda p: pdd(p) - cax[m], [0.003, 0.3, cax.max()], bounds=([1e-4, 0.01, 0], [0.05, 5, 1e9])
    )
    mu, beta = r.x[:2]
    rms = np.sqrt(np.mean((r.fun / cax.max()) ** 2))
    print(f"central axis: mu {mu:.5f}/mm, beta {beta:.4f}/mm, dmax {np.log((mu + beta) / mu) / beta:.1f} mm, "
          f"rms {100 * rms:.2f} % of max")  # fmt: skip

    def edge(x: np.ndarray, width: float, sigma: float) -> np.ndarray:
        return np.asarray(
            0.5 * (erf((width / 2 - x) / (np.sqrt(2) * sigma)) + erf((width / 2 + x) / (np.sqrt(2) * sigma)))
        )

    for wanted in (14.0, 50.0, 100.0, 150.0, 200.0):
        j = int(np.argmin(np.abs(depth - wanted)))
        profile = dose[50, j, :] / dose[50, j, 50]
        x_iso = y * 1000.0 / s[j]  # x axis has the same coordinates as y; projected to the isocentre plane

        def residual(p: np.ndarray, x: np.ndarray = x_iso, measured: np.ndarray = profile) -> np.ndarray:
            f, sig_s, sig_p, width = p
            num = (1 - f) * edge(x, width, sig_p) + f * edge(x, width, sig_s)
            zero = np.zeros(1)
            return np.asarray(
                num / ((1 - f) * edge(zero, width, sig_p) + f * edge(zero, width, sig_s)) - measured
            )

        q = least_squares(residual, [0.3, 28, 3, 100], bounds=([0, 2, 0.5, 80], [0.9, 100, 15, 120]))
        f, sig_s, sig_p, width = q.x
        rms = 100 * np.sqrt(np.mean(q.fun**2))
        print(f"profile at {depth[j]:.0f} mm: f {f:.3f}, sigma_s {sig_s:.1f} mm, sigma_p {sig_p:.2f} mm, "
              f"width {width:.1f} mm, rms {rms:.2f} %")  # fmt: skip


if __name__ == "__main__":
    modes = {"pyradplan": run_pyradplan, "compare": compare, "water": run_water, "fit": fit}
    if len(sys.argv) != 3 or sys.argv[1] not in modes:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    modes[sys.argv[1]](Path(sys.argv[2]))
