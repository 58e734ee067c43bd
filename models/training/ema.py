"""An exponential moving average (EMA) of the served generator's weights.

GAN generators trained at a constant learning rate wander from step to step, and so does their
validation error (the CycleGAN CBCT run at 5e-4: by ±40 HU between epochs). Averaging the iterates
(Polyak averaging; for GANs Yazıcı et al. 2019) gives a model that sits near the middle of that
wandering. The average is kept on the side: it never feeds back into training, so the trained
networks, their losses and the random streams are exactly those of a run without it; only what is
validated and written to ``best.pt`` is the average.

Floating-point parameters and buffers (batch-norm running statistics included) follow
``avg ← decay · avg + (1 − decay) · current`` after every optimiser step; integer buffers (batch
counters) are copied. The average starts at the initial weights.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from service.errors import OptionError


class WeightAverage:
    """EMA copy of ``module`` with decay ``decay`` per optimiser step (in [0, 1); e.g. 0.998)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise OptionError(
                f"ema_decay must be in [0, 1), got {decay!r}: pass e.g. 0.998, or 0 for no average."
            )
        self.decay = float(decay)
        self.module = copy.deepcopy(module).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, current: nn.Module) -> None:
        """Move the average towards ``current`` (same structure) by one step."""
        mine, theirs = self.module.state_dict(), current.state_dict()
        if mine.keys() != theirs.keys():
            raise ValueError("WeightAverage.update: the module's structure differs from the averaged one's.")
        for key, value in mine.items():
            if value.is_floating_point():
                value.lerp_(theirs[key].to(value.device), 1.0 - self.decay)
            else:
                value.copy_(theirs[key])

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.module.load_state_dict(state["module"])
