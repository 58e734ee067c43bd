"""Agreement with pymedphys.gamma (same inputs and options, random subset off)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from scipy import ndimage

from service.validation.dose_io import read_dose
from service.validation.gamma import GammaCriterion, GammaOptions, gamma, gamma_volumes, volume_axes
from service.volume import Volume

pymedphys = pytest.importorskip("pymedphys", reason="pymedphys is a dev dependency for agreement tests")

# pymedphys compiles its numba interpolator on first use (~10 s).
pytestmark = pytest.mark.slow

#: The spec's tolerance on pass rates (percentage points).
TOLERANCE_PP = 0.2


def _interp_algo() -> str:
    try:
        import numba  # noqa: F401
    except ImportError:
        return "scipy"  # pymedphys' default interpolator needs numba
    return "pymedphys"


def _pymedphys_rate(
    axes_ref: Any,
    ref: np.ndarray,
    axes_ev: Any,
    ev: np.ndarray,
    options: GammaOptions,
    criterion: GammaCriterion,
) -> tuple[float, np.ndarray]:
    g = pymedphys.gamma(
        tuple(axes_ref),
        ref,
        tuple(axes_ev),
        ev,
        criterion.dose_percent,
        criterion.distance_mm,
        lower_percent_dose_cutoff=options.cutoff_percent,
        interp_fraction=options.interp_fraction,
        max_gamma=options.max_gamma,
        local_gamma=options.normalisation_mode.value == "local",
        global_normalisation=options.normalisation_dose,
        random_subset=None,
        interp_algo=_interp_algo(),
    )
    valid = g[~np.isnan(g)]
    return 100.0 * float(np.mean(valid <= 1.0)), g


def _compare(axes_ref: Any, ref: np.ndarray, axes_ev: Any, ev: np.ndarray, options: GammaOptions) -> None:
    ours = gamma(axes_ref, ref, axes_ev, ev, options)
    for res in ours.results:
        rate, g = _pymedphys_rate(axes_ref, ref, axes_ev, ev, options, res.criterion)
        assert abs(res.pass_rate_percent - rate) <= TOLERANCE_PP, (
            str(res.criterion),
            res.pass_rate_percent,
            rate,
        )
        both = ~np.isnan(g)
        assert np.array_equal(both, ~np.isnan(res.gamma_map))
        assert np.nanmax(np.abs(g[both] - res.gamma_map[both])) < 1e-6


def _field_2d(rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    y = np.arange(0, 80, 1.0)
    x = np.arange(0, 90, 1.5)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    box = ((abs(yy - 40) < 22) & (abs(xx - 45) < 25)).astype(float)
    ref = 2.0 * ndimage.gaussian_filter(box, 3.0)
    ev = 1.015 * ndimage.shift(ref, (0.6, -0.4), order=1, mode="nearest") + rng.normal(0, 0.02, ref.shape)
    return (y, x), ref, ev


@pytest.mark.parametrize("normalisation", ["global", "local"])
def test_2d_matches_pymedphys(normalisation: str) -> None:
    axes, ref, ev = _field_2d(np.random.default_rng(11))
    _compare(axes, ref, axes, ev, GammaOptions(criteria="3%/2mm,2%/2mm,1%/1mm", normalisation=normalisation))


def test_2d_different_grids_and_normalisation_dose() -> None:
    axes, ref, _ = _field_2d(np.random.default_rng(12))
    fine = (np.arange(-2.0, 82.0, 0.7), np.arange(-3.0, 92.0, 0.9))
    interp = ndimage.map_coordinates(
        ref, np.meshgrid(fine[0] / 1.0, fine[1] / 1.5, indexing="ij"), order=1, mode="nearest"
    )
    ev = 0.98 * interp
    _compare(
        axes, ref, fine, ev, GammaOptions(criteria="2%/2mm", normalisation_dose=2.2, cutoff_percent=20.0)
    )


def test_3d_matches_pymedphys() -> None:
    rng = np.random.default_rng(13)
    z, y, x = np.arange(0, 36, 3.0), np.arange(0, 50, 2.5), np.arange(0, 60, 2.5)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    ref = 60 * np.exp(-((xx - 30) ** 2 / 200 + (yy - 25) ** 2 / 150 + (zz - 18) ** 2 / 120))
    ev = 1.01 * 60 * np.exp(-((xx - 31) ** 2 / 200 + (yy - 25.5) ** 2 / 150 + (zz - 18) ** 2 / 120))
    ev = ev + rng.normal(0, 0.6, ref.shape)
    _compare((z, y, x), ref, (z, y, x), ev, GammaOptions(criteria="3%/2mm,1%/1mm"))


def _rtdose() -> Volume:
    return read_dose(str(get_testdata_file("rtdose.dcm", download=False)), prescribed_dose_gy=2.0)


@pytest.mark.parametrize(
    "perturbation",
    ["scaled", "shifted", "noisy"],
)
def test_real_rtdose_against_perturbed_copy(perturbation: str) -> None:
    ref = _rtdose()
    rng = np.random.default_rng(7)
    if perturbation == "scaled":
        ev = ref.with_array(ref.array * 1.025)
    elif perturbation == "shifted":
        ev = Volume(
            array=ref.array,
            spacing_mm=ref.spacing_mm,
            origin_mm=(ref.origin_mm[0] + 3.0, ref.origin_mm[1] - 2.0, ref.origin_mm[2] + 1.0),
            direction=ref.direction,
            modality=ref.modality,
            unit=ref.unit,
        )
    else:
        ev = ref.with_array(np.clip(ref.array + rng.normal(0, 0.03, ref.shape), 0, None))
    options = GammaOptions(criteria="3%/3mm,2%/2mm,1%/1mm", cutoff_percent=10.0)
    ours = gamma_volumes(ref, ev, options)
    axes_ref = volume_axes(ref, ref)
    axes_ev = volume_axes(ev, ref)
    for res in ours.results:
        ref64, ev64 = ref.array.astype(np.float64), ev.array.astype(np.float64)
        rate, _ = _pymedphys_rate(axes_ref, ref64, axes_ev, ev64, options, res.criterion)
        if res.points_without_evaluated_dose:
            # pymedphys drops points the evaluated grid does not cover; we count them as failing.
            covered = res.points_evaluated - res.points_without_evaluated_dose
            ours_rate = 100.0 * res.points_passed / covered
        else:
            ours_rate = res.pass_rate_percent
        assert abs(ours_rate - rate) <= TOLERANCE_PP, (perturbation, str(res.criterion), ours_rate, rate)
    # The real file read independently with pydicom gives the same reference maximum.
    ds = pydicom.dcmread(str(get_testdata_file("rtdose.dcm", download=False)))
    assert ours.normalisation_dose == pytest.approx(
        float(ds.pixel_array.max()) * float(ds.DoseGridScaling) * 2.0
    )
