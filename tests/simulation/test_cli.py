"""``radtranslate simulate`` end to end through the CLI dispatcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.simulation.dataset import load_subject
from models.simulation.tissues import Tissue
from service.cli.main import EXIT_OUTPUT, main


@pytest.mark.slow
def test_simulate_two_tiny_subjects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    args = ["simulate", "--task", "mr-to-ct", "--site", "brain", "--subjects", "2", "--seed", "5"]
    args += ["--downscale", "2", "--format", "mha", "--labels", "--no-progress", str(out)]
    assert main(args) == 0
    assert "2 subjects in" in capsys.readouterr().out
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in folders] == ["1BS0000", "1BS0001"]
    for folder in folders:
        subject = load_subject(folder, "mr-to-ct")
        assert (folder / "ct.mha").is_file()
        assert subject.images["ct"].shape == (32, 64, 64)
        # the label map says where the bone is: cortical bone is dense on the CT
        assert subject.labels is not None and subject.labels.shape == subject.mask.shape
        ct = subject.images["ct"].array
        assert ct[subject.labels == Tissue.CORTICAL_BONE].mean() > 500.0
        assert 0.0 < ct[subject.labels == Tissue.WHITE_MATTER].mean() < 60.0
    # a second run into the same folder is refused, --resume completes it (nothing to do)
    assert main(args) == EXIT_OUTPUT
    assert "pass --resume" in capsys.readouterr().err
    assert main([*args[:-1], "--resume", str(out)]) == 0


def test_bad_options_exit_with_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "simulate",
        "--task",
        "pet",
        "--site",
        "pelvis",
        "--subjects",
        "0",
        "--seed",
        "1",
        str(tmp_path / "x"),
    ]
    assert main(args) == 2
    assert "subjects must be 1..100000" in capsys.readouterr().err
