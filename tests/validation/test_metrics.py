"""Image metrics: exact cases, HU bands, body mask, SSIM against scikit-image, real CT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import VolumeError
from service.validation.metrics import body_mask, image_metrics, ssim
from service.volume import Modality, Unit, Volume

REAL_CT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "ct-cort-liver"


def _phantom() -> np.ndarray:
    """Air (-1000) around an elliptic body (40 HU) with a lung (-800) and a bone rod (700), and a table."""
    z, y, x = np.meshgrid(np.arange(16), np.arange(48), np.arange(56), indexing="ij")
    image = np.full(z.shape, -1000.0)
    body = ((y - 22) / 17.0) ** 2 + ((x - 28) / 23.0) ** 2 < 1
    image[body] = 40.0
    image[body & ((y - 20) ** 2 + (x - 18) ** 2 < 25)] = -800.0  # lung, enclosed in each slice
    image[body & ((y - 24) ** 2 + (x - 36) ** 2 < 16)] = 700.0  # bone
    image[:, 44:46, 10:46] = 100.0  # couch, not connected to the body
    return image


def _ct(array: np.ndarray) -> Volume:
    return Volume(array=array, spacing_mm=(1.0, 1.0, 2.0))


def test_identical_images() -> None:
    ref = _ct(_phantom())
    metrics = image_metrics(ref, ref)
    assert metrics.mae_hu == 0.0 and metrics.me_hu == 0.0 and metrics.rmse_hu == 0.0
    assert metrics.psnr_db == float("inf")
    assert metrics.ssim == pytest.approx(1.0, abs=1e-12)
    assert metrics.mask_source == "automatic"


def test_offset_in_bone_only_shows_in_bone_band() -> None:
    array = _phantom()
    ref = _ct(array)
    bone = array >= 250
    candidate = _ct(np.where(bone, array + 30.0, array))
    metrics = image_metrics(ref, candidate)
    mask = body_mask(ref)
    n_bone, n_mask = int(np.count_nonzero(bone & mask)), int(np.count_nonzero(mask))
    assert metrics.mae_band_hu == {"air": 0.0, "soft_tissue": 0.0, "bone": 30.0}
    assert metrics.voxels_band["bone"] == n_bone
    assert metrics.mae_hu == pytest.approx(30.0 * n_bone / n_mask)
    assert metrics.me_hu == pytest.approx(30.0 * n_bone / n_mask)
    assert metrics.rmse_hu == pytest.approx(np.sqrt(900.0 * n_bone / n_mask))
    assert metrics.psnr_db == pytest.approx(10 * np.log10(4024.0**2 / (900.0 * n_bone / n_mask)))
    assert metrics.ssim is not None and metrics.ssim < 1.0


def test_body_mask_fills_lung_and_drops_couch() -> None:
    array = _phantom()
    mask = body_mask(_ct(array))
    assert np.all(mask[array == -800.0])  # the lung is inside the body
    assert not np.any(mask[:, 44:46, 10:46])  # the couch is a separate component
    assert not np.any(mask[array == -1000.0])


def test_given_mask_and_clipping() -> None:
    array = _phantom()
    ref = _ct(array)
    mask = ref.with_array(np.zeros(array.shape).astype(np.float32))
    with pytest.raises(VolumeError, match="empty"):
        image_metrics(ref, ref, mask)
    inside = np.zeros(array.shape)
    inside[:, 20:30, 20:30] = 1
    candidate = _ct(np.where(inside > 0, 5000.0, array))  # beyond the PSNR clip range
    metrics = image_metrics(ref, candidate, ref.with_array(inside))
    assert metrics.mask_source == "given" and metrics.mask_voxels == int(inside.sum())
    assert metrics.mae_hu == pytest.approx(np.mean(5000.0 - array[inside > 0]))
    clipped_error = np.mean((3000.0 - array[inside > 0]) ** 2)
    assert metrics.psnr_db == pytest.approx(10 * np.log10(4024.0**2 / clipped_error))


def test_refusals() -> None:
    ref = _ct(_phantom())
    other = Volume(array=_phantom(), spacing_mm=(1.0, 1.0, 2.5))
    with pytest.raises(VolumeError, match="resample"):
        image_metrics(ref, other)
    mr = Volume(array=_phantom() + 1000, spacing_mm=(1.0, 1.0, 2.0), modality=Modality.MR, unit=Unit.MR_AU)
    with pytest.raises(VolumeError, match="CT in HU"):
        image_metrics(ref, mr)


def test_ssim_matches_scikit_image_with_synthrad_masking() -> None:
    skm = pytest.importorskip("skimage.metrics", reason="scikit-image (dev dependency) is not installed")
    from skimage.util import crop

    rng = np.random.default_rng(5)
    ref = _phantom()
    cand = ref + rng.normal(0, 40, ref.shape)
    mask = body_mask(_ct(ref))
    low, high = -1024.0, 3000.0
    r = np.where(mask, np.clip(ref, low, high), low) - low
    c = np.where(mask, np.clip(cand, low, high), low) - low
    _, full = skm.structural_similarity(r, c, data_range=high - low, full=True)
    expected = crop(full, 3)[crop(mask, 3)].mean(dtype=np.float64)
    assert image_metrics(_ct(ref), _ct(cand)).ssim == pytest.approx(expected, rel=1e-10)
    assert ssim(r, c, None, data_range=4024.0) == pytest.approx(
        skm.structural_similarity(r, c, data_range=4024.0), rel=1e-10
    )


@pytest.mark.slow
def test_real_ct_against_noisy_copy() -> None:
    if not REAL_CT.is_dir():
        pytest.skip(f"real data folder {REAL_CT} is absent (shared data not mounted)")
    reader = pytest.importorskip("service.dicom.reader", reason="service.dicom.reader not available")
    ct = reader.read_series(REAL_CT)
    mask = body_mask(ct)
    fraction = mask.mean()
    assert 0.1 < fraction < 0.9  # a body, not the whole field or nothing
    rng = np.random.default_rng(0)
    noisy = ct.with_array(ct.array + rng.normal(0, 20.0, ct.shape).astype(np.float32))
    metrics = image_metrics(ct, noisy)
    # |N(0, 20)| has mean 20*sqrt(2/pi) = 15.96 HU; the mask holds millions of voxels.
    assert metrics.mae_hu == pytest.approx(20.0 * np.sqrt(2 / np.pi), rel=0.01)
    assert abs(metrics.me_hu) < 0.2
    assert metrics.ssim is not None and 0.5 < metrics.ssim < 1.0
