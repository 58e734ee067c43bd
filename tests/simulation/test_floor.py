"""The anatomy oracle: the sCT error floor set by the simulation's own randomness."""

from __future__ import annotations

import numpy as np
import pytest

from models.simulation.dataset import DatasetOptions, simulate_subject, subject_ct
from models.simulation.floor import anatomy_oracle_metrics, main
from service.errors import OptionError
from service.validation.metrics import image_metrics


def test_subject_ct_is_the_ct_that_simulate_writes() -> None:
    options = DatasetOptions(task="mr-to-ct", site="brain", subjects=2, seed=5, downscale=4)
    _, ct, params, _ = subject_ct(options, 1)
    written = simulate_subject(options, 1)
    np.testing.assert_array_equal(ct, written.images["ct"].array)
    assert written.meta["ct_params"]["noise_sd_hu"] == pytest.approx(params.noise_sd_hu)
    with pytest.raises(OptionError, match="task must be mr-to-ct or cbct-to-ct"):
        subject_ct(DatasetOptions(task="pet", site="brain", subjects=1, seed=5, downscale=4), 0)


def test_oracle_is_far_better_than_a_flat_guess_but_not_perfect() -> None:
    oracle = anatomy_oracle_metrics("brain", 5, 0, downscale=2)
    subject = simulate_subject(
        DatasetOptions(task="mr-to-ct", site="brain", subjects=1, seed=5, downscale=2), 0
    )
    ct = subject.images["ct"]
    water = image_metrics(ct, ct.with_array(np.zeros_like(ct.array)), subject.mask)
    # Noise, texture and the subject's own tissue HU are out of reach: the floor is above 0 ...
    assert oracle.mae_hu > 5.0
    # ... bone (SD 250 HU across subjects) is harder than soft tissue (SD 4-20 HU) ...
    assert oracle.mae_band_hu["bone"] > 2 * oracle.mae_band_hu["soft_tissue"]
    # ... and knowing the anatomy is worth most of the error of a water-filled guess.
    assert oracle.mae_hu < 0.3 * water.mae_hu


def test_command_prints_per_subject_and_mean(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["--site", "brain", "--seed", "5", "--subjects", "1", "--downscale", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["per_subject"]) == 1
    assert out["mean"]["mae_hu"] == pytest.approx(out["per_subject"][0]["mae_hu"])
