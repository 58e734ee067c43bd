"""PET evaluation by organ and lesion labels: known biases are recovered; simulated labels carry lesions."""

from __future__ import annotations

import numpy as np
import pytest

from export.evaluate import label_biases
from models.simulation.anatomy import Site
from models.simulation.dataset import LESION_LABEL_BASE, DatasetOptions, Task, simulate_subject


def test_label_biases_recover_known_organ_and_lesion_errors() -> None:
    labels = np.zeros((4, 20, 20), dtype=np.uint8)
    labels[:, :10] = 7  # an organ of 800 voxels
    labels[:, 10:] = 4  # another organ
    labels[1:3, 4:6, 4:6] = LESION_LABEL_BASE + 1  # a lesion inside the first organ
    full = np.where(labels == 7, 8.0, 1.0).astype(np.float32)
    full[labels == LESION_LABEL_BASE + 1] = 10.0
    out = full.copy()
    out[labels == 7] *= 1.02  # organ 7: +2 % SUVmean
    out[labels == 4] *= 0.99  # organ 4: -1 %
    out[labels == LESION_LABEL_BASE + 1] = 9.0  # lesion: SUVmax -10 %
    result = label_biases(full, out, labels)
    assert result["organ_suvmean_bias_max_abs_percent"] == pytest.approx(2.0, abs=1e-4)
    assert result["organ_suvmean_bias_mean_abs_percent"] == pytest.approx(1.5, abs=1e-4)
    assert result["lesion_suvmax_bias_max_abs_percent"] == pytest.approx(10.0, abs=1e-4)


@pytest.mark.slow
def test_simulated_pet_labels_mark_each_lesion() -> None:
    options = DatasetOptions(
        task=Task.PET, site=Site.BRAIN, subjects=1, seed=3, downscale=2, drfs=(10,), write_labels=True
    )
    subject = simulate_subject(options, 0)
    assert subject.labels is not None
    labels = np.rint(subject.labels.array).astype(int)
    n_lesions = int(subject.meta["lesions"])
    assert n_lesions >= 1  # seed 3 draws one lesion
    lesion_labels = sorted(set(np.unique(labels[labels >= LESION_LABEL_BASE]).tolist()))
    assert lesion_labels == [LESION_LABEL_BASE + k for k in range(1, n_lesions + 1)]
    suv = subject.images["pet_full"].array
    body = subject.mask.array > 0.5
    assert suv[labels >= LESION_LABEL_BASE].max() > 2 * np.median(suv[body])  # lesions are hot


def test_pet_target_needs_psnr_gain_and_both_biases() -> None:
    from export.evaluate import meets_target

    good = {
        "psnr_gain_db": 6.5,
        "organ_suvmean_bias_mean_abs_percent": 2.0,
        "lesion_suvmax_bias_mean_abs_percent": 8.0,
    }
    assert meets_target("pet-denoise", good)
    assert not meets_target("pet-denoise", {**good, "psnr_gain_db": 5.9})
    assert not meets_target("pet-denoise", {**good, "organ_suvmean_bias_mean_abs_percent": 3.1})
    assert not meets_target("pet-denoise", {**good, "lesion_suvmax_bias_mean_abs_percent": 10.5})
    # Without labels the biases are unknown: not shown met.
    assert not meets_target("pet-denoise", {"psnr_gain_db": 9.0})
