"""Test-time flip averaging built into the exported graph.

A served model with flips computes ``mean_k F_k(G(F_k(x)))`` over a fixed set of in-plane mirror
images ``F_k`` (each its own inverse), where ``G`` is the trained generator: the generator's errors
that are not mirror-symmetric partly cancel, at ``len(F)`` times the inference cost. The flips live
in the ONNX graph, so the serving engine, Triton and every client see one model with the generator's
input and output; the weights are stored once.

Axes are those of the model input ``(N, C, H, W)``: ``x`` mirrors the width axis (the slice's columns),
``y`` the height axis (its rows). The context slices (C) are never reversed.
"""

from __future__ import annotations

from enum import Enum

import torch
from torch import nn

from service.errors import OptionError


class Flips(Enum):
    """Which mirror images a served model averages over."""

    NONE = "none"  #: the generator alone (one pass)
    X = "x"  #: the image and its width-axis mirror (two passes)
    XY = "xy"  #: the image and its mirrors along width, height and both (four passes)

    @property
    def dims(self) -> tuple[tuple[int, ...], ...]:
        """Tensor dims flipped by each pass, on ``(N, C, H, W)`` (``()`` is the image itself)."""
        return {"none": ((),), "x": ((), (3,)), "xy": ((), (3,), (2,), (2, 3))}[self.value]

    @property
    def passes(self) -> int:
        """Generator evaluations per slice."""
        return len(self.dims)


def parse_flips(value: Flips | str) -> Flips:
    """``value`` as :class:`Flips`; raises :class:`OptionError` naming the accepted values."""
    if isinstance(value, Flips):
        return value
    try:
        return Flips(str(value).lower())
    except ValueError:
        accepted = ", ".join(repr(f.value) for f in Flips)
        raise OptionError(f"flips must be one of {accepted}, got {value!r}: pick one of them.") from None


class FlipAverage(nn.Module):
    """``generator`` evaluated on each mirror image of its input, mirrored back and averaged.

    Parameters
    ----------
    generator
        Module mapping ``(N, C, H, W)`` to ``(N, 1, H, W)`` in normalised units.
    flips
        The mirror set; :attr:`Flips.NONE` returns the generator's output unchanged.
    """

    def __init__(self, generator: nn.Module, flips: Flips | str) -> None:
        super().__init__()
        self.generator = generator
        self.flips = parse_flips(flips)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | None = None
        for dims in self.flips.dims:
            out = torch.flip(self.generator(torch.flip(x, dims)), dims) if dims else self.generator(x)
            total = out if total is None else total + out
        assert total is not None  # every mirror set holds the identity
        return total if self.flips.passes == 1 else total / self.flips.passes


def with_flips(generator: nn.Module, flips: Flips | str) -> nn.Module:
    """``generator`` itself for :attr:`Flips.NONE` (the graph exported as before), else wrapped."""
    parsed = parse_flips(flips)
    return generator if parsed is Flips.NONE else FlipAverage(generator, parsed).eval()
