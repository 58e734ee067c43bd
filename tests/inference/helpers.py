"""Tiny ONNX models (built with onnx.helper) and model repositories for the inference tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.inference.triton_config import render_config

OPSET = 17


def _save(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], channels: int, path: Path) -> None:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def conv_model(path: Path, kernel: np.ndarray, bias: float = 0.0) -> None:
    """``output = conv(input, kernel) + bias`` with kernel ``(C, k, k)`` and 'same' zero padding."""
    kernel = np.asarray(kernel, dtype=np.float32)
    channels, k, _ = kernel.shape
    w = numpy_helper.from_array(kernel[None], "w")
    b = numpy_helper.from_array(np.array([bias], dtype=np.float32), "b")
    pad = k // 2
    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], pads=[pad] * 4, kernel_shape=[k, k])
    _save([node], [w, b], channels, path)


def channel_model(path: Path, weights: list[float], bias: float = 0.0) -> None:
    """``output = sum_c weights[c] * input[:, c] + bias`` (a 1x1 convolution)."""
    conv_model(path, np.asarray(weights, dtype=np.float32)[:, None, None], bias)


def linear_model(path: Path, channels: int, a: float, b: float) -> None:
    """``output = a * centre channel + b``."""
    weights = [0.0] * channels
    weights[channels // 2] = a
    channel_model(path, weights, b)


def nan_model(path: Path, channels: int = 1) -> None:
    """``output = centre channel + NaN``."""
    nan = numpy_helper.from_array(np.array([np.nan], dtype=np.float32), "nan")
    start = numpy_helper.from_array(np.array([channels // 2], dtype=np.int64), "s")
    end = numpy_helper.from_array(np.array([channels // 2 + 1], dtype=np.int64), "e")
    axis = numpy_helper.from_array(np.array([1], dtype=np.int64), "a")
    nodes = [
        helper.make_node("Slice", ["input", "s", "e", "a"], ["centre"]),
        helper.make_node("Add", ["centre", "nan"], ["output"]),
    ]
    _save(nodes, [nan, start, end, axis], channels, path)


CT_CARD: dict[str, Any] = {
    "schema": "radtranslate.card/v1",
    "name": "cbct-test",
    "version": "1",
    "task": "cbct-to-ct",
    "site": "pelvis",
    "input": {
        "modality": "CT",
        "unit": "HU",
        "normalisation": {"kind": "clip_linear", "low": -1024, "high": 3071},
    },
    "output": {
        "modality": "CT",
        "unit": "HU",
        "normalisation": {"kind": "clip_linear", "low": -1024, "high": 3071},
        "background": -1000,
        "clip": [-1024, 3071],
    },
    "context_slices": 1,
    "in_plane_spacing_mm": [1.0, 1.0],
    "size_multiple": 1,
    "body_mask": {"kind": "none"},
    "architecture": "test",
}


def card(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`CT_CARD` with top-level fields replaced."""
    out = copy.deepcopy(CT_CARD)
    out.update(changes)
    return out


def write_model(repo: Path, card_data: dict[str, Any], build: Any, *, max_batch_size: int = 8) -> Path:
    """Write ``<repo>/<name>/{config.pbtxt, card.json, <version>/model.onnx}``; ``build(path)``
    writes the ONNX file."""
    folder: Path = repo / str(card_data["name"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(
        render_config(card_data["name"], card_data["context_slices"], max_batch_size=max_batch_size)
    )
    (folder / "card.json").write_text(json.dumps(card_data, indent=2))
    build(folder / card_data["version"] / "model.onnx")
    return folder


def hu_to_norm(x: npt.ArrayLike, low: float = -1024.0, high: float = 3071.0) -> np.ndarray:
    return 2.0 * (np.clip(np.asarray(x, np.float64), low, high) - low) / (high - low) - 1.0


def norm_to_hu(y: npt.ArrayLike, low: float = -1024.0, high: float = 3071.0) -> np.ndarray:
    return low + (np.asarray(y, np.float64) + 1.0) * (high - low) / 2.0
