"""Train on a simulated dataset held in memory: for a machine with PyTorch and a GPU but no image I/O.

``radtranslate train`` reads a SynthRAD-layout folder, which ``radtranslate simulate`` writes with
SimpleITK. A GPU machine may have PyTorch but neither SimpleITK nor room to carry the images (a
120-subject brain set is 350 MB compressed). This tool simulates the subjects there instead
(``models.simulation.dataset.simulate_in_memory``: the simulator's own per-subject function, with the
conversions the files impose, so these are the subjects ``simulate`` writes; ``digest`` proves it
against a folder), and trains on them with ``radtranslate train``'s own parser, configuration,
``load_prepared`` (given the subjects instead of the folder) and ``train``; ``--resume`` works as there.

Commands::

    python tools/train_simulated.py simulate --task mr-to-ct --site brain --subjects 120 --seed 1 \\
        --workers 8 --out mr.pkl      # the subjects and their dataset.json record, pickled; prints digests
    python tools/train_simulated.py digest DATA/ [--subjects N]   # the same digests from a folder
    python tools/train_simulated.py train --subjects-file mr.pkl [--fit-until UNIX_TIME] \\
        -- --task mr-to-ct --data DATA --out RUN ...              # radtranslate train's options

``--fit-until`` sizes the run to a wall-clock deadline (a lent machine's time): a short calibration
run measures the seconds per step and per validation, then ``--epochs`` and ``--decay-epochs`` are
set so that the run ends before the deadline, and the equivalent ``radtranslate train`` command is
written to ``RUN/command.txt``. Everything else is the command as given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pickle
import shlex
import sys
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _allow_missing_simpleitk() -> None:
    """Let the project import without SimpleITK: the images never touch the disk here."""
    try:
        import SimpleITK  # noqa: F401
    except ImportError:
        stub = types.ModuleType("SimpleITK")

        def _missing(name: str) -> Any:
            # AttributeError, so that hasattr() and inspect see a module without the attribute.
            raise AttributeError(
                f"SimpleITK.{name} was asked for, but SimpleITK is not installed and this tool keeps "
                "the images in memory: pip install SimpleITK to read or write image files."
            )

        stub.__getattr__ = _missing  # type: ignore[method-assign]
        sys.modules["SimpleITK"] = stub


_allow_missing_simpleitk()

import numpy as np  # noqa: E402

from models.simulation.dataset import DatasetOptions, simulate_in_memory  # noqa: E402
from models.simulation.loader import Subject, iter_dataset  # noqa: E402
from service.atomic import atomic_file  # noqa: E402
from service.errors import OptionError, RadTranslateError  # noqa: E402


def digest(subject: Subject) -> str:
    """SHA-256 of a subject's arrays (images by key, mask, labels), geometry left out."""
    h = hashlib.sha256()
    for key in sorted(subject.images):
        h.update(key.encode())
        h.update(np.ascontiguousarray(subject.images[key].array, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(subject.mask, dtype=np.bool_).tobytes())
    if subject.labels is not None:
        h.update(np.ascontiguousarray(subject.labels, dtype=np.uint8).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Fit:
    """Epochs that fit a time budget, from calibrated costs (seconds)."""

    epochs: int
    decay_epochs: int
    seconds_per_epoch: float


def fit_epochs(
    budget_s: float, steps_per_epoch: int, step_s: float, validate_s: float, decay_fraction: float
) -> Fit:
    """The most epochs of ``steps_per_epoch`` steps (plus one validation each) that fit ``budget_s``.

    The last ``decay_fraction`` of them (rounded) decay the learning rate. Refuses a budget that holds
    fewer than two epochs (or none: a deadline already passed), and non-finite or negative costs.
    """
    if not math.isfinite(budget_s):
        raise ValueError(f"budget_s must be a finite number, got {budget_s!r}: pass a deadline.")
    for name, value in (("step_s", step_s), ("validate_s", validate_s)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}: calibrate again.")
    if not 0.0 <= decay_fraction < 1.0:
        raise ValueError(f"decay_fraction must be in [0, 1), got {decay_fraction!r}: pass e.g. 0.4.")
    per_epoch = steps_per_epoch * step_s + validate_s
    epochs = int(max(budget_s, 0.0) // per_epoch) if per_epoch > 0 else 0
    if epochs < 2:
        raise ValueError(
            f"a budget of {budget_s:.0f} s holds {epochs} epoch(s) of {per_epoch:.1f} s: "
            "lower --steps-per-epoch or give more time."
        )
    return Fit(epochs, round(decay_fraction * epochs), per_epoch)


def _train_args(train_argv: Sequence[str]) -> argparse.Namespace:
    """``radtranslate train``'s options, parsed by its own parser."""
    from models.training.cli import register

    parser = argparse.ArgumentParser(prog="radtranslate")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["train", *train_argv])


def _replace_epochs(argv: Sequence[str], epochs: int, decay: int) -> list[str]:
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in ("--epochs", "--decay-epochs"):
            skip = True
            continue
        if item.startswith(("--epochs=", "--decay-epochs=")):
            continue
        out.append(item)
    return [*out, "--epochs", str(epochs), "--decay-epochs", str(decay)]


def _calibrate(
    config: Any, train_set: list[Any], val_set: list[Any], steps: int, scratch: Path
) -> tuple[float, float]:
    """(seconds per step, seconds per validation) from a 3-epoch throwaway run in ``scratch``."""
    from models.training.families import build_family
    from models.training.loop import resolve_device, train, validate

    calib = replace(config, out=scratch, epochs=3, decay_epochs=0, steps_per_epoch=steps, init_from=None)
    train(calib, train_set, val_set, progress=False)
    rows = [json.loads(line) for line in (scratch / "metrics.jsonl").read_text().splitlines()]
    per_epoch = rows[2]["session_elapsed_s"] - rows[1]["session_elapsed_s"]
    if per_epoch <= 0:  # a step time of 0 would size the run by validation alone: thousands of epochs
        raise OptionError(
            f"the calibration's epochs of {steps} steps were too short to time ({per_epoch * 1000:.0f} ms): "
            "raise --calibration-steps."
        )
    family = build_family(
        config.preset.family, config.generator_spec, lr=config.lr, weights=config.preset.weights
    )
    family.to(resolve_device(config.device))
    module = family.export_module()
    started = time.perf_counter()
    validate(module, val_set, config)
    validate_s = time.perf_counter() - started
    step_s = max(per_epoch - validate_s, 0.0) / steps
    return step_s, validate_s


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _read_subjects(path: Path) -> dict[str, Any] | None:
    """The pickle written by ``simulate`` (a trusted file of this tool's own: pickle runs code)."""
    try:
        with open(path, "rb") as fh:
            pickled = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    if not isinstance(pickled, dict) or not {"dataset", "subjects"} <= pickled.keys():
        return None
    return pickled


def _cmd_train(ns: argparse.Namespace) -> int:
    import shutil

    from models.training.cli import config_from_args
    from models.training.dataset import load_prepared
    from models.training.loop import train

    pickled = _read_subjects(ns.subjects_file)
    if pickled is None:
        return _fail(
            f"--subjects-file {str(ns.subjects_file)!r} cannot be read as a file written by this tool's "
            "simulate command (a dict of dataset and subjects): simulate the subjects again."
        )
    train_argv = list(ns.train_argv)
    args = _train_args(train_argv)
    if args.resume and ns.fit_until is not None:
        return _fail("--fit-until sizes a new run and cannot resume one: drop --fit-until or --resume.")
    config = config_from_args(args)
    if not args.resume and (config.out / "checkpoint.pt").exists():
        return _fail(
            f"{config.out / 'checkpoint.pt'} exists: pass --resume to continue that run, or choose an "
            "empty --out folder."
        )
    if config.init_from is not None and not args.resume:
        # The parent is checked before the calibration spends the machine's time (train checks it again).
        import torch

        from models.training.warm_start import load_parent

        try:
            load_parent(config.init_from, config, torch.device("cpu"))
        except RadTranslateError as exc:
            return _fail(str(exc))
    try:
        train_set, val_set = load_prepared(config, pickled["subjects"])
    except RadTranslateError as exc:
        return _fail(str(exc))
    print(
        f"training {config.task.value}: {len(train_set)} subjects, validating on {len(val_set)}", flush=True
    )
    if ns.fit_until is not None:
        scratch = config.out.with_name(config.out.name + ".calibration")
        try:
            step_s, validate_s = _calibrate(config, train_set, val_set, ns.calibration_steps, scratch)
        except OptionError as exc:  # the timing check, or an option the calibration run refused
            return _fail(f"--fit-until: {exc}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        budget = ns.fit_until - time.time()
        try:
            fit = fit_epochs(
                budget * ns.safety, config.steps_per_epoch, step_s, validate_s, ns.decay_fraction
            )
        except ValueError as exc:
            return _fail(f"--fit-until: {exc}")
        config = replace(config, epochs=fit.epochs, decay_epochs=fit.decay_epochs)
        train_argv = _replace_epochs(train_argv, fit.epochs, fit.decay_epochs)
        print(
            f"calibrated: {step_s * 1000:.1f} ms per step, {validate_s:.2f} s per validation; "
            f"{budget:.0f} s left -> {fit.epochs} epochs ({fit.decay_epochs} decaying)",
            flush=True,
        )
    if not args.resume:  # the command that made the run; a resume keeps the first one's
        config.out.mkdir(parents=True, exist_ok=True)
        with atomic_file(config.out / "command.txt", overwrite=True) as tmp:
            tmp.write_text("radtranslate train " + shlex.join(train_argv) + "\n")
    try:
        result = train(
            config, train_set, val_set, resume=args.resume, progress=False, dataset=pickled["dataset"]
        )
    except RadTranslateError as exc:
        return _fail(str(exc))
    print(json.dumps({"best_val_mae": result.best_val_mae, "best_epoch": result.best_epoch,
                      "seconds": round(result.seconds, 1)}), flush=True)  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="simulate subjects in memory and pickle them")
    s.add_argument("--task", required=True, choices=["mr-to-ct", "cbct-to-ct", "pet"])
    s.add_argument("--site", required=True, choices=["brain", "pelvis"])
    s.add_argument("--subjects", required=True, type=int)
    s.add_argument("--seed", required=True, type=int)
    s.add_argument("--drfs", type=int, nargs="+", default=[4, 10, 20, 50, 100])
    s.add_argument("--labels", action="store_true")
    s.add_argument("--downscale", type=int, default=1, help="as simulate --downscale (tests)")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--out", required=True, type=Path, help="pickle file to write")
    d = sub.add_parser("digest", help="digests of a dataset folder's subjects")
    d.add_argument("data", type=Path)
    d.add_argument("--task", default=None)
    d.add_argument("--subjects", type=int, default=None, help="only the first N")
    t = sub.add_parser("train", help="train on pickled subjects with radtranslate train's options")
    t.add_argument("--subjects-file", required=True, type=Path)
    t.add_argument("--fit-until", type=float, default=None, help="UNIX time the run must end by")
    t.add_argument("--safety", type=float, default=0.85, help="fraction of the time left to plan for")
    t.add_argument("--decay-fraction", type=float, default=0.4)
    t.add_argument("--calibration-steps", type=int, default=30)
    t.add_argument("train_argv", nargs=argparse.REMAINDER, help="-- then radtranslate train's options")
    ns = parser.parse_args(argv)
    if ns.command == "simulate":
        options = DatasetOptions(
            task=ns.task, site=ns.site, subjects=ns.subjects, seed=ns.seed, drfs=tuple(ns.drfs),
            write_labels=ns.labels, downscale=ns.downscale,
        )  # fmt: skip
        started = time.perf_counter()
        subjects = simulate_in_memory(options, Path("."), workers=ns.workers)
        # With the dataset.json that simulate would write for these subjects: train keeps it in best.pt.
        with atomic_file(ns.out, overwrite=True) as tmp, open(tmp, "wb") as fh:
            pickle.dump(
                {"dataset": options.describe(), "subjects": subjects}, fh, protocol=pickle.HIGHEST_PROTOCOL
            )
        for subject in subjects:
            print(subject.name, digest(subject))
        print(f"simulated {len(subjects)} subjects in {time.perf_counter() - started:.1f} s", flush=True)
        return 0
    if ns.command == "digest":
        for i, subject in enumerate(iter_dataset(ns.data, ns.task)):
            if ns.subjects is not None and i >= ns.subjects:
                break
            print(subject.name, digest(subject))
        return 0
    if ns.train_argv and ns.train_argv[0] == "--":
        ns.train_argv = ns.train_argv[1:]
    return _cmd_train(ns)


if __name__ == "__main__":
    raise SystemExit(main())
