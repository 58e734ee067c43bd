"""Tomographic operators: line integrals against analytic chords, Parker weights, FBP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.simulation import projector as proj
from service.errors import OptionError


def _disc(n: int, d_mm: float, radius_mm: float) -> np.ndarray:
    xy = proj.pixel_centres_mm((n, n), (d_mm, d_mm))
    # 4x4 supersampled disc so partial-volume pixels are right to first order
    sub = (np.arange(4) - 1.5) / 4 * d_mm
    frac = np.zeros(n * n)
    for ox in sub:
        for oy in sub:
            frac += np.hypot(xy[:, 0] + ox, xy[:, 1] + oy) < radius_mm
    return (frac / 16).astype(np.float32)


def test_parallel_line_integrals_match_analytic_chords() -> None:
    n, d, radius = 96, 2.0, 70.0
    disc = _disc(n, d, radius)
    theta = np.array([0.0, 0.37, math.pi / 4, 1.9])
    s = np.linspace(-60.0, 60.0, 13)
    mat = proj.parallel_matrix((n, n), (d, d), theta, s)
    got = np.asarray(mat @ disc).reshape(theta.size, s.size)
    expected = 2.0 * np.sqrt(radius**2 - s**2)
    # chords of 2*sqrt(70^2 - s^2) mm; pixel discretisation error below 1 mm (of 75..140 mm)
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), atol=1.0)


def test_fan_rays_pass_through_source_and_detector_point() -> None:
    beta = np.array([0.0, 1.0])
    u = np.array([-100.0, 0.0, 50.0])
    src, d = proj.fan_rays(beta, u, 1000.0)
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0)
    # the central ray (u = 0) goes through the isocentre
    for v in range(2):
        s0, d0 = src[v * 3 + 1], d[v * 3 + 1]
        assert abs(s0[0] * d0[1] - s0[1] * d0[0]) < 1e-9


def test_parker_weights_of_conjugate_rays_sum_to_one() -> None:
    sid, arc = 1000.0, math.radians(215.0)
    u = proj.detector_u_mm(64, 4.0)
    gamma = np.arctan(u / sid)
    beta = np.linspace(0.0, arc, 400)
    w = proj.parker_weights(beta, gamma, arc)
    bi, gi = np.meshgrid(np.arange(beta.size), np.arange(gamma.size), indexing="ij")
    b_conj = beta[bi] + math.pi - 2 * gamma[gi]
    inside = b_conj <= arc
    w_conj = np.array(
        [
            proj.parker_weights(np.array([b]), np.array([-gamma[g]]), arc)[0, 0]
            for b, g in zip(b_conj[inside][::97], gi[inside][::97], strict=True)
        ]
    )
    np.testing.assert_allclose(w[inside][::97] + w_conj, 1.0, atol=1e-6)
    assert w.min() >= 0.0 and w.max() <= 1.0


def test_ramp_filter_rejects_unknown_window() -> None:
    with pytest.raises(OptionError, match="recon filter"):
        proj.ramp_filter(np.zeros((2, 8, 1), dtype=np.float32), 1.0, "cosine")


@pytest.mark.parametrize("arc_deg", [360.0, 210.0])
def test_fan_fbp_recovers_a_disc(arc_deg: float) -> None:
    n, d, sid = 96, 2.5, 1000.0
    img = _disc(n, d, 90.0) * np.float32(0.02)
    u = proj.detector_u_mm(120, 2.5)
    n_views = 300
    arc = math.radians(arc_deg)
    dbeta = arc / n_views
    beta = np.asarray((np.arange(n_views) + 0.5) * dbeta, dtype=np.float64)
    sino = proj.fan_forward(img[:, None].copy(), (n, n), (d, d), beta, u, sid)
    w = (
        np.full((n_views, u.size), 0.5)
        if arc_deg == 360.0
        else proj.parker_weights(beta, np.arctan(u / sid), arc)
    )
    w = w * (sid / np.sqrt(sid**2 + u**2))[None, :]
    q = proj.ramp_filter((sino * w[:, :, None]).astype(np.float32), 2.5, "ram-lak")
    xy = proj.pixel_centres_mm((n, n), (d, d))
    inner = np.hypot(xy[:, 0], xy[:, 1]) < 75.0
    rec = proj.fan_backproject(q, xy[inner], beta, u, sid, dbeta)[:, 0]
    # inside the disc, away from its edge, within 1 % (10 HU) of the true attenuation
    assert abs(rec.mean() / 0.02 - 1.0) < 0.005
    assert np.abs(rec / 0.02 - 1.0).max() < 0.03
