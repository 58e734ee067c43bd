"""The three model families: one training step each, over MONAI networks and losses.

- :class:`Pix2Pix` (MR→sCT): conditional GAN, U-Net generator + conditional PatchGAN, L1 + adversarial.
- :class:`CycleGAN` (CBCT→CT): two generators, two discriminators, cycle and identity losses; trains on
  unpaired batches, with an optional paired L1 term when the data are paired.
- :class:`DAEGAN` (low-dose→full-dose PET): attention encoder-decoder generator, losses in the image,
  gradient and frequency domains, plus a conditional adversarial term.

Batches are ``(x, y, m)``: inputs ``(B, C, H, W)``, targets ``(B, T, H, W)`` in normalised units, masks
``(B, 1, H, W)`` (the body), or ``(B, 2, H, W)`` with the lesions as channel 1 when a run asks for a
lesion term. Every family exposes ``export_module()``: the network mapping ``(N, C, H, W)`` to
``(N, 1, H, W)`` that is exported to ONNX and served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from monai.losses import PatchAdversarialLoss
from torch import nn

from models.networks import GeneratorSpec, build_generator, patch_discriminator
from models.training.losses import frequency_l1, gradient_l1, lesion_suv_l1, masked_l1, suv_l1

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class LossWeights:
    """Loss weights (dimensionless). Defaults follow pix2pix (L1 100), CycleGAN (cycle 10, identity 5)."""

    adversarial: float = 1.0
    l1: float = 100.0
    cycle: float = 10.0
    identity: float = 5.0
    paired_l1: float = 0.0  # CycleGAN only: switched on for paired data
    gradient: float = 50.0  # DAEGAN only
    frequency: float = 10.0  # DAEGAN only
    suv_l1: float = 0.0  # DAEGAN only: L1 in SUV / scale, through the inverse of the suv_log normalisation
    lesion_l1: float = 0.0  # DAEGAN only: the same L1 averaged over lesion voxels (needs labelled data)


class Family(Protocol):
    modules: dict[str, nn.Module]

    def train_step(self, batch: Batch, other: Batch) -> dict[str, float]: ...
    def export_module(self) -> nn.Module: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def train(self, mode: bool = True) -> None: ...
    def to(self, device: torch.device) -> None: ...
    def set_lr(self, lr: float) -> None: ...


def _adam(params: Any, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))


class _Centre(nn.Module):
    """Select the centre channel of a stack-to-stack generator (what CycleGAN exports)."""

    def __init__(self, body: nn.Module, channels: int) -> None:
        super().__init__()
        self.body = body
        self.centre = channels // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)[:, self.centre : self.centre + 1]
        return out


class _Base:
    modules: dict[str, nn.Module]
    optimisers: dict[str, torch.optim.Optimizer]

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimisers": {k: o.state_dict() for k, o in self.optimisers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimisers.items():
            o.load_state_dict(state["optimisers"][k])

    def train(self, mode: bool = True) -> None:
        for m in self.modules.values():
            m.train(mode)

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of every optimiser (generators and discriminators alike)."""
        for o in self.optimisers.values():
            for group in o.param_groups:
                group["lr"] = lr

    def to(self, device: torch.device) -> None:
        """Move every network (parameters in place, so the optimisers stay valid) to ``device``."""
        for m in self.modules.values():
            m.to(device)


class Pix2Pix(_Base):
    """Conditional GAN: ``G(x) ≈ y``; ``D`` sees ``(x, y)`` or ``(x, G(x))``."""

    def __init__(self, spec: GeneratorSpec, *, lr: float, weights: LossWeights) -> None:
        self.g = build_generator(spec)
        self.d = patch_discriminator(spec.in_channels + 1)
        self.modules = {"g": self.g, "d": self.d}
        self.optimisers = {"g": _adam(self.g.parameters(), lr), "d": _adam(self.d.parameters(), lr)}
        self.adv = PatchAdversarialLoss(criterion="least_squares")
        self.w = weights

    def _d_loss(self, x: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        d_real = self.d(torch.cat([x, real], 1))[-1]
        d_fake = self.d(torch.cat([x, fake.detach()], 1))[-1]
        loss: torch.Tensor = 0.5 * (
            self.adv(d_real, target_is_real=True, for_discriminator=True)
            + self.adv(d_fake, target_is_real=False, for_discriminator=True)
        )
        return loss

    def _g_extra(self, fake: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"l1": self.w.l1 * masked_l1(fake, y)}

    def train_step(self, batch: Batch, other: Batch) -> dict[str, float]:
        x, y, m = batch
        fake = self.g(x)
        opt_d = self.optimisers["d"]
        opt_d.zero_grad(set_to_none=True)
        loss_d = self._d_loss(x, y, fake)
        loss_d.backward()
        opt_d.step()
        opt_g = self.optimisers["g"]
        opt_g.zero_grad(set_to_none=True)
        adv = self.w.adversarial * self.adv(
            self.d(torch.cat([x, fake], 1))[-1], target_is_real=True, for_discriminator=False
        )
        terms = self._g_extra(fake, y, m)
        loss_g = adv + sum(terms.values(), torch.zeros((), device=adv.device))
        loss_g.backward()
        opt_g.step()
        out = {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()), "adv": float(adv.detach())}
        out.update({k: float(v.detach()) for k, v in terms.items()})
        return out

    def export_module(self) -> nn.Module:
        return self.g


class DAEGAN(Pix2Pix):
    """Attention generator with image, gradient and frequency domain losses plus adversarial."""

    def _g_extra(self, fake: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {
            "l1": self.w.l1 * masked_l1(fake, y),
            "gradient": self.w.gradient * gradient_l1(fake, y),
            "frequency": self.w.frequency * frequency_l1(fake, y),
        }
        if self.w.suv_l1 > 0:  # off by default, so runs without it log and compute what they did before
            terms["suv_l1"] = self.w.suv_l1 * suv_l1(fake, y)
        if self.w.lesion_l1 > 0:
            if m.shape[1] < 2:
                raise ValueError("lesion_l1 needs batches whose mask carries the lesions as channel 1.")
            terms["lesion_l1"] = self.w.lesion_l1 * lesion_suv_l1(fake, y, m[:, 1:2])
        return terms


class CycleGAN(_Base):
    """A→B (CBCT→CT) and B→A generators (stack to stack), a discriminator per domain."""

    def __init__(self, spec: GeneratorSpec, *, lr: float, weights: LossWeights) -> None:
        stack = GeneratorSpec(
            **{**spec.to_dict(), "channels": spec.channels, "out_channels": spec.in_channels}
        )
        self.channels = spec.in_channels
        self.g_ab, self.g_ba = build_generator(stack), build_generator(stack)
        self.d_a, self.d_b = patch_discriminator(spec.in_channels), patch_discriminator(spec.in_channels)
        self.modules = {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b}
        self.optimisers = {
            "g": _adam(list(self.g_ab.parameters()) + list(self.g_ba.parameters()), lr),
            "d": _adam(list(self.d_a.parameters()) + list(self.d_b.parameters()), lr),
        }
        self.adv = PatchAdversarialLoss(criterion="least_squares")
        self.w = weights

    def _gan(self, d: nn.Module, image: torch.Tensor, real: bool, for_d: bool) -> torch.Tensor:
        loss: torch.Tensor = self.adv(d(image)[-1], target_is_real=real, for_discriminator=for_d)
        return loss

    def train_step(self, batch: Batch, other: Batch) -> dict[str, float]:
        real_a, paired_b, _ = batch
        # Unpaired: B comes from an independent draw unless the paired L1 term is on.
        real_b = paired_b if self.w.paired_l1 > 0 else other[1]
        opt_g = self.optimisers["g"]
        opt_g.zero_grad(set_to_none=True)
        fake_b, fake_a = self.g_ab(real_a), self.g_ba(real_b)
        adv = self.w.adversarial * (
            self._gan(self.d_b, fake_b, True, False) + self._gan(self.d_a, fake_a, True, False)
        )
        # A term with weight 0 is not computed (its generator passes would only cost time).
        cycle = (
            self.w.cycle
            * ((self.g_ba(fake_b) - real_a).abs().mean() + (self.g_ab(fake_a) - real_b).abs().mean())
            if self.w.cycle > 0
            else torch.zeros((), device=real_a.device)
        )
        identity = (
            self.w.identity
            * ((self.g_ab(real_b) - real_b).abs().mean() + (self.g_ba(real_a) - real_a).abs().mean())
            if self.w.identity > 0
            else torch.zeros((), device=real_a.device)
        )
        paired = (
            self.w.paired_l1 * (fake_b - paired_b).abs().mean()
            if self.w.paired_l1 > 0
            else torch.zeros((), device=real_a.device)
        )
        loss_g = adv + cycle + identity + paired
        loss_g.backward()
        opt_g.step()
        opt_d = self.optimisers["d"]
        opt_d.zero_grad(set_to_none=True)
        loss_d = 0.5 * (
            self._gan(self.d_b, real_b, True, True)
            + self._gan(self.d_b, fake_b.detach(), False, True)
            + self._gan(self.d_a, real_a, True, True)
            + self._gan(self.d_a, fake_a.detach(), False, True)
        )
        loss_d.backward()
        opt_d.step()
        return {
            "loss_d": float(loss_d.detach()),
            "loss_g": float(loss_g.detach()),
            "adv": float(adv.detach()),
            "cycle": float(cycle.detach()),
            "identity": float(identity.detach()),
            "paired_l1": float(paired.detach()),
        }

    def export_module(self) -> nn.Module:
        return _Centre(self.g_ab, self.channels)


def build_export_module(family: str, spec: GeneratorSpec) -> nn.Module:
    """An untrained module with the structure ``export_module()`` returns (to load ``best.pt`` into)."""
    if family == "cyclegan":
        stack = GeneratorSpec(
            **{**spec.to_dict(), "channels": spec.channels, "out_channels": spec.in_channels}
        )
        return _Centre(build_generator(stack), spec.in_channels)
    return build_generator(spec)


def build_family(family: str, spec: GeneratorSpec, *, lr: float, weights: LossWeights) -> Family:
    """``pix2pix``, ``cyclegan`` or ``daegan``."""
    classes: dict[str, type] = {"pix2pix": Pix2Pix, "cyclegan": CycleGAN, "daegan": DAEGAN}
    if family not in classes:
        from service.errors import OptionError

        raise OptionError(f"family must be one of {sorted(classes)}, got {family!r}.")
    result: Family = classes[family](spec, lr=lr, weights=weights)
    return result
