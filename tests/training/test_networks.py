"""Generator heads: what each adds on top of the MONAI body."""

from __future__ import annotations

from typing import cast

import pytest
import torch

from models.networks import GeneratorSpec, build_generator
from models.networks.factory import Kind, _Head
from service.errors import OptionError


@pytest.mark.parametrize("kind", ["unet", "attention_unet"])
@pytest.mark.parametrize("out_channels", [1, 3])
def test_residual_head_adds_the_learned_correction_to_the_input(kind: Kind, out_channels: int) -> None:
    torch.manual_seed(0)
    spec = GeneratorSpec(
        kind=kind, in_channels=3, out_channels=out_channels, channels=(4, 8), head="residual", norm="batch"
    )
    net = cast(_Head, build_generator(spec).eval())
    x = torch.randn(2, 3, 16, 16)
    skip = x[:, 1:2] if out_channels == 1 else x
    with torch.no_grad():
        # A new generator is the identity on the skipped channels (the scale starts at zero).
        torch.testing.assert_close(net(x), skip)
        net.scale.fill_(0.5)
        correction = net.body(x)
        y = net(x)
    torch.testing.assert_close(y, skip + 0.5 * correction)
    assert y.shape == (2, out_channels, 16, 16)


def test_tanh_head_bounds_the_output_and_residual_needs_matching_channels() -> None:
    torch.manual_seed(0)
    net = build_generator(GeneratorSpec(in_channels=3, channels=(4, 8), head="tanh")).eval()
    with torch.no_grad():
        y = net(100 * torch.randn(1, 3, 8, 8))
    assert float(y.abs().max()) <= 1.0
    expected = r"residual head needs out_channels 1 or equal to in_channels \(3\), got 2"
    with pytest.raises(OptionError, match=expected):
        GeneratorSpec(in_channels=3, out_channels=2, head="residual")
    with pytest.raises(OptionError, match="head must be 'tanh', 'linear' or 'residual', got 'sigmoid'"):
        GeneratorSpec(head="sigmoid")  # type: ignore[arg-type]


def test_batch_norm_keeps_the_absolute_level_that_instance_norm_removes() -> None:
    # Two inputs that differ by a constant. With instance norm the first normalised layer sees
    # (up to zero-padding effects near the border) the same thing, so the body's outputs barely
    # differ away from the border; with batch norm (eval mode) the shift passes through.
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    change = {}
    for norm in ("instance", "batch"):
        torch.manual_seed(0)
        net = cast(
            _Head,
            build_generator(GeneratorSpec(in_channels=3, channels=(4, 8), num_res_units=0, norm=norm)),
        )
        net.eval()
        with torch.no_grad():
            diff = net.body(x + 0.3) - net.body(x)
        change[norm] = float(diff[..., 16:48, 16:48].abs().mean())
    assert change["batch"] > 5 * change["instance"]
    with pytest.raises(OptionError, match="AttentionUnet always uses batch normalisation"):
        GeneratorSpec(kind="attention_unet", norm="instance")
    old = GeneratorSpec(kind="attention_unet", norm="batch").to_dict()
    del old["norm"]  # a spec stored before the field existed
    assert GeneratorSpec.from_dict(old).norm == "batch"
