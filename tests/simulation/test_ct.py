"""CT simulator: table HU inside tissues, partial volume, noise level, range, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from models.simulation.anatomy import Anatomy
from models.simulation.ct import HU_MAX, HU_MIN, CTParams, simulate_ct
from models.simulation.tissues import Tissue, hu_table
from service.errors import OptionError

FLAT = CTParams(noise_sd_hu=0.0, tissue_spread=0.0, texture_fraction=0.0)


def test_noise_free_ct_is_the_tissue_table_with_partial_volume(pelvis: Anatomy) -> None:
    ct = simulate_ct(pelvis, np.random.default_rng(0), FLAT)
    mean, _ = hu_table()
    pure = pelvis.pure()
    first = pelvis.samples[0]
    for tissue in (Tissue.FAT, Tissue.MUSCLE, Tissue.BLADDER, Tissue.PROSTATE, Tissue.CANCELLOUS_BONE):
        inside = pure & (first == tissue)
        assert inside.sum() > 20, tissue
        assert float(ct[inside].mean()) == pytest.approx(float(mean[tissue]), abs=0.5), tissue
    # mixed voxels take the volume-weighted mean (to integer rounding)
    expected = np.clip(np.tensordot(mean, pelvis.fractions(), axes=1), HU_MIN, HU_MAX)
    assert np.abs(ct - expected).max() <= 0.5 + 1e-3


def test_noise_sd_matches_the_request(pelvis: Anatomy) -> None:
    params = CTParams(noise_sd_hu=20.0, noise_correlation_mm=1.5, tissue_spread=0.0, texture_fraction=0.0)
    ct = simulate_ct(pelvis, np.random.default_rng(1), params)
    clean = simulate_ct(pelvis, np.random.default_rng(1), FLAT)
    region = pelvis.pure() & (pelvis.samples[0] == Tissue.MUSCLE)
    residual = (ct - clean)[region]
    assert abs(float(residual.mean())) < 1.0
    assert float(residual.std()) == pytest.approx(20.0, rel=0.08)
    # Gaussian-blurred white noise: lag-1 correlation of the sampled kernel (radius 3 sigma)
    noise = ct - clean
    sigma = 1.5 / pelvis.grid.spacing_mm[0]
    x = np.arange(-int(3 * sigma + 0.5), int(3 * sigma + 0.5) + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    expected = float((k[:-1] * k[1:]).sum() / (k * k).sum())
    r = np.corrcoef(noise[:, :, :-1].ravel(), noise[:, :, 1:].ravel())[0, 1]
    assert r == pytest.approx(expected, abs=0.03)
    r_slices = np.corrcoef(noise[:-1].ravel(), noise[1:].ravel())[0, 1]
    assert abs(r_slices) < 0.05  # slices are reconstructed independently


def test_tissue_spread_moves_subject_means_within_the_table_sd(pelvis: Anatomy) -> None:
    mean, sd = hu_table()
    region = pelvis.pure() & (pelvis.samples[0] == Tissue.FAT)
    means = []
    for seed in range(6):
        ct = simulate_ct(pelvis, np.random.default_rng(seed), CTParams(noise_sd_hu=0.0, texture_fraction=0.0))
        means.append(float(ct[region].mean()))
    assert np.std(means) > 1.0  # subjects differ
    assert all(abs(m - mean[Tissue.FAT]) < 2.0 * sd[Tissue.FAT] for m in means)


def test_ct_is_deterministic_integer_and_in_range(pelvis: Anatomy) -> None:
    a = simulate_ct(pelvis, np.random.default_rng(3), CTParams.random(np.random.default_rng(3)))
    b = simulate_ct(pelvis, np.random.default_rng(3), CTParams.random(np.random.default_rng(3)))
    c = simulate_ct(pelvis, np.random.default_rng(4), CTParams.random(np.random.default_rng(4)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == pelvis.shape
    assert np.array_equal(a, np.rint(a)) and a.min() >= HU_MIN and a.max() <= HU_MAX


def test_params_are_validated() -> None:
    with pytest.raises(OptionError, match=r"CTParams.noise_sd_hu must be in \[0.0, 200.0\]"):
        CTParams(noise_sd_hu=-1.0)
    p = CTParams.random(np.random.default_rng(0))
    assert 10.0 <= p.noise_sd_hu <= 25.0
