"""The main job (README's first command): the bundled example translated and validated end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli.main import main
from service.dicom.reader import read_series
from service.imageio import read_image
from service.inference.repository import default_repository_path
from service.validation.metrics import image_metrics

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "brain-sim-9001"


@pytest.mark.slow
def test_example_translates_writes_a_ct_series_and_reports_its_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not default_repository_path().is_dir():
        pytest.fail("the shipped model repository is missing: the example cannot run")
    code = main(["example", "--out", str(tmp_path / "out"), "--no-dose"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "MAE" in printed and "not for clinical use" in printed
    sct = read_series(tmp_path / "out" / "sct")
    ct = read_series(EXAMPLE / "ct")
    assert sct.modality.value == "CT" and sct.same_grid(ct, atol_mm=1e-3)
    assert sct.source is not None and ct.source is not None
    assert sct.source.frame_of_reference_uid == ct.source.frame_of_reference_uid
    assert sct.source.study_instance_uid == ct.source.study_instance_uid
    assert sct.source.series_instance_uid != ct.source.series_instance_uid
    result = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert result["model"] == "mr_to_ct_brain"  # the brain model, whatever other MR models are shipped
    reported = result["image_metrics"]
    recomputed = image_metrics(ct, sct, mask=read_image(EXAMPLE / "mask.nii.gz")).to_dict()
    assert reported["mae_hu"] == pytest.approx(recomputed["mae_hu"], abs=1e-6)
    assert reported["ssim"] == pytest.approx(recomputed["ssim"], abs=1e-9)


@pytest.mark.parametrize("model", ["mr_to_ct_pelvis", "cbct_to_ct_brain"])
def test_example_refuses_a_model_for_another_site_or_task(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.cli.main import EXIT_INPUT

    assert main(["example", "--out", str(tmp_path / "out"), "--model", model, "--no-dose"]) == EXIT_INPUT
    assert f"--model '{model}' does " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
