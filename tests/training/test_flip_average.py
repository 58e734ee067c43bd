"""Test-time flip averaging (``export/flip_average.py``): the exported graph's output is the mean of the
generator's mirrored outputs, is mirror-equivariant, exports to ONNX with its parity, and ``radtranslate
export --flips`` serves and records it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from export.flip_average import FlipAverage, Flips, parse_flips, with_flips
from export.onnx_export import export_onnx, load_best
from service.cli.main import main
from service.errors import OptionError
from service.inference.engine import Engine
from tests.training.test_export_cli import _export, setup  # noqa: F401  (the module fixture)


def _lopsided() -> nn.Module:
    """A generator with no mirror symmetry: a 3x3 convolution with random weights plus a ramp in x."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 1, 3, padding=1)

    class Lopsided(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            ramp = torch.linspace(0.0, 1.0, x.shape[-1]).to(x.dtype)
            return torch.tanh(self.conv(x)) + ramp * x[:, 1:2]

    return Lopsided().eval()


def _input(h: int = 16, w: int = 24) -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, (2, 3, h, w)).astype(np.float32)


def _run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(module(torch.from_numpy(np.ascontiguousarray(x))).numpy())


@pytest.mark.parametrize("flips", [Flips.X, Flips.XY])
def test_the_output_is_the_mean_of_the_mirrored_outputs(flips: Flips) -> None:
    generator, x = _lopsided(), _input()
    views = [lambda a: a, lambda a: a[..., ::-1]]
    if flips is Flips.XY:
        views += [lambda a: a[..., ::-1, :], lambda a: a[..., ::-1, ::-1]]
    expected = np.mean([view(_run(generator, view(x))) for view in views], axis=0)
    got = _run(FlipAverage(generator, flips), x)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(got - _run(generator, x)).max() > 1e-2  # the generator is not symmetric: it changed


def test_the_average_is_mirror_equivariant_where_the_generator_is_not() -> None:
    generator, x = _lopsided(), _input()
    mirrored = np.ascontiguousarray(x[..., ::-1])
    assert np.abs(_run(generator, mirrored) - _run(generator, x)[..., ::-1]).max() > 1e-2
    average = FlipAverage(generator, "x")
    np.testing.assert_allclose(_run(average, mirrored), _run(average, x)[..., ::-1], atol=1e-6)
    both = FlipAverage(generator, "xy")
    np.testing.assert_allclose(_run(both, np.ascontiguousarray(x[..., ::-1, :])), _run(both, x)[..., ::-1, :],
                               atol=1e-6)  # fmt: skip


def test_none_exports_the_generator_itself_and_bad_values_name_the_choices() -> None:
    generator = _lopsided()
    assert with_flips(generator, "none") is generator
    assert parse_flips("XY") is Flips.XY and Flips.XY.passes == 4 and Flips.X.passes == 2
    with pytest.raises(OptionError, match=r"flips must be one of 'none', 'x', 'xy', got 'z'"):
        parse_flips("z")


def test_onnx_export_matches_pytorch_on_a_non_square_slice(tmp_path: Path) -> None:
    module = with_flips(_lopsided(), Flips.XY)
    path = export_onnx(module, tmp_path / "m.onnx", in_channels=3, multiple=8)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _input(24, 40)
    out = np.asarray(session.run(["output"], {"input": x})[0])
    assert out.shape == (2, 1, 24, 40)
    np.testing.assert_allclose(out, _run(module, x), atol=1e-5)


def test_export_flips_serves_the_average_and_records_it(
    setup: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repository"
    assert _export(setup, repo, "--flips", "x") == 0
    capsys.readouterr()
    card: dict[str, Any] = json.loads((repo / "pet_tiny" / "1" / "card.json").read_text())
    assert card["architecture"]["flips"] == {"mode": "x", "passes": 2}
    # The served graph is the run's generator averaged with its width mirror.
    generator, _ = load_best(setup["run"] / "best.pt")
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(
        str(repo / "pet_tiny" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    served = np.asarray(session.run(["output"], {"input": x})[0])
    expected = (_run(generator, x) + _run(generator, x[..., ::-1])[..., ::-1]) / 2
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert Engine(repo).get_model("pet_tiny").documentation["architecture"]["flips"]["passes"] == 2


def test_export_refuses_an_unknown_flip_mode(setup: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(SystemExit):
        main(["export", "--run", str(setup["run"]), "--name", "pet_tiny", "--repository", str(tmp_path / "r"),
              "--test-data", str(setup["test"]), "--flips", "z"])  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_the_export_command_offers_exactly_the_flip_modes() -> None:
    """``export.cli`` lists the modes without importing torch; they must stay those of :class:`Flips`."""
    import argparse

    from service.cli.main import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    export: argparse.ArgumentParser = commands.choices["export"]
    (action,) = [a for a in export._actions if a.dest == "flips"]
    assert list(action.choices or []) == [f.value for f in Flips]
    assert action.default == Flips.NONE.value


def test_the_choice_tool_averages_as_the_exported_graph_does(
    setup: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``tools/flip_choice.py`` mirrors whole volumes outside the graph (to compare modes before any
    export); a model exported with the same flips must serve the same output, and the tool's split must
    be the training run's (validation on the subjects ``train`` validated on)."""
    from models.simulation.loader import load_subject
    from models.training.dataset import split_indices
    from tools.flip_choice import MODES, MirrorAveragingEngine, validation_folder

    single, averaged = tmp_path / "single", tmp_path / "averaged"
    assert _export(setup, single) == 0 and _export(setup, averaged, "--flips", "xy") == 0
    capsys.readouterr()
    volume = load_subject(setup["test"] / "P010").images["pet_low_drf10"]
    served = Engine(averaged).translate(volume, model="pet_tiny").volume.array
    outside = MirrorAveragingEngine(single, MODES["xy"]).translate(volume, model="pet_tiny").volume.array
    alone = Engine(single).translate(volume, model="pet_tiny").volume.array
    assert np.abs(served - alone).max() > 1e-3  # the average is not the single pass
    np.testing.assert_allclose(outside, served, atol=1e-4)  # SUV

    into = tmp_path / "val"
    into.mkdir()
    names = validation_folder(setup["train"], "pet", seed=3, val_fraction=0.5, into=into)
    train_idx, val_idx = split_indices(2, 3, 0.5)
    assert names == [f"P{i:03d}" for i in val_idx] and len(train_idx) == 1
    assert sorted(p.name for p in into.iterdir()) == names


def test_the_choice_tool_refuses_a_model_that_already_averages(
    setup: dict[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    repo = tmp_path / "averaged"
    assert _export(setup, repo, "--flips", "x") == 0
    tool = Path(__file__).resolve().parents[2] / "tools" / "flip_choice.py"
    run = subprocess.run(
        [sys.executable, str(tool), "--model", "pet_tiny", "--repository", str(repo), "--data",
         str(setup["train"]), "--seed", "3", "--val-fraction", "0.5"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert run.returncode == 2
    assert "already averages mirrors in its graph (flips 'x'): pass the single-pass version" in run.stderr
    assert "Traceback" not in run.stderr
