"""The training loop: seeded, with a progress bar, checkpoints, resume and per-epoch validation.

Outputs in ``config.out``:

- ``checkpoint.pt``: the whole state after the last finished epoch (networks, optimisers, RNG states,
  history); written atomically, so an interrupted run resumes from the last complete epoch.
- ``best.pt``: the exported generator's weights at the best validation MAE, with its spec (with
  ``ema_decay`` > 0: the moving average of those weights, which is also what is validated).
- ``metrics.jsonl``: one JSON object per epoch (losses averaged over the epoch, validation MAE in
  native units, i.e. HU or SUV, inside the dataset's body mask); a resume first drops the lines of
  epochs after its checkpoint, so each epoch appears once (``run_log.py``).
- With ``config.init_from``, the networks start at a parent run's ``checkpoint.pt`` (every network)
  or ``best.pt`` (the served generator) (``warm_start.py``); the parent is recorded in
  ``checkpoint.pt`` and ``best.pt``.
- ``dataset``, given by the caller (the training folder's ``dataset.json``, ``None`` for a site's own
  data), is kept in ``checkpoint.pt`` and ``best.pt``, so that export can name the training subjects
  after the folder is gone; a resume on data with another record is refused.
- ``timing.json``: wall seconds and hardware per session, summed over resumptions; rewritten after every
  epoch, so a killed session keeps its time up to the checkpoint a resume continues from (``run_log.py``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.networks import size_multiple
from models.training.config import TrainConfig
from models.training.data import PreparedSubject, SliceSampler
from models.training.ema import WeightAverage
from models.training.families import build_family
from models.training.predict import masked_mae, predict_native
from models.training.run_log import metrics_upto, record_timing, timing_before
from models.training.torch_files import load_torch_file
from models.training.warm_start import apply_parent, check_resumed_parent, load_parent, parent_record
from service.atomic import atomic_file
from service.errors import OptionError
from service.inference.normalisation import parse_normalisation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Summary of a finished run."""

    epochs_run: int
    best_val_mae: float | None
    best_epoch: int | None
    seconds: float
    checkpoint: Path
    best: Path | None


def _pad(norm: dict[str, Any]) -> float:
    return parse_normalisation(None, norm).pad_value


def _save(path: Path, payload: dict[str, Any]) -> None:
    with atomic_file(path, overwrite=True) as tmp:
        torch.save(payload, tmp)


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (refused when absent) or ``auto`` (CUDA when available)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise OptionError(
            "device 'cuda' asked for, but torch sees no CUDA device: pass --device cpu or auto."
        )
    return torch.device(name)


def _best_payload(
    config: TrainConfig,
    module: torch.nn.Module,
    epoch: int,
    val_mae: float | None,
    init: dict[str, Any] | None,
    dataset: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "family": config.preset.family,
        "spec": config.generator_spec.to_dict(),
        "state": module.state_dict(),
        "epoch": epoch,
        "val_mae": val_mae,
        "config": config.to_dict(),
        "init": init,
        "dataset": dataset,
    }


def validate(
    module: torch.nn.Module, subjects: Sequence[PreparedSubject], config: TrainConfig
) -> float | None:
    """Mean over subjects of the MAE (HU or SUV) inside each subject's evaluation mask."""
    if not subjects:
        return None
    preset = config.preset
    maes = [
        masked_mae(
            predict_native(
                module,
                s,
                context_slices=config.generator_spec.in_channels,
                multiple=size_multiple(config.generator_spec),
                pad_value=_pad(preset.input["normalisation"]),
                background=float(preset.output["background"]),
                clip=(float(preset.output["clip"][0]), float(preset.output["clip"][1])),
            ),
            s.target_native,
            s.eval_mask,
        )
        for s in subjects
    ]
    return float(np.nanmean(maes))


def train(
    config: TrainConfig,
    train_subjects: Sequence[PreparedSubject],
    val_subjects: Sequence[PreparedSubject],
    *,
    resume: bool = False,
    progress: bool = True,
    dataset: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``config.preset.family`` on prepared subjects; see the module docstring for outputs.

    ``dataset`` is the training set's ``dataset.json`` record (``None``: not simulated, or unknown).
    """
    data_record = None if dataset is None else dict(dataset)
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    preset = config.preset
    spec = config.generator_spec
    device = resolve_device(config.device)
    family = build_family(preset.family, spec, lr=config.lr, weights=preset.weights)
    family.to(device)
    served = family.export_module()  # shares the trained generator's weights
    average = WeightAverage(served, config.ema_decay) if config.ema_decay else None
    init: dict[str, Any] | None = None
    if config.init_from is not None and not resume:
        parent = load_parent(config.init_from, config, device)
        apply_parent(parent, family, average, config.init_from)
        init = parent_record(config.init_from, parent)
    sampler = SliceSampler(
        train_subjects,
        context_slices=spec.in_channels,
        target_context=preset.target_context,
        crop_px=config.crop_px,
        input_pad=_pad(preset.input["normalisation"]),
        target_pad=_pad(preset.output["normalisation"]),
        lesion_channel=config.needs_lesions,
    )
    config.out.mkdir(parents=True, exist_ok=True)
    ckpt_path, best_path, metrics_path = (
        config.out / "checkpoint.pt",
        config.out / "best.pt",
        config.out / "metrics.jsonl",
    )
    start_epoch = 0
    best_mae: float | None = None
    best_epoch: int | None = None
    if ckpt_path.exists() and not resume:
        raise OptionError(
            f"{ckpt_path} exists: pass --resume to continue that run, or choose an empty --out folder."
        )
    if resume and not ckpt_path.exists():
        raise OptionError(
            f"--resume: there is no {ckpt_path} to continue: "
            "check --out, or drop --resume to start a new run."
        )
    if resume:
        state = load_torch_file(
            ckpt_path,
            what="--resume",
            fix="the run's last checkpoint cannot be read: start the run again in a new --out folder.",
            error=OptionError,
            map_location=device,
        )
        if state["fingerprint"] != config.fingerprint():
            raise OptionError(
                f"--resume: the checkpoint was made with {state['fingerprint']}, this run asks for "
                f"{config.fingerprint()}: use the same options or a new --out folder."
            )
        family.load_state_dict(state["family"])
        if average is not None:
            average.load_state_dict(state["ema"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())
        start_epoch, best_mae, best_epoch = state["epoch"], state["best_mae"], state["best_epoch"]
        init = state.get("init")
        check_resumed_parent(config, init)
        kept = state.get("dataset")
        if kept is not None and data_record is not None and kept != data_record:
            raise OptionError(
                f"--resume: the checkpoint was trained on the dataset {kept}, --data holds {data_record}: "
                "resume with the run's own --data, or start a new run in a new --out folder."
            )
        data_record = kept if kept is not None else data_record
        if not config.schedule_agrees(state["config"], start_epoch):
            log.warning(
                "--resume: epochs 1-%d ran at learning rates other than this run's schedule "
                "(--lr %g, --epochs %d, --decay-epochs %d); training continues, but the result is not "
                "what one run with these options would give: record both sessions' options.",
                start_epoch, config.lr, config.epochs, config.decay_epochs,
            )  # fmt: skip
    timing_path = config.out / "timing.json"
    earlier = timing_before(timing_path, resume)
    metrics_upto(metrics_path, start_epoch)
    for epoch in range(start_epoch, config.epochs):
        family.train(True)
        lr = config.lr_at(epoch)
        family.set_lr(lr)
        sums: dict[str, float] = {}
        bar = tqdm(
            range(config.steps_per_epoch),
            desc=f"{config.task.value} epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        for _ in bar:
            a = [torch.from_numpy(t).to(device) for t in sampler.batch(rng, config.batch_size)]
            b = [torch.from_numpy(t).to(device) for t in sampler.batch(rng, config.batch_size)]
            losses = family.train_step((a[0], a[1], a[2]), (b[0], b[1], b[2]))
            if average is not None:
                average.update(served)
            for k, v in losses.items():
                if not np.isfinite(v):
                    from service.errors import NumericError

                    raise NumericError(
                        f"loss {k} became {v} at epoch {epoch + 1}: lower --lr or check the data."
                    )
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss_g=f"{losses['loss_g']:.3f}")
        validated = served if average is None else average.module
        val_mae = validate(validated, val_subjects, config)
        record: dict[str, float | int | None] = {"epoch": epoch + 1, "lr": lr}
        record.update({k: v / config.steps_per_epoch for k, v in sums.items()})
        record["val_mae"] = val_mae
        # Wall seconds since this session started: the time to any epoch survives an interrupted run.
        # Milliseconds: tools/train_simulated.py times short calibration epochs from these.
        record["session_elapsed_s"] = round(time.perf_counter() - started, 3)
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if val_mae is not None and (best_mae is None or val_mae < best_mae):
            best_mae, best_epoch = val_mae, epoch + 1
            _save(best_path, _best_payload(config, validated, epoch + 1, val_mae, init, data_record))
        _save(
            ckpt_path,
            {
                "family": family.state_dict(),
                "fingerprint": config.fingerprint(),
                "config": config.to_dict(),
                "epoch": epoch + 1,
                "best_mae": best_mae,
                "best_epoch": best_epoch,
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "init": init,
                "dataset": data_record,
                **({} if average is None else {"ema": average.state_dict()}),
            },
        )
        record_timing(timing_path, earlier, time.perf_counter() - started, epoch + 1 - start_epoch, device)
        log.info("epoch %d: %s", epoch + 1, record)
    if not val_subjects:
        final = served if average is None else average.module
        _save(best_path, _best_payload(config, final, config.epochs, None, init, data_record))
    record_timing(timing_path, earlier, time.perf_counter() - started, config.epochs - start_epoch, device)
    return TrainResult(
        epochs_run=config.epochs - start_epoch,
        best_val_mae=best_mae,
        best_epoch=best_epoch,
        seconds=time.perf_counter() - started,
        checkpoint=ckpt_path,
        best=best_path if best_path.exists() else None,
    )
