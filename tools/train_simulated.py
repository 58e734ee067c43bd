"""Train on a simulated dataset held in memory: for a machine with PyTorch and a GPU but no image I/O.

``radtranslate train`` reads a SynthRAD-layout folder, which ``radtranslate simulate`` writes with
SimpleITK. A GPU machine may have PyTorch but neither SimpleITK nor room to carry the images (a
120-subject brain set is 350 MB compressed). This tool simulates the subjects there instead, with
the simulator's own per-subject function (subject ``i`` depends only on seed, task, site and ``i``,
so these are the subjects ``simulate`` writes; ``digest`` proves it against a folder), and trains on
them with ``radtranslate train``'s own parser, ``load_prepared`` and ``train``: only the folder
reading is replaced by the subjects in memory.

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
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
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

from models.simulation.dataset import DatasetOptions, simulate_subject  # noqa: E402
from models.simulation.loader import Subject, iter_dataset  # noqa: E402


def in_memory_subject(options: DatasetOptions, index: int, root: Path) -> Subject:
    """Subject ``index`` as :func:`models.simulation.loader.load_subject` would read it from disk.

    The files hold float32 images, a uint8 mask (read back as ``> 0.5``) and uint8 labels
    (read back rounded); the same conversions are applied here.
    """
    sim = simulate_subject(options, index)
    images = {key: v.with_array(v.array.astype(np.float32)) for key, v in sim.images.items()}
    mask = np.asarray(sim.mask.array, dtype=np.float32) > 0.5
    labels = None
    if sim.labels is not None:
        labels = np.rint(np.clip(sim.labels.array, 0, 255)).astype(np.uint8)
    return Subject(sim.name, root / sim.name, images, mask, labels)


def _simulate_one(args: tuple[DatasetOptions, int, str]) -> Subject:
    options, index, root = args
    return in_memory_subject(options, index, Path(root))


def simulate_in_memory(options: DatasetOptions, root: Path, workers: int = 1) -> list[Subject]:
    """All subjects of ``options``, in name order (``workers`` processes)."""
    jobs = [(options, i, str(root)) for i in range(options.subjects)]
    if workers <= 1:
        return [_simulate_one(job) for job in jobs]
    if options.site.value == "brain":  # load the MNI template once; forked workers inherit it
        from models.simulation.anatomy_head import _brain_base

        _brain_base()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sorted(pool.map(_simulate_one, jobs), key=lambda s: s.name)


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


def _train_parser() -> argparse.ArgumentParser:
    from models.training.cli import register

    parser = argparse.ArgumentParser(prog="radtranslate")
    register(parser.add_subparsers(dest="command"))
    return parser


def _config(train_argv: Sequence[str]) -> Any:
    """``radtranslate train``'s TrainConfig for ``train_argv``, as its own ``run`` builds it."""
    import models.training.cli as cli
    import models.training.dataset as dataset

    args = _train_parser().parse_args(["train", *train_argv])
    captured: dict[str, Any] = {}

    def capture(config: Any) -> Any:
        captured["config"] = config
        raise _Captured

    saved = dataset.load_prepared
    setattr(dataset, "load_prepared", capture)  # noqa: B010 (typed as a function)
    try:
        cli.run(args)
    except _Captured:
        pass
    finally:
        setattr(dataset, "load_prepared", saved)  # noqa: B010
    return captured["config"]


class _Captured(Exception):
    pass


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


def _calibrate(config: Any, train_set: list[Any], val_set: list[Any], steps: int) -> tuple[float, float]:
    """(seconds per step, seconds per validation) from a 3-epoch throwaway run beside ``config.out``."""
    from models.training.families import build_family
    from models.training.loop import resolve_device, train, validate

    scratch = config.out.with_name(config.out.name + ".calibration")
    calib = replace(config, out=scratch, epochs=3, decay_epochs=0, steps_per_epoch=steps, init_from=None)
    train(calib, train_set, val_set, progress=False)
    rows = [json.loads(line) for line in (scratch / "metrics.jsonl").read_text().splitlines()]
    per_epoch = rows[2]["session_elapsed_s"] - rows[1]["session_elapsed_s"]
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


def _cmd_train(ns: argparse.Namespace) -> int:
    import models.training.dataset as dataset
    from models.training.loop import train

    with open(ns.subjects_file, "rb") as fh:
        pickled = pickle.load(fh)
    if not isinstance(pickled, dict) or not {"dataset", "subjects"} <= pickled.keys():
        print(
            f"error: --subjects-file {str(ns.subjects_file)!r} is not a file written by this tool's simulate "
            "command (a dict of dataset and subjects): simulate the subjects again.",
            file=sys.stderr,
        )
        return 2
    subjects: list[Subject] = pickled["subjects"]
    train_argv = list(ns.train_argv)
    config = _config(train_argv)

    def from_memory(root: Any, task: str | None = None) -> Iterator[Subject]:
        return iter(subjects)

    setattr(dataset, "iter_dataset", from_memory)  # noqa: B010 (the subjects from memory)
    train_set, val_set = dataset.load_prepared(config)
    print(
        f"training {config.task.value}: {len(train_set)} subjects, validating on {len(val_set)}", flush=True
    )
    if ns.fit_until is not None:
        step_s, validate_s = _calibrate(config, train_set, val_set, ns.calibration_steps)
        budget = ns.fit_until - time.time()
        try:
            fit = fit_epochs(
                budget * ns.safety, config.steps_per_epoch, step_s, validate_s, ns.decay_fraction
            )
        except ValueError as exc:
            print(f"error: --fit-until: {exc}", file=sys.stderr)
            return 2
        config = replace(config, epochs=fit.epochs, decay_epochs=fit.decay_epochs)
        train_argv = _replace_epochs(train_argv, fit.epochs, fit.decay_epochs)
        print(
            f"calibrated: {step_s * 1000:.1f} ms per step, {validate_s:.2f} s per validation; "
            f"{budget:.0f} s left -> {fit.epochs} epochs ({fit.decay_epochs} decaying)",
            flush=True,
        )
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "command.txt").write_text("radtranslate train " + shlex.join(train_argv) + "\n")
    result = train(config, train_set, val_set, progress=False, dataset=pickled["dataset"])
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
        subjects = simulate_in_memory(options, Path("."), ns.workers)
        with open(ns.out, "wb") as fh:
            # The dataset.json that simulate would write for these subjects: train keeps it in best.pt.
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
