"""``radtranslate train``: train a model on any SynthRAD-layout dataset (simulated or a site's own)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI registers without importing torch/monai
    from models.networks import GeneratorSpec
    from models.training.config import TrainConfig

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model (pix2pix MR→sCT, CycleGAN CBCT→CT, DAEGAN-style PET) on a SynthRAD-layout folder",
        description=(
            "Train the task's model family on DATA (one folder per subject: mr|cbct|pet_low_drfN, "
            "ct|pet_full, mask). Writes checkpoint.pt (resumable), best.pt (best validation MAE) "
            "and metrics.jsonl to OUT."
        ),
    )
    p.add_argument("--task", required=True, choices=["mr-to-ct", "cbct-to-ct", "pet-denoise"])
    p.add_argument("--data", required=True, type=Path, help="dataset folder (SynthRAD layout)")
    p.add_argument("--out", required=True, type=Path, help="run folder for checkpoints and metrics")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps-per-epoch", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop-px", type=int, default=128, help="square training crop (pixels)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument(
        "--decay-epochs",
        type=int,
        default=0,
        help="last epochs over which the learning rate falls linearly towards 0 (pix2pix/CycleGAN policy)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--val-fraction", type=float, default=0.1, help="subjects held out for per-epoch validation"
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda", "auto"], help="where to train (default cpu)"
    )
    p.add_argument("--drf", type=int, default=10, help="PET: dose-reduction factor of the input images")
    p.add_argument("--channels", default=None, help="generator feature maps per level, e.g. 32,64,128,256")
    p.add_argument("--context-slices", type=int, default=None, help="2.5D input slices (odd)")
    p.add_argument(
        "--norm",
        default=None,
        choices=["instance", "batch"],
        help="generator feature normalisation (default: the task's)",
    )
    p.add_argument(
        "--head",
        default=None,
        choices=["tanh", "linear", "residual"],
        help="generator output head (default: the task's; residual = input + learned correction)",
    )
    p.add_argument("--paired-l1", type=float, default=None, help="CycleGAN: weight of a paired L1 term")
    p.add_argument(
        "--loss-weight",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one of the family's loss weights (adversarial, l1, cycle, identity, paired_l1, "
        "gradient, frequency, suv_l1, lesion_l1), e.g. --loss-weight cycle=1; repeatable; a CycleGAN term, "
        "suv_l1 or lesion_l1 of weight 0 is not computed; lesion_l1 reads the data's labels "
        "(simulate --labels)",
    )
    p.add_argument(
        "--ema-decay",
        type=float,
        default=0.0,
        help="validate and export an exponential moving average of the generator's weights with this decay "
        "per step (e.g. 0.998; default 0: the weights themselves)",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="RUN_FILE",
        help="start the networks from another run's checkpoint.pt (every network) or best.pt (the "
        "served generator; the other networks start fresh); same task and generator, fresh optimisers, "
        "epoch counter and schedule: a warm restart, or fine-tuning on a site's own data; recorded in "
        "the card",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from its last epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _generator(args: argparse.Namespace) -> GeneratorSpec | None:
    from models.networks import GeneratorSpec
    from models.training.config import PRESETS
    from service.inference.card import Task

    if args.channels is None and args.context_slices is None and args.head is None and args.norm is None:
        return None
    base = PRESETS[Task.parse(args.task)].generator.to_dict()
    if args.channels is not None:
        base["channels"] = [int(c) for c in str(args.channels).split(",")]
    if args.context_slices is not None:
        base["in_channels"] = int(args.context_slices)
    if args.head is not None:
        base["head"] = args.head
    if args.norm is not None:
        base["norm"] = args.norm
    return GeneratorSpec.from_dict(base)


def _loss_weights(items: list[str]) -> dict[str, float]:
    from models.training.config import parse_loss_weights
    from service.errors import OptionError

    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise OptionError(
                f"--loss-weight takes NAME=VALUE, got {item!r}: write e.g. --loss-weight cycle=1."
            )
        out[name.strip()] = value.strip()
    return parse_loss_weights(out)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The training configuration that ``radtranslate train`` runs for its parsed ``args``."""
    from models.training.config import TrainConfig

    return TrainConfig(
        task=args.task,
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        crop_px=args.crop_px,
        lr=args.lr,
        decay_epochs=args.decay_epochs,
        seed=args.seed,
        val_fraction=args.val_fraction,
        threads=args.threads,
        device=args.device,
        drf=args.drf,
        generator=_generator(args),
        paired_l1=args.paired_l1,
        ema_decay=args.ema_decay,
        loss_weights=_loss_weights(args.loss_weight) or None,
        init_from=args.init_from,
    )


def run(args: argparse.Namespace) -> int:
    from models.simulation.loader import dataset_record
    from models.training.dataset import load_prepared
    from models.training.loop import train

    config = config_from_args(args)
    train_set, val_set = load_prepared(config)
    print(f"training {config.task.value}: {len(train_set)} subjects, validating on {len(val_set)}")
    result = train(
        config,
        train_set,
        val_set,
        resume=args.resume,
        progress=not args.no_progress,
        dataset=dataset_record(config.data),
    )
    summary = {
        "epochs_run": result.epochs_run,
        "best_val_mae": result.best_val_mae,
        "best_epoch": result.best_epoch,
        "seconds": round(result.seconds, 1),
        "checkpoint": str(result.checkpoint),
        "best": None if result.best is None else str(result.best),
    }
    print(json.dumps(summary, indent=2))
    return 0
