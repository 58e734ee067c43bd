"""Losses beyond MONAI's: gradient-domain and frequency-domain L1 (DAEGAN-style dual-domain terms),
and L1 terms in SUV for networks trained on ``log1p(SUV)``: over the image and inside lesions.

MONAI supplies the adversarial term (:class:`monai.losses.PatchAdversarialLoss`, least squares).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_l1(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute error; inside ``mask`` when given (mask broadcast over channels)."""
    diff = (prediction - target).abs()
    if mask is None:
        return diff.mean()
    weight = mask.to(diff.dtype).expand_as(diff)
    return (diff * weight).sum() / weight.sum().clamp_min(1.0)


def image_gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along x and y of ``(N, C, H, W)`` images (zero at the far edge)."""
    dx = F.pad(image[..., :, 1:] - image[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(image[..., 1:, :] - image[..., :-1, :], (0, 0, 0, 1))
    return dx, dy


def gradient_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between image gradients: penalises blurred edges that pixel L1 tolerates."""
    pdx, pdy = image_gradients(prediction)
    tdx, tdy = image_gradients(target)
    return (pdx - tdx).abs().mean() + (pdy - tdy).abs().mean()


def frequency_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between log-amplitude spectra (orthonormal 2D FFT): keeps noise texture and fine detail honest."""
    p = torch.fft.rfft2(prediction, norm="ortho")
    t = torch.fft.rfft2(target, norm="ortho")
    return (torch.log1p(p.abs()) - torch.log1p(t.abs())).abs().mean()


SUV_LOG_CLAMP = 7.0  # log1p(SUV / scale) above which suv_l1 stops the gradient (SUV / scale ≈ 1100)


def _suv(image: torch.Tensor) -> torch.Tensor:
    """SUV / scale from the ``suv_log`` normalisation, clamped at ``SUV_LOG_CLAMP`` (see :func:`suv_l1`)."""
    return torch.expm1(image.clamp(max=SUV_LOG_CLAMP))


def suv_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 in SUV / scale between images in the ``suv_log`` normalisation (``y = log1p(SUV / scale)``).

    A log-space L1 weighs the error of a voxel of ``SUV / scale = s`` by ``1 / (1 + s)``, so hot regions
    (grey matter, lesions), which dominate PSNR and SUVmax, count least; this term weighs every SUV
    alike. The prediction is clamped at ``SUV_LOG_CLAMP`` before the inverse so that an untrained
    network cannot overflow it.
    """
    return (_suv(prediction) - _suv(target)).abs().mean()


def lesion_suv_l1(prediction: torch.Tensor, target: torch.Tensor, lesions: torch.Tensor) -> torch.Tensor:
    """:func:`suv_l1` averaged over the voxels of ``lesions`` (``(N, 1, H, W)``, bool) only; 0 without any.

    Lesions are a few hundred voxels in a batch of ~10^5, so an image-wide loss hardly sees their
    maxima; averaging over lesion voxels gives them a weight of their own, whatever their size.
    """
    return masked_l1(_suv(prediction), _suv(target), lesions)
