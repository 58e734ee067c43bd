"""The oracles that bound what any model can reach on the simulated held-out sets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.floor import anatomy_oracle, noise_free_oracle
from models.simulation.anatomy import Site
from models.simulation.dataset import DatasetOptions, Task, simulate_subject, subject_ct, subject_pet
from models.simulation.pet import PETParams, simulate_pet
from service.errors import OptionError
from service.validation.metrics import image_metrics


def test_subject_ct_is_the_ct_that_simulate_writes() -> None:
    options = DatasetOptions(task=Task.MR_TO_CT, site=Site.BRAIN, subjects=2, seed=5, downscale=4)
    _, ct, params, _ = subject_ct(options, 1)
    written = simulate_subject(options, 1)
    np.testing.assert_array_equal(ct, written.images["ct"].array)
    assert written.meta["ct_params"]["noise_sd_hu"] == pytest.approx(params.noise_sd_hu)
    pet_options = DatasetOptions(task=Task.PET, site=Site.BRAIN, subjects=1, seed=5, downscale=4)
    with pytest.raises(OptionError, match="task must be mr-to-ct or cbct-to-ct"):
        subject_ct(pet_options, 0)
    with pytest.raises(OptionError, match="task must be pet"):
        subject_pet(options, 0)


def test_anatomy_oracle_is_far_better_than_a_flat_guess_but_not_perfect() -> None:
    oracle = anatomy_oracle("brain", 5, 0, downscale=2)
    subject = simulate_subject(
        DatasetOptions(task=Task.MR_TO_CT, site=Site.BRAIN, subjects=1, seed=5, downscale=2), 0
    )
    ct = subject.images["ct"]
    water = image_metrics(ct, ct.with_array(np.zeros_like(ct.array)), subject.mask)
    # Noise, texture and the subject's own tissue HU are out of reach: the floor is above 0 ...
    assert oracle["mae_hu"] > 5.0
    # ... bone (SD 250 HU across subjects) is harder than soft tissue (SD 4-20 HU) ...
    assert oracle["mae_band_hu_bone"] > 2 * oracle["mae_band_hu_soft_tissue"]
    # ... and knowing the anatomy is worth most of the error of a water-filled guess.
    assert oracle["mae_hu"] < 0.3 * water.mae_hu


def test_noise_free_reconstruction_leaves_the_noisy_images_unchanged() -> None:
    suv = np.zeros((4, 48, 48), dtype=np.float32)
    suv[:, 12:36, 12:36] = 2.0
    params = PETParams()
    plain = simulate_pet(suv, (4.0, 4.0, 4.0), np.random.default_rng(2), (10,), params)
    both = simulate_pet(suv, (4.0, 4.0, 4.0), np.random.default_rng(2), (10,), params, noise_free=True)
    assert plain.expected is None and both.expected is not None
    np.testing.assert_array_equal(plain.full, both.full)
    np.testing.assert_array_equal(plain.low[10], both.low[10])
    # Noise-free: no random draw shapes it, and the low dose strays from it more than the full dose.
    other = simulate_pet(suv, (4.0, 4.0, 4.0), np.random.default_rng(3), (10,), params, noise_free=True)
    np.testing.assert_array_equal(both.expected, other.expected)
    assert not np.array_equal(both.full, other.full)
    inside = suv > 0
    full_noise = (both.full - both.expected)[inside].std()
    low_noise = (both.low[10] - both.expected)[inside].std()
    assert low_noise > 2 * full_noise > 0


def test_noise_free_oracle_gains_over_the_low_dose_input() -> None:
    row = noise_free_oracle("brain", 5, 0, drf=10, downscale=2)
    subject = simulate_subject(
        DatasetOptions(task=Task.PET, site=Site.BRAIN, subjects=1, seed=5, drfs=(10,), downscale=2), 0
    )
    assert row["input_psnr_db"] < row["psnr_db"]
    assert row["psnr_gain_db"] == pytest.approx(row["psnr_db"] - row["input_psnr_db"])
    assert abs(row["body_suvmean_bias_percent"]) < 2.0
    assert np.isfinite(row["organ_suvmean_bias_mean_abs_percent"])
    # The oracle's full and low-dose images are those the dataset holds.
    full = subject.images["pet_full"].array
    mask = subject.mask.array > 0.5
    low = subject.images["pet_low_drf10"].array
    peak = float(full[mask].max())
    input_psnr = 10 * np.log10(peak**2 / float(np.mean((full[mask] - low[mask]) ** 2)))
    assert row["input_psnr_db"] == pytest.approx(input_psnr, rel=1e-6)


def test_floor_command_prints_per_subject_and_mean(capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli.main import main

    args = ["floor", "--task", "mr-to-ct", "--seed", "5", "--subjects", "2", "--downscale", "4"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    maes = [row["mae_hu"] for row in out["per_subject"]]
    assert len(maes) == 2 and maes[0] != maes[1]
    assert out["mean"]["mae_hu"] == pytest.approx(sum(maes) / 2)
    assert out["per_subject"][1] == pytest.approx(anatomy_oracle("brain", 5, 1, downscale=4))


def test_floor_command_refuses_bad_options_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli.main import EXIT_INPUT, main

    assert main(["floor", "--task", "pet", "--seed", "5", "--subjects", "0"]) == EXIT_INPUT
    assert "--subjects must be ≥ 1, got 0: pass the held-out set's size" in capsys.readouterr().err
    assert main(["floor", "--task", "pet", "--seed", "5", "--subjects", "1", "--drf", "1"]) == EXIT_INPUT
    assert "drfs must be dose reduction factors >= 2" in capsys.readouterr().err
