"""Shared fixtures: a few anatomies built once per test session (anatomy is the slow part)."""

from __future__ import annotations

import numpy as np
import pytest

from models.simulation.anatomy import Anatomy, make_anatomy


@pytest.fixture(scope="session")
def pelvis() -> Anatomy:
    return make_anatomy("pelvis", np.random.default_rng(2024))


@pytest.fixture(scope="session")
def head() -> Anatomy:
    return make_anatomy("brain", np.random.default_rng(7))
