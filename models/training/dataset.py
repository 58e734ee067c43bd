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
    order = np.random.default_rng(config.seed).permutation(len(subjects))
    n_val = int(np.ceil(config.val_fraction * len(subjects))) if config.val_fraction > 0 else 0
    n_val = min(n_val, len(subjects) - 1)
    val = [subjects[i] for i in sorted(order[:n_val])]
    train = [subjects[i] for i in sorted(order[n_val:])]
    return train, val
