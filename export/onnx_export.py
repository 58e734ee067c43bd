"""PyTorch → ONNX export of a trained generator (opset ≥ 17, dynamic batch and in-plane size)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.networks import GeneratorSpec, size_multiple
from models.training.families import build_export_module
from models.training.torch_files import load_torch_file
from service.atomic import atomic_file
from service.errors import InputError, OptionError

#: Lowest ONNX opset the exported models use (Triton's onnxruntime backend and ORT ≥ 1.14 run it).
MIN_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"


def load_best(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the exported generator from a training ``best.pt``; returns (module in eval mode, payload)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"checkpoint {str(path)!r} not found: pass the best.pt written by 'radtranslate train'."
        )
    payload = load_torch_file(
        path, what="checkpoint", fix="pass the best.pt written by 'radtranslate train'."
    )
    if not {"family", "spec", "state"} <= set(payload):
        raise InputError(
            f"{path} is not a radtranslate generator checkpoint (needs family, spec, state): pass best.pt."
        )
    module = build_export_module(payload["family"], GeneratorSpec.from_dict(payload["spec"]))
    module.load_state_dict(payload["state"])
    module.eval()
    return module, payload


def export_onnx(
    module: nn.Module,
    path: str | Path,
    *,
    in_channels: int,
    multiple: int,
    opset: int = MIN_OPSET,
    overwrite: bool = False,
) -> Path:
    """Export ``module`` (``(N, C, H, W) -> (N, 1, H, W)``) to ONNX, written atomically.

    Batch, height and width are dynamic; H and W must be multiples of ``multiple`` at run time
    (the engine pads to the card's ``size_multiple``).
    """
    if opset < MIN_OPSET:
        raise OptionError(f"opset must be ≥ {MIN_OPSET}, got {opset}: use {MIN_OPSET} or newer.")
    module.eval()
    example = torch.zeros(1, in_channels, 4 * multiple, 4 * multiple)
    axes = {0: "batch", 2: "height", 3: "width"}
    with atomic_file(path, overwrite=overwrite) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            dynamo=False,
        )
    return Path(path)


def export_best(
    best: str | Path, path: str | Path, *, opset: int = MIN_OPSET, overwrite: bool = False
) -> Path:
    """Export the generator stored in ``best.pt`` to ``path``."""
    module, payload = load_best(best)
    spec = GeneratorSpec.from_dict(payload["spec"])
    return export_onnx(
        module,
        path,
        in_channels=spec.in_channels,
        multiple=size_multiple(spec),
        opset=opset,
        overwrite=overwrite,
    )
