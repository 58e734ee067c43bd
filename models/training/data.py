"""Training data: subjects prepared exactly as the serving engine prepares them, and 2.5D batches.

Preparation uses the serving code itself (:mod:`service.inference.masking` and
:mod:`service.inference.normalisation`), so a model sees in training what it sees in serving:
the body mask computed from the *input* with the card's mask method, the input normalised with
the card's input normalisation (percentiles inside that mask for MR), the target with the output
normalisation. 2.5D context replicates edge slices, as the engine does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.errors import InputError
from service.inference.masking import MaskSpec, body_mask
from service.inference.normalisation import (
    NormalisationParams,
    NormalisationSpec,
    fit_normalisation,
    normalise,
)
from service.inference.prediction import pad_amounts
from service.volume import Volume

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PreparedSubject:
    """One subject in network units, arrays ``(z, y, x)``.

    ``inputs`` and ``target`` are normalised; ``mask`` is the serving body mask (from the input);
    ``eval_mask`` the dataset's own body mask when it has one (metrics use it, as SynthRAD does);
    ``target_native`` the target in HU/SUV for validation metrics; ``lesions`` the dataset's lesion
    voxels when a run reads them (a lesion loss term), else None.
    """

    subject_id: str
    inputs: FloatArray
    target: FloatArray
    mask: BoolArray
    eval_mask: BoolArray
    target_native: FloatArray
    input_params: NormalisationParams
    output_params: NormalisationParams
    spacing_mm: tuple[float, float, float]
    lesions: BoolArray | None = None


def prepare_subject(
    subject_id: str,
    source: Volume,
    target: Volume,
    *,
    input_norm: NormalisationSpec,
    output_norm: NormalisationSpec,
    mask_spec: MaskSpec,
    eval_mask: BoolArray | None = None,
    lesions: BoolArray | None = None,
) -> PreparedSubject:
    """Normalise a (source, target) pair as serving will; refuse pairs on different grids."""
    if not source.same_grid(target, atol_mm=1e-2):
        raise InputError(
            f"subject {subject_id!r}: source and target grids differ (shapes {source.shape} vs "
            f"{target.shape}): resample the target onto the source grid first."
        )
    mask = body_mask(source, mask_spec)
    in_params = fit_normalisation(input_norm, source.array, mask)
    out_params = fit_normalisation(output_norm, target.array, mask)
    if eval_mask is not None and eval_mask.shape != source.shape:
        raise InputError(
            f"subject {subject_id!r}: mask shape {eval_mask.shape} differs from image shape {source.shape}: "
            "fix the dataset's mask file."
        )
    if lesions is not None and lesions.shape != source.shape:
        raise InputError(
            f"subject {subject_id!r}: labels shape {lesions.shape} differs from image shape {source.shape}: "
            "fix the dataset's labels file."
        )
    return PreparedSubject(
        subject_id=subject_id,
        inputs=normalise(source.array, in_params),
        target=normalise(target.array, out_params),
        mask=mask,
        eval_mask=mask if eval_mask is None else eval_mask.astype(bool),
        target_native=np.asarray(target.array, dtype=np.float32),
        input_params=in_params,
        output_params=out_params,
        spacing_mm=source.spacing_mm,
        lesions=None if lesions is None else lesions.astype(bool),
    )


def context_stack(volume: FloatArray, k: int, context_slices: int) -> FloatArray:
    """Slices ``k - c//2 .. k + c//2`` of ``volume`` as channels ``(c, y, x)``, edges replicated."""
    half = context_slices // 2
    idx = np.clip(np.arange(k - half, k + half + 1), 0, volume.shape[0] - 1)
    return volume[idx]


def pad_to_multiple(image: FloatArray, multiple: int, value: float) -> FloatArray:
    """Pad the last two axes symmetrically (as the engine does) up to a multiple, with ``value``."""
    h, w = image.shape[-2:]
    pad = [(0, 0)] * (image.ndim - 2) + [pad_amounts(h, multiple), pad_amounts(w, multiple)]
    if not any(a or b for a, b in pad):
        return image
    return np.pad(image, pad, mode="constant", constant_values=value)


class SliceSampler:
    """Random 2.5D training batches from prepared subjects.

    Parameters
    ----------
    subjects
        Prepared subjects (all with the same in-plane size is not required).
    context_slices
        Odd number of input slices stacked as channels.
    target_context
        Number of target slices returned (1 for paired models; ``context_slices`` for CycleGAN,
        whose generators map a stack to a stack).
    crop_px
        Square crop size (a multiple of the network's size multiple); images smaller than the crop
        are padded with the normalisation's pad values.
    lesion_channel
        Return the lesions as a second mask channel (every subject must carry ``lesions``).
    """

    def __init__(
        self,
        subjects: Sequence[PreparedSubject],
        *,
        context_slices: int,
        target_context: int = 1,
        crop_px: int,
        input_pad: float,
        target_pad: float,
        body_fraction_min: float = 0.05,
        lesion_channel: bool = False,
    ) -> None:
        if not subjects:
            raise InputError("no training subjects: point --data at a folder with at least one subject.")
        if context_slices < 1 or context_slices % 2 == 0:
            raise InputError(f"context_slices must be odd and ≥ 1, got {context_slices}.")
        if lesion_channel:
            unlabelled = [s.subject_id for s in subjects if s.lesions is None]
            if unlabelled:
                raise InputError(
                    f"subjects {', '.join(unlabelled[:5])} carry no lesion labels: simulate with --labels, "
                    "or train without a lesion loss term."
                )
        self.lesion_channel = lesion_channel
        self.subjects = list(subjects)
        self.context_slices = context_slices
        self.target_context = target_context
        self.crop_px = crop_px
        self.input_pad = input_pad
        self.target_pad = target_pad
        # Slices with enough body to learn from, per subject.
        self.slices = [
            np.flatnonzero(s.mask.reshape(s.mask.shape[0], -1).mean(axis=1) >= body_fraction_min)
            for s in self.subjects
        ]
        if not any(len(s) for s in self.slices):
            raise InputError("no slice of any subject contains enough body: check the masks.")

    def _crop(self, image: FloatArray, y0: int, x0: int, pad: float) -> FloatArray:
        c = self.crop_px
        padded = np.pad(
            image,
            [(0, 0), (0, max(0, c - image.shape[1])), (0, max(0, c - image.shape[2]))],
            constant_values=pad,
        )
        return padded[:, y0 : y0 + c, x0 : x0 + c]

    def batch(self, rng: np.random.Generator, size: int) -> tuple[FloatArray, FloatArray, BoolArray]:
        """``(inputs (B,C,h,w), targets (B,T,h,w), masks (B,M,h,w))`` with random flips left-right.

        ``M`` is 1 (the body) or, with ``lesion_channel``, 2 (body, lesions)."""
        xs, ys, ms = [], [], []
        candidates = [i for i, s in enumerate(self.slices) if len(s)]
        for _ in range(size):
            i = int(rng.choice(candidates))
            subject = self.subjects[i]
            k = int(rng.choice(self.slices[i]))
            x = context_stack(subject.inputs, k, self.context_slices)
            y = context_stack(subject.target, k, self.target_context)
            m = subject.mask[k : k + 1].astype(np.float32)
            if self.lesion_channel:
                assert subject.lesions is not None  # checked in __init__
                m = np.concatenate([m, subject.lesions[k : k + 1].astype(np.float32)])
            h, w = x.shape[1:]
            y0 = int(rng.integers(0, max(1, h - self.crop_px + 1)))
            x0 = int(rng.integers(0, max(1, w - self.crop_px + 1)))
            x, y, m = (
                self._crop(x, y0, x0, self.input_pad),
                self._crop(y, y0, x0, self.target_pad),
                self._crop(m, y0, x0, 0.0),
            )
            if rng.random() < 0.5:
                x, y, m = x[..., ::-1], y[..., ::-1], m[..., ::-1]
            xs.append(x)
            ys.append(y)
            ms.append(m)
        return (
            np.ascontiguousarray(np.stack(xs), dtype=np.float32),
            np.ascontiguousarray(np.stack(ys), dtype=np.float32),
            np.ascontiguousarray(np.stack(ms)) > 0.5,
        )
