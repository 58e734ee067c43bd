"""The ``translate`` and ``models`` commands, end to end through real DICOM files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from service.cli import models, translate
from service.errors import InputError, NotFoundError, OptionError, OutputError
from service.volume import Volume
from tests.inference.helpers import card, hu_to_norm, linear_model, norm_to_hu, write_model


def main(argv: list[str]) -> int:
    """Run one of our subcommands as ``service.cli.main`` would, without building the full parser
    (whose training entry points import torch)."""
    parser = argparse.ArgumentParser(prog="radtranslate")
    sub = parser.add_subparsers(required=True)
    models.register(sub)
    translate.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write_model(
        root,
        card(body_mask={"kind": "hu_threshold", "threshold_hu": -500}),
        lambda p: linear_model(p, 1, 1.0, 0.05),
    )
    return root


def test_models_list_and_show(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--models", str(repo), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["version"], r["task"]) for r in rows] == [("cbct-test", "1", "cbct-to-ct")]
    assert main(["models", "show", "cbct-test", "--models", str(repo), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == json.loads((repo / "cbct-test" / "card.json").read_text())
    with pytest.raises(NotFoundError, match="'absent'"):
        main(["models", "show", "absent", "--models", str(repo)])
    with pytest.raises(InputError, match="is not a folder"):
        main(["models", "list", "--models", str(repo / "nowhere")])


def test_translate_dicom_to_dicom(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from service.dicom.reader import read_series
    from service.dicom.writer import write_derived_series

    x = np.full((4, 12, 10), -1000.0, np.float32)
    x[:, 3:10, 2:8] = np.arange(6 * 7).reshape(7, 6) * 10.0 - 100.0
    source = Volume(x, spacing_mm=(1.0, 1.0, 2.0), origin_mm=(5.0, -3.0, 10.0))
    write_derived_series(
        source, tmp_path / "in", model_name="phantom", model_version="1", allow_new_study=True
    )
    out_dir = tmp_path / "out"
    args = [
        "translate",
        str(tmp_path / "in"),
        str(out_dir),
        "--model",
        "cbct-test",
        "--models",
        str(repo),
        "--threads",
        "1",
        "--no-progress",
    ]
    assert main(args) == 0
    assert "CPUExecutionProvider" in capsys.readouterr().out
    result = read_series(out_dir)
    expected = np.where(x > -500, norm_to_hu(hu_to_norm(x) + 0.05), -1000.0)
    np.testing.assert_allclose(result.array, expected, atol=0.51)  # int16 storage: 1 HU steps
    assert result.same_grid(source)
    with pytest.raises(OutputError, match="already exists"):
        main(args)
    assert main([*args, "--overwrite"]) == 0


def test_translate_refuses_wrong_options(repo: Path, tmp_path: Path) -> None:
    base = ["translate", str(tmp_path / "in"), str(tmp_path / "o.nii.gz"), "--models", str(repo)]
    with pytest.raises(OptionError, match="contradicts format 'mha'"):
        main([*base, "--model", "cbct-test", "--format", "mha"])
    with pytest.raises(NotFoundError, match="mr-to-ct"):
        main([*base, "--task", "mr-to-ct"])
    with pytest.raises(OptionError, match="apply to --server only"):
        main([*base, "--model", "cbct-test", "--token-file", "t"])
