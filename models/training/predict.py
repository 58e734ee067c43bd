"""Whole-volume prediction with a PyTorch generator, mirroring the serving engine (for validation)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.training.data import FloatArray, PreparedSubject, context_stack, pad_to_multiple
from service.inference.normalisation import denormalise
from service.inference.prediction import pad_amounts


@torch.no_grad()
def predict_normalised(
    module: nn.Module,
    inputs: FloatArray,
    *,
    context_slices: int,
    multiple: int,
    pad_value: float,
    batch_size: int = 8,
) -> FloatArray:
    """Predict every slice of a normalised ``(z, y, x)`` volume; returns normalised ``(z, y, x)``."""
    module.eval()
    z, h, w = inputs.shape
    out = np.empty((z, h, w), dtype=np.float32)
    for start in range(0, z, batch_size):
        ks = range(start, min(z, start + batch_size))
        stack = np.stack(
            [pad_to_multiple(context_stack(inputs, k, context_slices), multiple, pad_value) for k in ks]
        )
        top, left = pad_amounts(h, multiple)[0], pad_amounts(w, multiple)[0]
        device = next(module.parameters()).device
        pred = module(torch.from_numpy(stack).to(device)).cpu().numpy()[:, 0, top : top + h, left : left + w]
        out[start : start + len(ks)] = pred
    return out


def predict_native(
    module: nn.Module,
    subject: PreparedSubject,
    *,
    context_slices: int,
    multiple: int,
    pad_value: float,
    background: float,
    clip: tuple[float, float],
) -> FloatArray:
    """Prediction in HU/SUV with the body mask's outside set to ``background`` (as served)."""
    normalised = predict_normalised(
        module, subject.inputs, context_slices=context_slices, multiple=multiple, pad_value=pad_value
    )
    native = np.clip(denormalise(normalised, subject.output_params), clip[0], clip[1])
    native[~subject.mask] = background
    return native.astype(np.float32)


def masked_mae(prediction: FloatArray, target: FloatArray, mask: np.ndarray) -> float:
    """Mean absolute error inside ``mask`` (native units)."""
    if not mask.any():
        return float("nan")
    return float(np.abs(prediction[mask] - target[mask]).mean())
