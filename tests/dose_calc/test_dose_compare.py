"""Dose on CT vs synthetic CT: same beam weights, regional differences, gamma."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import VolumeError
from service.validation.dose_compare import (
    body_centre_mm,
    body_mask,
    compare_dose_on_ct_and_sct,
    sphere_mask,
)
from service.validation.dose_plan import BeamModel, BeamPlan
from service.validation.hu_density import hu_to_relative_electron_density
from service.volume import Modality, Unit, Volume
from tests.dose_calc import small_phantom as sp

pytest.importorskip("service.validation.gamma", reason="service.validation.gamma is not present")

PLAN = BeamPlan.equally_spaced(4, (0.0, 0.0, 0.0), field_size_mm=80.0, prescription_gy=2.0)


def test_identical_sct_gives_zero_difference_and_full_gamma_pass() -> None:
    ct = sp.ct(sp.phantom_hu())
    result = compare_dose_on_ct_and_sct(ct, sp.ct(sp.phantom_hu()), PLAN, "2%/2mm,1%/1mm", use_numba=False)
    assert result.pass_rates() == {"2%/2mm": 100.0, "1%/1mm": 100.0}
    assert result.body.max_abs_difference_gy == 0.0 and result.ptv.max_abs_difference_gy == 0.0
    assert result.on_sct.isocentre_dose_gy == result.on_ct.isocentre_dose_gy == pytest.approx(2.0)
    report = result.to_dict()
    assert report["gamma"]["results"][0]["points_evaluated"] > 1000
    assert report["ptv"]["voxels"] == int((sphere_mask(ct, (0, 0, 0), 30.0) & body_mask(ct)).sum())


def test_bone_lowered_by_200_hu_raises_dose_by_its_radiological_depth() -> None:
    hu = sp.phantom_hu()
    ct = sp.ct(hu)
    sct = sp.ct(sp.with_bone(hu, sp.BONE_HU - 200.0))
    result = compare_dose_on_ct_and_sct(ct, sct, PLAN, "2%/2mm,0.5%/1mm", use_numba=False)
    # the posterior beam (gantry 180) crosses 44 mm of bone before the isocentre
    red = hu_to_relative_electron_density([sp.BONE_HU, sp.BONE_HU - 200.0]).density
    saved_mm = sp.BONE_THICKNESS_MM * float(red[0] - red[1])
    depths_ct, depths_sct = result.on_ct.radiological_depth_iso_mm, result.on_sct.radiological_depth_iso_mm
    assert depths_ct[2] - depths_sct[2] == pytest.approx(saved_mm, abs=0.05)
    assert depths_ct[0] == depths_sct[0] and depths_ct[1] == depths_sct[1]
    model = BeamModel()
    gain = float(model.depth_dose(depths_sct[2]) / model.depth_dose(depths_ct[2]))
    # same beam weights: the isocentre gets 0.5 Gy per beam on the CT, the posterior one more on the sCT
    assert result.on_sct.isocentre_dose_gy == pytest.approx(2.0 + 0.5 * (gain - 1.0), rel=1e-4)
    assert result.ptv.mean_difference_gy > 0 and result.body.mean_difference_gy > 0
    rates = result.pass_rates()
    assert rates["2%/2mm"] == 100.0  # a 200 HU bone error moves this dose by < 1 %
    assert rates["0.5%/1mm"] < 100.0


def test_missing_bone_fails_gamma_2pct_2mm() -> None:
    hu = sp.phantom_hu()
    result = compare_dose_on_ct_and_sct(
        sp.ct(hu), sp.ct(sp.with_bone(hu, 0.0)), PLAN, "2%/2mm", use_numba=False
    )
    assert result.pass_rates()["2%/2mm"] < 100.0
    assert 100.0 * result.ptv.mean_difference_gy / PLAN.prescription_gy > 1.0


def test_refuses_an_sct_off_the_ct_grid_or_not_in_hu() -> None:
    ct = sp.ct(sp.phantom_hu())
    shifted = Volume(ct.array, ct.spacing_mm, (ct.origin_mm[0] + 2.0, *ct.origin_mm[1:]))
    with pytest.raises(VolumeError, match="resample the synthetic CT onto the CT grid"):
        compare_dose_on_ct_and_sct(ct, shifted, PLAN)
    mr = Volume(ct.array + 1000.0, ct.spacing_mm, ct.origin_mm, modality=Modality.MR, unit=Unit.MR_AU)
    with pytest.raises(VolumeError, match="sct must be a CT in HU"):
        compare_dose_on_ct_and_sct(ct, mr, PLAN)


def test_body_mask_fills_internal_air_and_drops_the_couch() -> None:
    hu = sp.phantom_hu()
    hu[:, 20:23, 18:23] = -1000.0  # gas pocket inside the body
    hu[:, -2, :] = 100.0  # a separate "couch" row, below the body
    mask = body_mask(sp.ct(hu))
    assert mask[:, 21, 20].all(), "internal air belongs to the body"
    assert not mask[:, -2, :].any(), "the couch is not the body"
    assert body_centre_mm(sp.ct(sp.phantom_hu(bone=False))) == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)


REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "ct-cort-liver"


@pytest.mark.slow
def test_real_ct_four_field_box() -> None:
    if not REAL.is_dir():
        pytest.skip(f"real data folder {REAL} is absent (see shared/data/real/README.md)")
    from service.dicom.reader import read_series
    from service.validation.dose_calc import calculate_dose_detailed

    full = read_series(REAL)
    k0, k1 = 60, 110  # 50 slices (125 mm) around the liver, to keep the test short
    origin = full.index_to_lps([[0, 0, k0]])[0]
    ct = Volume(full.array[k0:k1], full.spacing_mm, tuple(origin), full.direction)
    iso = body_centre_mm(ct)
    plan = BeamPlan.equally_spaced(4, iso, field_size_mm=100.0, prescription_gy=2.0)
    result = calculate_dose_detailed(ct, plan)
    dose = result.dose.array
    assert result.isocentre_dose_gy == pytest.approx(2.0)
    # radiological depths of an abdomen of ~20-35 cm across, all positive and below its width
    assert all(80.0 < d < 260.0 for d in result.radiological_depth_iso_mm)
    # box plan: hot spot within 10 % of the prescription, no dose outside the body
    assert 2.0 <= float(dose.max()) <= 2.2
    assert not np.any(dose[ct.array < -950])


def test_sct_with_air_at_the_isocentre_is_reported_not_refused() -> None:
    hu = sp.phantom_hu()
    gas = sp.phantom_hu()
    gas[:, 23:28, 18:23] = -1000.0  # a gas pocket around the isocentre in the sCT only
    result = compare_dose_on_ct_and_sct(sp.ct(hu), sp.ct(gas), PLAN, "3%/3mm", use_numba=False)
    assert result.on_ct.isocentre_dose_gy == pytest.approx(2.0)
    assert result.on_sct.isocentre_dose_gy == 0.0
    assert result.ptv.max_abs_difference_gy > 1.5
    assert result.pass_rates()["3%/3mm"] < 100.0
