"""ONNX Runtime vs PyTorch parity, stated in native units (HU or SUV)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from models.training.data import PreparedSubject, context_stack, pad_to_multiple
from service.inference.normalisation import NormalisationParams, denormalise


@dataclass(frozen=True)
class ParityReport:
    """Largest |ONNX − PyTorch| differences over the checked inputs.

    ``max_abs_normalised`` in network units; ``max_abs_native`` in the output's unit (HU or SUV).
    """

    max_abs_normalised: float
    max_abs_native: float
    unit: str
    cases: int

    def within(self, tolerance_native: float) -> bool:
        return self.max_abs_native <= tolerance_native


def _compare(
    session: ort.InferenceSession, module: nn.Module, batch: np.ndarray, params: NormalisationParams
) -> tuple[float, float]:
    onnx_out = session.run(None, {"input": batch})[0]
    with torch.no_grad():
        torch_out = module(torch.from_numpy(batch)).numpy()
    norm = float(np.abs(onnx_out - torch_out).max())
    native = float(np.abs(denormalise(onnx_out, params) - denormalise(torch_out, params)).max())
    return norm, native


def check_parity(
    onnx_path: str | Path,
    module: nn.Module,
    *,
    in_channels: int,
    multiple: int,
    output_params: NormalisationParams,
    unit: str,
    subjects: Sequence[PreparedSubject] = (),
    random_cases: int = 3,
    seed: int = 0,
    input_pad: float = -1.0,
) -> ParityReport:
    """Run random inputs (odd sizes padded to the multiple) and real subjects' slices through both."""
    module.eval()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst_norm, worst_native, cases = 0.0, 0.0, 0
    for i in range(random_cases):
        h, w = multiple * (2 + i), multiple * (3 + i)
        batch = rng.uniform(-1, 1, size=(1 + i, in_channels, h, w)).astype(np.float32)
        n, nat = _compare(session, module, batch, output_params)
        worst_norm, worst_native, cases = max(worst_norm, n), max(worst_native, nat), cases + 1
    for subject in subjects:
        for k in np.linspace(0, subject.inputs.shape[0] - 1, num=min(4, subject.inputs.shape[0])).astype(int):
            stack = pad_to_multiple(context_stack(subject.inputs, int(k), in_channels), multiple, input_pad)
            n, nat = _compare(session, module, stack[None].astype(np.float32), subject.output_params)
            worst_norm, worst_native, cases = max(worst_norm, n), max(worst_native, nat), cases + 1
    return ParityReport(max_abs_normalised=worst_norm, max_abs_native=worst_native, unit=unit, cases=cases)
