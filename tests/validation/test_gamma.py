"""Gamma index: analytic cases, options, Volume API and kernels."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import OptionError, VolumeError
from service.validation import gamma_kernel
from service.validation.gamma import GammaCriterion, GammaOptions, gamma, gamma_volumes
from service.volume import Modality, Unit, Volume


def _axes(shape: tuple[int, ...], spacing: float) -> tuple[np.ndarray, ...]:
    return tuple(np.arange(n) * spacing for n in shape)


def _gauss(
    axes: tuple[np.ndarray, ...], centre: tuple[float, ...], width: float, shift: float = 0.0
) -> np.ndarray:
    mesh = np.meshgrid(*axes, indexing="ij")
    r2 = sum(
        (m - c - (shift if i == len(axes) - 1 else 0.0)) ** 2
        for i, (m, c) in enumerate(zip(mesh, centre, strict=True))
    )
    return np.asarray(50.0 * np.exp(-r2 / (2 * width**2)), dtype=np.float64)


def test_parse_criterion() -> None:
    assert GammaCriterion.parse("3%/2mm") == GammaCriterion(3.0, 2.0)
    assert GammaCriterion.parse(" 2.5 % / 1.5 MM ") == GammaCriterion(2.5, 1.5)
    assert str(GammaCriterion(3, 2)) == "3%/2mm"
    with pytest.raises(OptionError, match="3%/2mm"):
        GammaCriterion.parse("3/2")
    with pytest.raises(OptionError, match="distance_mm"):
        GammaCriterion(3.0, 0.0)


def test_options_validated_once() -> None:
    options = GammaOptions(criteria="3%/2mm,2%/2mm", normalisation="LOCAL")
    assert options.criteria == (GammaCriterion(3, 2), GammaCriterion(2, 2))
    assert options.normalisation_mode.value == "local"
    for bad in (
        {"interp_fraction": 0},
        {"max_gamma": 0.5},
        {"cutoff_percent": 120.0},
        {"normalisation": "x"},
        {"interp_fraction": 40, "max_gamma": 2.0},  # 80 search steps per radius: too fine
    ):
        with pytest.raises(OptionError):
            GammaOptions(criteria="3%/2mm", **bad)
    with pytest.raises(OptionError, match="local"):
        GammaOptions(criteria="3%/2mm", normalisation="local", cutoff_percent=0.0)


@pytest.mark.parametrize("shape", [(40, 44), (14, 16, 18)])
def test_identical_is_all_zero(shape: tuple[int, ...]) -> None:
    axes = _axes(shape, 2.0)
    dose = _gauss(axes, tuple(n for n in np.array(shape) * 1.0), 8.0)
    result = gamma(axes, dose, axes, dose, GammaOptions(criteria="2%/2mm,1%/1mm"))
    for res in result.results:
        assert res.pass_rate_percent == 100.0
        assert np.nanmax(res.gamma_map) == 0.0
        assert res.points_evaluated == int(np.count_nonzero(dose >= 0.1 * dose.max()))
        assert np.all(np.isnan(res.gamma_map[dose < 0.1 * dose.max()]))


def _plateaus(shape: tuple[int, int]) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Two flat plateaus (100 % and 30 % of 50 Gy) joined by a smooth ramp along the last axis."""
    axes = _axes(shape, 1.0)
    x = np.meshgrid(*axes, indexing="ij")[-1]
    ramp = 1.0 / (1.0 + np.exp(-(x - x.max() / 2) / 2.0))
    return axes, 50.0 * (0.3 + 0.7 * ramp)


def test_scale_exactly_at_dose_criterion_passes_and_above_fails() -> None:
    axes, ref = _plateaus((20, 80))
    at = gamma(axes, ref, axes, ref * 1.02, GammaOptions(criteria="2%/1mm"))["2%/1mm"]
    assert np.nanmax(at.gamma_map) <= 1.0 + 1e-9
    assert np.nanmax(at.gamma_map) > 0.99  # the maximum is exactly at the criterion
    above = gamma(axes, ref, axes, ref * 1.021, GammaOptions(criteria="2%/1mm"))["2%/1mm"]
    flat_top = ref > 0.999 * ref.max()
    assert np.all(above.gamma_map[flat_top] > 1.0)
    assert above.pass_rate_percent < 100.0


def test_shift_equal_to_dta_passes_and_larger_shift_fails() -> None:
    axes = _axes((30, 34, 40), 1.0)
    ref = _gauss(axes, (15.0, 17.0, 20.0), 5.0)
    shifted = _gauss(axes, (15.0, 17.0, 20.0), 5.0, shift=2.0)
    ok = gamma(axes, ref, axes, shifted, GammaOptions(criteria="1%/2mm"))["1%/2mm"]
    assert ok.pass_rate_percent == 100.0
    assert np.nanmax(ok.gamma_map) <= 1.0 + 1e-9
    far = _gauss(axes, (15.0, 17.0, 20.0), 5.0, shift=3.0)
    bad = gamma(axes, ref, axes, far, GammaOptions(criteria="1%/2mm"))["1%/2mm"]
    assert bad.pass_rate_percent < 90.0


def test_local_and_global_differ_as_expected() -> None:
    axes, ref = _plateaus((12, 80))
    evaluated = ref * 1.03
    low = ref < 15.0 * (1 + 1e-6)  # plateau interiors, > 2 mm from the ramp
    high = ref > 50.0 * (1 - 1e-6)
    assert np.count_nonzero(low) > 100 and np.count_nonzero(high) > 100
    glob = gamma(axes, ref, axes, evaluated, GammaOptions(criteria="2%/1mm"))["2%/1mm"]
    loc = gamma(axes, ref, axes, evaluated, GammaOptions(criteria="2%/1mm", normalisation="local"))["2%/1mm"]
    # Global: 3 % of 15 Gy is 0.9 % of the maximum -> passes; 3 % at the maximum fails.
    assert np.all(glob.gamma_map[low] <= 1.0) and np.all(glob.gamma_map[high] > 1.0)
    # Local: 3 % of the local dose fails on both plateaus, exactly 1.5 gamma.
    assert np.allclose(loc.gamma_map[low], 1.5) and np.allclose(loc.gamma_map[high], 1.5)
    assert loc.pass_rate_percent < glob.pass_rate_percent


def test_max_gamma_caps_values_and_cutoff_uses_normalisation_dose() -> None:
    axes, ref = _plateaus((10, 40))
    res = gamma(axes, ref, axes, ref * 1.5, GammaOptions(criteria="1%/1mm", max_gamma=2.0))["1%/1mm"]
    assert np.nanmax(res.gamma_map) == 2.0
    opts = GammaOptions(criteria="1%/1mm", normalisation_dose=100.0, cutoff_percent=20.0)
    result = gamma(axes, ref, axes, ref, opts)
    assert result.cutoff_dose == 20.0
    assert result["1%/1mm"].points_evaluated == int(np.count_nonzero(ref >= 20.0))


def test_evaluated_on_another_grid_and_outside_points() -> None:
    axes = _axes((40, 40), 1.0)
    ref = _gauss(axes, (20.0, 20.0), 6.0)
    fine = tuple(np.arange(-5.0, 45.0, 0.5) for _ in range(2))
    evaluated = _gauss(fine, (20.0, 20.0), 6.0)
    res = gamma(axes, ref, fine, evaluated, GammaOptions(criteria="1%/1mm", cutoff_percent=1.0))["1%/1mm"]
    assert res.pass_rate_percent == 100.0
    # An evaluated grid covering only half the reference: uncovered points fail, with inf.
    half = (np.arange(0.0, 20.0, 1.0), axes[1])
    res = gamma(axes, ref, half, ref[:20], GammaOptions(criteria="1%/1mm", cutoff_percent=1.0))["1%/1mm"]
    assert res.points_without_evaluated_dose > 0
    assert np.all(np.isinf(res.gamma_map[25:][ref[25:] >= 0.01 * ref.max()]))
    assert res.pass_rate_percent < 100.0


def test_bad_axes_are_refused() -> None:
    axes = _axes((10, 10), 1.0)
    dose = np.ones((10, 10))
    with pytest.raises(VolumeError, match="regular grid"):
        gamma(
            axes,
            dose,
            (np.array([0, 1, 3, 4, 5, 6, 7, 8, 9, 10.0]), axes[1]),
            dose,
            GammaOptions(criteria="3%/2mm"),
        )
    with pytest.raises(VolumeError, match="one coordinate axis"):
        gamma(axes[:1], dose, axes, dose, GammaOptions(criteria="3%/2mm"))


def test_numpy_and_numba_kernels_agree() -> None:
    if gamma_kernel.search_numba() is None:
        pytest.skip("numba is not installed: only the NumPy kernel exists here")
    rng = np.random.default_rng(3)
    axes = _axes((12, 14, 16), 2.0)
    ref = _gauss(axes, (12.0, 14.0, 16.0), 6.0)
    evaluated = _gauss(axes, (12.0, 14.0, 16.0), 6.0, shift=1.0) * 1.01 + rng.normal(0, 0.4, ref.shape)
    for normalisation in ("global", "local"):
        opts = dict(criteria="2%/2mm,1%/1mm", normalisation=normalisation)
        fast = gamma(axes, ref, axes, evaluated, GammaOptions(**opts))  # type: ignore[arg-type]
        slow = gamma(axes, ref, axes, evaluated, GammaOptions(**opts, use_numba=False))  # type: ignore[arg-type]
        assert fast.kernel == "numba" and slow.kernel == "numpy"
        for a, b in zip(fast.results, slow.results, strict=True):
            np.testing.assert_allclose(a.gamma_map, b.gamma_map, rtol=0, atol=1e-9)


def _dose_volume(
    array: np.ndarray, origin: tuple[float, float, float], direction: np.ndarray | None = None
) -> Volume:
    return Volume(
        array=array,
        spacing_mm=(2.0, 2.0, 2.0),
        origin_mm=origin,
        direction=np.eye(3) if direction is None else direction,
        modality=Modality.RTDOSE,
        unit=Unit.GY,
    )


def test_gamma_volumes_uses_physical_positions() -> None:
    axes = _axes((14, 16, 18), 2.0)
    dose = _gauss(axes, (14.0, 16.0, 18.0), 7.0)
    ref = _dose_volume(dose, (0.0, 0.0, 0.0))
    moved = _dose_volume(dose, (2.0, 0.0, 0.0))  # same values 2 mm further along +x
    assert gamma_volumes(ref, moved, GammaOptions(criteria="1%/2mm"))["1%/2mm"].pass_rate_percent == 100.0
    assert gamma_volumes(ref, moved, GammaOptions(criteria="1%/1mm"))["1%/1mm"].pass_rate_percent < 90.0
    flipped = _dose_volume(dose, (0.0, 0.0, 0.0), np.diag([-1.0, 1.0, 1.0]))
    with pytest.raises(VolumeError, match="directions"):
        gamma_volumes(ref, flipped, GammaOptions(criteria="3%/2mm"))
    ct = Volume(array=dose, spacing_mm=(2.0, 2.0, 2.0))
    with pytest.raises(VolumeError, match="RT dose"):
        gamma_volumes(ref, ct, GammaOptions(criteria="3%/2mm"))


def test_shell_distances_follow_pymedphys_sequence() -> None:
    distances = gamma_kernel.shell_distances_mm(2.0, 10, 2.0)
    assert distances[0] == 0.0 and 2.0 in distances
    assert max(distances) <= 4.0 + 1e-9 and len(distances) in (20, 21)
    offsets, starts, radii = gamma_kernel.shell_offsets(2.0, 10, 2.0, 3)
    norms = np.linalg.norm(offsets, axis=1)
    for k, radius in enumerate(radii):
        np.testing.assert_allclose(norms[starts[k] : starts[k + 1]], radius, atol=1e-12)


def test_single_plane_volumes_get_a_2d_gamma() -> None:
    axes = _axes((30, 34), 1.0)
    plane = _gauss(axes, (15.0, 17.0), 5.0)
    shifted = _gauss(axes, (15.0, 17.0), 5.0, shift=1.0)
    ref = Volume(array=plane[None], spacing_mm=(1.0, 1.0, 3.0), modality=Modality.RTDOSE, unit=Unit.GY)
    ev = ref.with_array(shifted[None])
    opts = GammaOptions(criteria="1%/1mm,1%/0.5mm")
    volumes = gamma_volumes(ref, ev, opts)
    arrays = gamma(axes, plane.astype(np.float32), axes, shifted.astype(np.float32), opts)
    for a, b in zip(volumes.results, arrays.results, strict=True):
        assert a.gamma_map.shape == (1, 30, 34)
        np.testing.assert_array_equal(a.gamma_map[0], b.gamma_map)
        assert a.pass_rate_percent == b.pass_rate_percent
    assert volumes["1%/1mm"].pass_rate_percent == 100.0 and volumes["1%/0.5mm"].pass_rate_percent < 100.0
