"""Digital anatomy: determinism, the tissues present, partial-volume bookkeeping, body mask."""

from __future__ import annotations

import numpy as np
import pytest

from models.simulation.anatomy import Anatomy, Site, make_anatomy
from models.simulation.tissues import N_TISSUES, Tissue
from service.errors import OptionError


def test_same_seed_same_anatomy_different_seed_different() -> None:
    a = make_anatomy("pelvis", np.random.default_rng(5), downscale=2)
    b = make_anatomy("pelvis", np.random.default_rng(5), downscale=2)
    c = make_anatomy("pelvis", np.random.default_rng(6), downscale=2)
    assert np.array_equal(a.samples, b.samples)
    assert np.array_equal(a.lesions, b.lesions)
    assert not np.array_equal(a.samples, c.samples)


def test_pelvis_has_its_tissues(pelvis: Anatomy) -> None:
    present = set(np.unique(pelvis.samples).tolist())
    needed = {
        Tissue.AIR, Tissue.SOFT_TISSUE, Tissue.FAT, Tissue.MUSCLE, Tissue.CORTICAL_BONE,
        Tissue.CANCELLOUS_BONE, Tissue.BLADDER, Tissue.PROSTATE,
    }  # fmt: skip
    assert needed <= present
    assert Tissue.GREY_MATTER not in present


def test_head_has_its_tissues(head: Anatomy) -> None:
    present = set(np.unique(head.samples).tolist())
    needed = {
        Tissue.AIR, Tissue.AIR_CAVITY, Tissue.SOFT_TISSUE, Tissue.FAT, Tissue.CORTICAL_BONE,
        Tissue.CANCELLOUS_BONE, Tissue.GREY_MATTER, Tissue.WHITE_MATTER, Tissue.CSF,
    }  # fmt: skip
    assert needed <= present
    assert Tissue.PROSTATE not in present
    # Brain volume of an adult: about 1.0-1.8 l (GM + WM + CSF inside the skull).
    voxel_ml = np.prod(head.grid.spacing_mm) / 1000.0
    brain = head.fractions()[[Tissue.GREY_MATTER, Tissue.WHITE_MATTER]].sum() * voxel_ml
    assert 700.0 < brain < 1800.0


def test_fractions_sum_to_one_and_average_is_their_weighted_sum(pelvis: Anatomy) -> None:
    fractions = pelvis.fractions()
    assert fractions.shape == (N_TISSUES, *pelvis.shape)
    np.testing.assert_allclose(fractions.sum(axis=0), 1.0, atol=1e-6)
    table = np.random.default_rng(0).normal(size=N_TISSUES).astype(np.float32)
    expected = np.tensordot(table, fractions, axes=1)
    np.testing.assert_allclose(pelvis.average(table), expected, atol=1e-5)
    # partial volume exists: some voxels mix tissues, most do not
    pure = pelvis.pure()
    assert 0.5 < pure.mean() < 0.99


def test_body_mask_holds_the_body_and_internal_air(pelvis: Anatomy) -> None:
    dominant = pelvis.dominant()
    inside = (dominant != Tissue.AIR) & (dominant != Tissue.AIR_CAVITY)
    assert pelvis.body[inside].mean() > 0.99
    assert not pelvis.body[dominant == Tissue.AIR].any() or pelvis.body[dominant == Tissue.AIR].mean() < 0.01
    assert pelvis.body[0, 0, 0] == 0  # the corner is outside


def test_head_grid_and_lesions_inside_brain(head: Anatomy) -> None:
    assert head.shape == (64, 128, 128)
    assert not head.body[-1].any()  # the vertex is inside the field of view
    assert head.grid.spacing_mm == (2.0, 2.0, 3.0)
    if head.lesions.any():
        assert head.body[head.lesions > 0].all()


def test_site_and_options_are_checked() -> None:
    assert Site.parse("Brain") is Site.BRAIN
    with pytest.raises(OptionError, match="site must be 'brain' or 'pelvis'"):
        make_anatomy("thorax", np.random.default_rng(0))
    with pytest.raises(OptionError, match=r"downscale must be 1\.\.8"):
        make_anatomy("pelvis", np.random.default_rng(0), downscale=0)
