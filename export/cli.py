"""``radtranslate export``: best.pt → ONNX → parity check → held-out evaluation → repository entry + card."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from export.evaluate import Evaluation

#: Parity tolerance per output unit (issue contract: 1 HU / 0.01 SUV).
PARITY_TOLERANCE = {"HU": 1.0, "SUVbw": 0.01}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained generator to ONNX, check parity, evaluate held-out data, write the repository",
    )
    p.add_argument(
        "--run", required=True, type=Path, help="training run folder (holds best.pt, metrics.jsonl)"
    )
    p.add_argument("--name", required=True, help="model name in the repository, e.g. mr_to_ct_brain")
    p.add_argument("--version", default="1", help="model version (positive integer)")
    p.add_argument("--site", default="any", choices=["brain", "pelvis", "any"])
    p.add_argument("--repository", required=True, type=Path, help="model repository folder")
    p.add_argument("--test-data", required=True, type=Path, help="held-out SynthRAD-layout folder")
    p.add_argument(
        "--confirm-data",
        type=Path,
        default=None,
        help="a second held-out folder (other subjects: another simulation seed) that no choice between "
        "runs has seen; scored like --test-data and written into the card beside it",
    )
    p.add_argument("--doc", type=Path, help="JSON file with card documentation fields to merge in")
    p.add_argument(
        "--flips",
        default="none",
        choices=["none", "x", "xy"],  # export.flip_average.Flips (imported with torch, in run)
        help="test-time flip averaging in the exported graph: the generator's outputs on the image and "
        "its mirrors along the width axis (x: 2 passes) or width, height and both (xy: 4 passes), "
        "mirrored back and averaged; recorded in the card (default none: the generator alone)",
    )
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--overwrite", action="store_true", help="replace an existing version folder")
    p.set_defaults(func=run)


def training_data_folder(run_dir: Path, config: dict[str, Any]) -> Path | None:
    """The folder a run was trained on, or ``None`` when it is not there any more.

    ``train`` records ``data`` and ``out`` as given; relative ones are relative to the folder it ran
    in, which is ``run_dir`` less the parts of ``out``. That folder is tried first, then ``data`` as
    given (relative to the current folder).
    """
    if not config.get("data"):
        return None
    data, out = Path(str(config["data"])), Path(str(config.get("out") or ""))
    candidates = []
    run = run_dir.resolve()
    n = len(out.parts)
    if (
        not data.is_absolute()
        and not out.is_absolute()
        and 0 < n < len(run.parts)
        and run.parts[-n:] == out.parts
    ):
        candidates.append(run.parents[n - 1] / data)
    candidates.append(data)
    return next((c for c in candidates if c.is_dir()), None)


def training_hardware(timing: dict[str, Any] | None) -> str:
    """Where the run trained, from its ``timing.json`` sessions (the exporting machine is not that).

    One phrase per distinct session kind, e.g. ``"NVIDIA H200 GPU (x86_64 host, 16 CPUs)"`` or
    ``"CPU: x86_64, 2 CPUs, 2 torch threads"``; runs older than ``timing.json`` say so.
    """
    sessions = (timing or {}).get("sessions") or []
    kinds: list[str] = []
    for s in sessions:
        machine = str(s.get("machine") or "unknown machine").split()[0]
        cpus = s.get("cpu_count")
        if s.get("device", "cpu") != "cpu":
            kind = f"{s['device']} GPU ({machine} host, {cpus} CPUs)"
        else:
            kind = f"CPU: {machine}, {cpus} CPUs, {s.get('torch_threads')} torch threads"
        if kind not in kinds:
            kinds.append(kind)
    return "; ".join(kinds) if kinds else "not recorded (the run folder has no timing.json)"


def training_dataset(run_dir: Path, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The training set's ``dataset.json`` record: the one ``train`` kept in ``best.pt``, else (runs made
    before it kept one) the one in the training folder, when that folder is still there."""
    from models.simulation.loader import dataset_record

    if payload.get("dataset") is not None:
        return dict(payload["dataset"])
    folder = training_data_folder(run_dir, payload.get("config", {}))
    return dataset_record(folder) if folder is not None else None


def _training_record(run_dir: Path, payload: dict[str, Any]) -> dict[str, Any]:
    metrics_path = run_dir / "metrics.jsonl"
    history = (
        [json.loads(line) for line in metrics_path.read_text().splitlines()] if metrics_path.exists() else []
    )
    config = payload.get("config", {})
    record = {
        "config": {k: v for k, v in config.items() if k not in ("out",)},
        "best_epoch": payload.get("epoch"),
        "best_val_mae": payload.get("val_mae"),
        "epochs_logged": len(history),
    }
    dataset = training_dataset(run_dir, payload)
    if dataset is not None:
        record["dataset"] = dataset
    timing_path = run_dir / "timing.json"
    timing: dict[str, Any] | None = json.loads(timing_path.read_text()) if timing_path.exists() else None
    if timing is not None:
        record["timing"] = timing
    record["hardware"] = training_hardware(timing)
    if payload.get("init") is not None:  # a warm start: the parent run's checkpoint, options and time
        record["initialised_from"] = payload["init"]
    return record


def check_confirmation(test_data: Path, confirm_data: Path, training_set: dict[str, Any] | None) -> None:
    """Refuse a confirmation folder that is not a set of new subjects.

    Raises
    ------
    OptionError
        ``confirm_data`` is not a folder, is ``test_data`` itself, or was simulated with the seed
        (and task and site) of the held-out or the training set, so it holds the same subjects.
    """
    from export.evaluate import same_subjects
    from models.simulation.loader import dataset_record
    from service.errors import OptionError

    if not confirm_data.is_dir():
        raise OptionError(
            f"--confirm-data {str(confirm_data)!r} is not a folder: pass a paired SynthRAD-layout folder "
            "simulated with a seed used nowhere else (e.g. radtranslate simulate ... --seed 2001)."
        )
    if test_data.resolve() == confirm_data.resolve():
        raise OptionError(
            f"--confirm-data is --test-data ({str(test_data)!r}): a confirmation set must hold other "
            "subjects; simulate one with another seed."
        )
    confirm = dataset_record(confirm_data)
    for option, record in (("--test-data", dataset_record(test_data)), ("the training data", training_set)):
        if same_subjects(confirm, record):
            raise OptionError(
                f"--confirm-data {str(confirm_data)!r} was simulated with the seed of {option} "
                f"({(confirm or {}).get('seed')}): it holds the same subjects; simulate it with another seed."
            )


def _scored(evaluation: Evaluation, folder: Path, task: str) -> dict[str, Any]:
    from export.evaluate import meets_target
    from models.simulation.loader import dataset_record

    record = {
        **evaluation.to_dict(),
        "test_data": folder.name,
        "target_met": meets_target(task, evaluation.mean()),
    }
    dataset = dataset_record(folder)
    if dataset is not None:
        record["test_dataset"] = dataset
    return record


def run(args: argparse.Namespace) -> int:
    from export.evaluate import CONVENTIONS, TARGETS, evaluate_folder, meets_target
    from export.flip_average import parse_flips, with_flips
    from export.onnx_export import export_onnx, load_best
    from export.parity import check_parity
    from export.repository import build_card, write_entry
    from models.networks import GeneratorSpec, size_multiple
    from models.simulation.loader import dataset_record
    from models.training.config import TrainConfig
    from models.training.dataset import load_prepared
    from service.errors import NumericError, OptionError
    from service.inference.engine import Engine
    from service.inference.normalisation import parse_normalisation

    flips = parse_flips(args.flips)
    best = args.run / "best.pt"
    generator, payload = load_best(best)
    module = with_flips(generator, flips)  # what is exported, checked for parity and scored
    spec = GeneratorSpec.from_dict(payload["spec"])
    cfg = payload["config"]
    config = TrainConfig(task=cfg["task"], data=args.test_data, out=args.run, drf=cfg.get("drf", 10),
                         generator=spec, crop_px=cfg["crop_px"], val_fraction=0.0)  # fmt: skip
    preset = config.preset
    doc: dict[str, Any] = json.loads(args.doc.read_text()) if args.doc else {}
    if args.confirm_data is not None:
        check_confirmation(args.test_data, args.confirm_data, training_dataset(args.run, payload))
    test_subjects, _ = load_prepared(config)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(module, Path(tmp) / "model.onnx", in_channels=spec.in_channels,
                                multiple=size_multiple(spec), opset=args.opset)  # fmt: skip
        unit = str(preset.output["unit"])
        report = check_parity(
            onnx_path, module, in_channels=spec.in_channels, multiple=size_multiple(spec),
            output_params=test_subjects[0].output_params, unit=unit, subjects=test_subjects[:3],
            input_pad=parse_normalisation(None, preset.input["normalisation"]).pad_value,
        )  # fmt: skip
        if not report.within(PARITY_TOLERANCE[unit]):
            raise NumericError(
                f"ONNX vs PyTorch differ by {report.max_abs_native:.4g} {unit} "
                f"(limit {PARITY_TOLERANCE[unit]}): the export is not faithful; check unsupported operators."
            )
        spacing = test_subjects[0].spacing_mm
        documentation = {
            **doc,
            "architecture": {
                "family": preset.family,
                "generator": spec.to_dict(),
                **doc.get("architecture", {}),
                "flips": {"mode": flips.value, "passes": flips.passes},
            },
            "training": _training_record(args.run, payload),
            "parity": {"max_abs_native": report.max_abs_native, "unit": unit, "cases": report.cases,
                       "onnx_opset": args.opset, "where": "served output: whole image (random inputs), "
                       "serving body mask (real slices)",
                       "max_abs_native_unmasked": report.max_abs_native_unmasked},
        }  # fmt: skip
        card = build_card(
            preset, name=args.name, version=str(args.version), site=args.site, spec=spec,
            in_plane_spacing_mm=(spacing[0], spacing[1]), documentation=documentation,
            dose_reduction_factor=float(config.drf) if preset.task.value == "pet-denoise" else None,
        )  # fmt: skip
        # Evaluate the exported model through the serving engine before it is placed in the repository.
        staging = Path(tmp) / "repository"
        write_entry(staging, onnx_path=onnx_path, card=card)
        evaluation = evaluate_folder(Engine(staging), args.name, args.test_data, preset)
        card["metrics"] = {
            "held_out": evaluation.to_dict(),
            "test_data": str(args.test_data.name),
            "target": TARGETS[preset.task.value],
            "target_met": meets_target(preset.task.value, evaluation.mean()),
            "convention": CONVENTIONS[preset.task.value],
        }
        held_out_set = dataset_record(args.test_data)
        if held_out_set is not None:
            card["metrics"]["test_dataset"] = held_out_set
        if not evaluation.subjects:
            raise OptionError(f"--test-data {args.test_data} holds no subject: simulate a held-out set.")
        if args.confirm_data is not None:
            confirmation = evaluate_folder(Engine(staging), args.name, args.confirm_data, preset)
            if not confirmation.subjects:
                raise OptionError(
                    f"--confirm-data {args.confirm_data} holds no subject: simulate a confirmation set."
                )
            card["metrics"]["confirmation"] = {
                **_scored(confirmation, args.confirm_data, preset.task.value),
                "use": "never used to choose between runs: scored once, at export",
            }
        version_dir = write_entry(args.repository, onnx_path=onnx_path, card=card, overwrite=args.overwrite)
    summary = {"written": str(version_dir), "parity_max_abs": report.max_abs_native, "unit": unit,
               "held_out_mean": evaluation.mean()}  # fmt: skip
    if "confirmation" in card["metrics"]:
        summary["confirmation_mean"] = card["metrics"]["confirmation"]["mean"]
    print(json.dumps(summary, indent=2))
    return 0
