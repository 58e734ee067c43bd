"""Read a SynthRAD-layout dataset and prepare it for training, with a seeded train/validation split."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from models.simulation.dataset import LESION_LABEL_BASE
from models.simulation.loader import Subject, iter_dataset
from models.training.config import TrainConfig
from models.training.data import PreparedSubject, prepare_subject
from service.errors import InputError
from service.inference.card import Task
from service.inference.masking import parse_mask_spec
from service.inference.normalisation import parse_normalisation

#: Dataset task names (the simulator's) of each model task.
DATASET_TASK = {Task.MR_TO_CT: "mr-to-ct", Task.CBCT_TO_CT: "cbct-to-ct", Task.PET_DENOISE: "pet"}


def load_prepared(
    config: TrainConfig, in_memory: Iterable[Subject] | None = None
) -> tuple[list[PreparedSubject], list[PreparedSubject]]:
    """All subjects of ``config.data`` prepared as serving prepares them, split into (train, validation).

    ``in_memory``: the subjects already in memory, in name order, instead of reading ``config.data``
    (``models.simulation.dataset.simulate_in_memory``). The split is a permutation seeded by
    ``config.seed``; at least one subject is kept for training, and one for validation when there are
    two or more and ``val_fraction > 0``.
    """
    preset = config.preset
    input_norm = parse_normalisation(None, preset.input["normalisation"])
    output_norm = parse_normalisation(None, preset.output["normalisation"])
    mask_spec = parse_mask_spec(None, preset.body_mask, preset.input["modality"])
    subjects: list[PreparedSubject] = []
    source = iter_dataset(config.data, DATASET_TASK[config.task]) if in_memory is None else in_memory
    for subject in source:
        if preset.dataset_input not in subject.images or preset.dataset_target not in subject.images:
            found = ", ".join(sorted(subject.images))
            raise InputError(
                f"subject {subject.name!r} lacks {preset.dataset_input!r} or {preset.dataset_target!r} "
                f"(found {found}): simulate that dose-reduction factor or pass --drf with one present."
            )
        lesions = None
        if config.needs_lesions:
            if subject.labels is None:
                raise InputError(
                    f"subject {subject.name!r} has no labels image, which --loss-weight lesion_l1 reads: "
                    "simulate the data with --labels, or drop --loss-weight lesion_l1."
                )
            lesions = subject.labels >= LESION_LABEL_BASE
        subjects.append(
            prepare_subject(
                subject.name,
                subject.images[preset.dataset_input],
                subject.images[preset.dataset_target],
                input_norm=input_norm,
                output_norm=output_norm,
                mask_spec=mask_spec,
                eval_mask=subject.mask,
                lesions=lesions,
            )
        )
    train_idx, val_idx = split_indices(len(subjects), config.seed, config.val_fraction)
    return [subjects[i] for i in train_idx], [subjects[i] for i in val_idx]


def split_indices(count: int, seed: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """(training, validation) positions, ascending, of ``count`` subjects in name order.

    A permutation seeded by ``seed``; ``ceil(val_fraction * count)`` subjects validate, but at least
    one subject is kept for training. :func:`load_prepared` splits with it, so a tool that needs a
    run's validation subjects (their names) gets the same ones.
    """
    order = np.random.default_rng(seed).permutation(count)
    n_val = int(np.ceil(val_fraction * count)) if val_fraction > 0 else 0
    n_val = max(min(n_val, count - 1), 0)
    return sorted(int(i) for i in order[n_val:]), sorted(int(i) for i in order[:n_val])
