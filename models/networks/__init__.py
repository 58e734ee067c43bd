"""Networks of the three model families, built from MONAI blocks.

- :func:`unet_generator`: pix2pix-style U-Net generator (MR→sCT, both CycleGAN generators).
- :func:`attention_generator`: attention-gated encoder-decoder (DAEGAN-style low-dose PET).
- :func:`patch_discriminator`: PatchGAN discriminator (70x70-like receptive field).

All are 2D networks over 2.5D inputs: ``(N, C, H, W)`` with ``C`` neighbouring slices as channels,
output ``(N, 1, H, W)`` in the normalised range ``[-1, 1]`` (tanh). ``H`` and ``W`` must be multiples of
:func:`size_multiple`.
"""

from models.networks.factory import (
    GeneratorSpec,
    attention_generator,
    build_generator,
    patch_discriminator,
    size_multiple,
    unet_generator,
)

__all__ = [
    "GeneratorSpec",
    "attention_generator",
    "build_generator",
    "patch_discriminator",
    "size_multiple",
    "unet_generator",
]
