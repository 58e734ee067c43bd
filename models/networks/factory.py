"""Network factories over MONAI's UNet, AttentionUnet and PatchDiscriminator."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from monai.networks.nets import AttentionUnet, PatchDiscriminator, UNet
from torch import nn

from service.errors import OptionError

Kind = Literal["unet", "attention_unet"]


@dataclass(frozen=True)
class GeneratorSpec:
    """What is needed to rebuild a generator (stored in checkpoints and model cards).

    Parameters
    ----------
    kind
        ``"unet"`` (pix2pix U-Net with residual units) or ``"attention_unet"`` (attention gates on the
        skip connections, as in DAEGAN-style generators).
    in_channels
        Number of input channels (2.5D context slices).
    channels
        Feature maps per level; each level halves H and W, so inputs must be multiples of
        ``2 ** (len(channels) - 1)``.
    head
        ``"tanh"`` (output in [-1, 1]), ``"linear"``, or ``"residual"``: the network learns a
        correction added to its input in normalised units (the whole stack when
        ``out_channels == in_channels``, else the centre slice), scaled by a learned factor that
        starts at zero (ReZero, Bachlechner et al. 2021), so training starts from the identity.
        For translations within one modality (CBCT to CT, low- to full-dose PET) this is the
        natural parameterisation; without it the output's global level must first drift from
        zero through one bias, which takes thousands of steps.
    norm
        Feature normalisation: ``"instance"`` (per image and channel) or ``"batch"`` (running
        statistics of the training set, fixed at inference). Instance normalisation removes each
        image's absolute feature level, so a U-Net with it cannot tell a slice that reads 100 HU
        too low from a correct one -- the global shift that scatter puts on a CBCT; batch
        normalisation keeps that information. MONAI's AttentionUnet always uses batch norm.
    """

    kind: Kind = "unet"
    in_channels: int = 3
    out_channels: int = 1
    channels: tuple[int, ...] = (32, 64, 128, 256)
    head: Literal["tanh", "linear", "residual"] = "tanh"
    norm: Literal["instance", "batch"] = "instance"
    num_res_units: int = 1
    dropout: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("unet", "attention_unet"):
            raise OptionError(f"kind must be 'unet' or 'attention_unet', got {self.kind!r}.")
        if self.in_channels < 1 or self.out_channels < 1:
            raise OptionError(
                f"in_channels and out_channels must be ≥ 1, got {self.in_channels}, {self.out_channels}."
            )
        if self.head not in ("tanh", "linear", "residual"):
            raise OptionError(f"head must be 'tanh', 'linear' or 'residual', got {self.head!r}.")
        if self.head == "residual" and self.out_channels not in (1, self.in_channels):
            raise OptionError(
                f"a residual head needs out_channels 1 or equal to in_channels ({self.in_channels}), got "
                f"{self.out_channels}: change out_channels or the head."
            )
        if self.norm not in ("instance", "batch"):
            raise OptionError(f"norm must be 'instance' or 'batch', got {self.norm!r}.")
        if self.kind == "attention_unet" and self.norm != "batch":
            raise OptionError(
                f"MONAI's AttentionUnet always uses batch normalisation, got norm {self.norm!r}: "
                "pass norm='batch'."
            )
        if len(self.channels) < 2 or any(c < 1 for c in self.channels):
            raise OptionError(
                f"channels must list ≥ 2 positive feature counts, got {self.channels}: e.g. (32, 64, 128)."
            )
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorSpec:
        values = {**data, "channels": tuple(data["channels"])}
        if "norm" not in values:  # specs written before the field existed
            values["norm"] = "batch" if values.get("kind") == "attention_unet" else "instance"
        return cls(**values)


def size_multiple(spec: GeneratorSpec) -> int:
    """In-plane sizes must be multiples of this (one halving per level below the top)."""
    return int(2 ** (len(spec.channels) - 1))


class _Head(nn.Module):
    def __init__(self, body: nn.Module, head: str, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.head = head
        # Residual: which input channels the correction is added to (all, or the centre one).
        centre = in_channels // 2
        self.skip = (0, in_channels) if out_channels == in_channels else (centre, centre + 1)
        if head == "residual":
            self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        if self.head == "tanh":
            return torch.tanh(y)
        if self.head == "residual":
            return x[:, self.skip[0] : self.skip[1]] + self.scale * y
        return y


def unet_generator(spec: GeneratorSpec) -> nn.Module:
    """MONAI UNet (instance norm, PReLU, residual units): ``(N,C,H,W) -> (N,out,H,W)``."""
    body = UNet(
        spatial_dims=2,
        in_channels=spec.in_channels,
        out_channels=spec.out_channels,
        channels=spec.channels,
        strides=(2,) * (len(spec.channels) - 1),
        num_res_units=spec.num_res_units,
        norm="BATCH" if spec.norm == "batch" else "INSTANCE",
        dropout=spec.dropout,
    )
    return _Head(body, spec.head, spec.in_channels, spec.out_channels)


def attention_generator(spec: GeneratorSpec) -> nn.Module:
    """MONAI AttentionUnet (attention gates on every skip connection)."""
    body = AttentionUnet(
        spatial_dims=2,
        in_channels=spec.in_channels,
        out_channels=spec.out_channels,
        channels=spec.channels,
        strides=(2,) * (len(spec.channels) - 1),
        dropout=spec.dropout,
    )
    return _Head(body, spec.head, spec.in_channels, spec.out_channels)


def build_generator(spec: GeneratorSpec) -> nn.Module:
    """Build the generator a spec describes."""
    return attention_generator(spec) if spec.kind == "attention_unet" else unet_generator(spec)


def patch_discriminator(in_channels: int, *, channels: int = 32, num_layers: int = 3) -> nn.Module:
    """PatchGAN discriminator: ``(N, in_channels, H, W) -> (N, 1, H', W')`` real/fake logits per patch.

    For a conditional GAN pass the condition and the image concatenated on channels.
    """
    if in_channels < 1:
        raise OptionError(f"in_channels must be ≥ 1, got {in_channels}.")
    disc: nn.Module = PatchDiscriminator(
        spatial_dims=2,
        channels=channels,
        in_channels=in_channels,
        out_channels=1,
        num_layers_d=num_layers,
        norm="INSTANCE",
    )
    return disc
