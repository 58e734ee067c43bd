"""MR simulator: signal equations in the image, dark bone and air, Rician noise, 12-bit scaling."""

from __future__ import annotations

import numpy as np
import pytest

from models.simulation.anatomy import Anatomy
from models.simulation.mr import MR_MAX, MRParams, MRSequence, MRWeighting, simulate_mr
from models.simulation.tissues import Tissue, relaxation_table
from service.errors import OptionError


def _clean(**kw: object) -> MRParams:
    base: dict[str, object] = {"snr": 1e6, "bias_amplitude": 0.0, "offset": 0.0, "tissue_spread": 0.0}
    base.update(kw)
    return MRParams(**base)  # type: ignore[arg-type]


def _pure_mean(anatomy: Anatomy, image: np.ndarray, tissue: Tissue) -> float:
    region = anatomy.pure() & (anatomy.samples[0] == tissue)
    assert region.sum() > 20, tissue
    return float(image[region].mean())


@pytest.mark.parametrize("b0", [1.5, 3.0])
def test_spin_echo_tissue_ratios_follow_the_relaxation_table(head: Anatomy, b0: float) -> None:
    tr, te = 3000.0, 90.0
    params = _clean(weighting="t2", b0_tesla=b0, tr_ms=tr, te_ms=te)
    image = simulate_mr(head, np.random.default_rng(0), params)
    t1, t2, pd = relaxation_table(b0)

    def se(t: Tissue) -> float:  # independent form, TE << TR
        return float(pd[t] * (1 - np.exp(-tr / t1[t])) * np.exp(-te / t2[t]))

    for a, b in ((Tissue.GREY_MATTER, Tissue.WHITE_MATTER), (Tissue.CSF, Tissue.GREY_MATTER)):
        measured = _pure_mean(head, image, a) / _pure_mean(head, image, b)
        assert measured == pytest.approx(se(a) / se(b), rel=0.03)


def test_t1_and_t2_weighting_order_brain_tissues(head: Anatomy) -> None:
    t1w = simulate_mr(head, np.random.default_rng(0), _clean(weighting="t1", tr_ms=500.0, te_ms=10.0))
    t2w = simulate_mr(head, np.random.default_rng(0), _clean(weighting="t2", tr_ms=4000.0, te_ms=100.0))
    gm, wm, csf = Tissue.GREY_MATTER, Tissue.WHITE_MATTER, Tissue.CSF
    assert _pure_mean(head, t1w, wm) > _pure_mean(head, t1w, gm) > _pure_mean(head, t1w, csf)
    assert _pure_mean(head, t2w, csf) > _pure_mean(head, t2w, gm) > _pure_mean(head, t2w, wm)


@pytest.mark.parametrize("seed", range(4))
def test_bone_and_air_are_both_dark(pelvis: Anatomy, seed: int) -> None:
    rng = np.random.default_rng(seed)
    params = MRParams.random(rng, weighting=("t1", "t2")[seed % 2])
    image = simulate_mr(pelvis, rng, params)
    soft = _pure_mean(pelvis, image, Tissue.MUSCLE)
    assert _pure_mean(pelvis, image, Tissue.CORTICAL_BONE) < 0.25 * soft
    assert _pure_mean(pelvis, image, Tissue.AIR) < 0.25 * soft


@pytest.mark.parametrize("weighting", ["t1", "t2"])
def test_skull_and_sinus_air_are_both_dark_in_the_head(head: Anatomy, weighting: str) -> None:
    rng = np.random.default_rng(11)
    image = simulate_mr(head, rng, MRParams.random(rng, weighting))
    brain = min(_pure_mean(head, image, Tissue.GREY_MATTER), _pure_mean(head, image, Tissue.WHITE_MATTER))
    for dark in (Tissue.CORTICAL_BONE, Tissue.AIR_CAVITY):
        # thin structures: every voxel whose samples are mostly that tissue
        region = head.fractions()[dark] >= 0.75
        assert region.sum() > 5, dark
        assert float(image[region].mean()) < 0.35 * brain, dark


def test_background_noise_is_rayleigh(pelvis: Anatomy) -> None:
    image = simulate_mr(pelvis, np.random.default_rng(1), _clean(snr=5.0, target_max=4000.0))
    air = image[pelvis.pure() & (pelvis.samples[0] == Tissue.AIR)]
    # Rician with zero signal = Rayleigh: mean / SD = sqrt(pi/2) / sqrt(2 - pi/2) = 1.913
    rayleigh = np.sqrt(np.pi / 2) / np.sqrt(2 - np.pi / 2)
    assert float(air.mean() / air.std()) == pytest.approx(rayleigh, rel=0.05)


def test_scaling_is_12_bit_integer_and_deterministic(pelvis: Anatomy) -> None:
    p = MRParams.random(np.random.default_rng(9))
    a = simulate_mr(pelvis, np.random.default_rng(2), p)
    b = simulate_mr(pelvis, np.random.default_rng(2), p)
    c = simulate_mr(pelvis, np.random.default_rng(3), p)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= MR_MAX and np.array_equal(a, np.rint(a))
    assert np.percentile(a, 99.5) == pytest.approx(p.target_max + p.offset, rel=0.02)


def test_random_protocols_are_in_clinical_ranges() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = MRParams.random(rng, "t1")
        assert p.weighting is MRWeighting.T1 and p.b0_tesla in (1.5, 3.0)
        if p.sequence is MRSequence.SPIN_ECHO:
            assert 400 <= p.tr_ms <= 700 and 8 <= p.te_ms <= 20
        else:
            assert p.tr_ms <= 25 and p.te_ms <= 5 and 8 <= p.flip_deg <= 25


def test_params_are_validated() -> None:
    with pytest.raises(OptionError, match=r"te_ms .* must be shorter than tr_ms"):
        MRParams(tr_ms=10.0, te_ms=20.0)
    with pytest.raises(OptionError, match="weighting must be 't1' or 't2'"):
        MRParams(weighting="pd")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="b0_tesla must be one of"):
        MRParams(b0_tesla=7.0)
