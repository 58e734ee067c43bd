"""Tissue tables: complete, physically ordered, and validated at the entry points."""

from __future__ import annotations

import numpy as np
import pytest

from models.simulation.tissues import (
    LESION_SUV_RANGE,
    N_TISSUES,
    PROPERTIES,
    Tissue,
    check_field_strength,
    hu_table,
    relaxation_table,
    suv_map,
    suv_table,
)
from service.errors import OptionError


def test_every_tissue_has_properties_and_tables_are_indexed_by_label() -> None:
    assert set(PROPERTIES) == set(Tissue)
    mean, sd = hu_table()
    assert mean.shape == sd.shape == (N_TISSUES,)
    for tissue in Tissue:
        assert mean[tissue] == PROPERTIES[tissue].hu_mean


def test_hu_ordering_follows_density() -> None:
    mean, _ = hu_table()
    assert mean[Tissue.AIR] < mean[Tissue.FAT] < mean[Tissue.CSF] < mean[Tissue.WHITE_MATTER]
    assert mean[Tissue.WHITE_MATTER] < mean[Tissue.GREY_MATTER] < mean[Tissue.CANCELLOUS_BONE]
    assert mean[Tissue.CANCELLOUS_BONE] < mean[Tissue.CORTICAL_BONE]


def test_t1_lengthens_with_field_for_soft_tissues() -> None:
    t1_15, _, _ = relaxation_table(1.5)
    t1_3, _, _ = relaxation_table(3.0)
    soft = [Tissue.FAT, Tissue.MUSCLE, Tissue.GREY_MATTER, Tissue.WHITE_MATTER, Tissue.PROSTATE]
    assert all(t1_3[t] > t1_15[t] for t in soft)


def test_bone_and_air_have_no_usable_mr_signal_sources() -> None:
    _, t2, pd = relaxation_table(3.0)
    assert pd[Tissue.AIR] == pd[Tissue.AIR_CAVITY] == 0.0
    assert t2[Tissue.CORTICAL_BONE] < 1.0  # ms: gone by any clinical echo time
    assert pd[Tissue.CORTICAL_BONE] < 0.25


def test_field_strength_is_checked() -> None:
    assert check_field_strength(3) == 3.0
    with pytest.raises(OptionError, match=r"b0_tesla .* pass 1\.5 or 3\.0"):
        relaxation_table(2.0)


def test_tissue_parse() -> None:
    assert Tissue.parse("grey-matter") is Tissue.GREY_MATTER
    assert Tissue.parse(10) is Tissue.BLADDER
    with pytest.raises(OptionError, match="tissue must be one of"):
        Tissue.parse("liver")


def test_suv_map_uses_table_means_and_lesion_range() -> None:
    labels = np.zeros((4, 6, 6), dtype=np.uint8)
    labels[:, :3] = Tissue.GREY_MATTER
    labels[:, 3:] = Tissue.MUSCLE
    lesions = np.zeros_like(labels)
    lesions[1, 1, 1] = 1
    suv = suv_map(labels, np.random.default_rng(0), lesions, spread=False)
    mean, _ = suv_table()
    assert suv[0, 0, 0] == pytest.approx(mean[Tissue.GREY_MATTER])
    assert suv[0, 5, 5] == pytest.approx(mean[Tissue.MUSCLE])
    assert LESION_SUV_RANGE[0] <= suv[1, 1, 1] <= LESION_SUV_RANGE[1]
    with pytest.raises(OptionError, match="lesions must have the labels' shape"):
        suv_map(labels, np.random.default_rng(0), lesions[:2])
