"""``radtranslate validate image|gamma`` end to end, with JSON and HTML outputs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from service.cli.main import EXIT_CHECK_FAILED, EXIT_OK, main
from service.validation.dose_io import read_dose
from service.validation.report import input_digest
from service.volume import Volume

imageio = pytest.importorskip("service.imageio", reason="service.imageio not available")
pytest.importorskip("matplotlib", reason="matplotlib is needed for reports")

RTDOSE = str(get_testdata_file("rtdose.dcm", download=False))


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_gamma_passes_and_writes_json_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_html = tmp_path / "g.json", tmp_path / "g.html"
    argv = ["validate", "gamma", "--reference", RTDOSE, "--evaluated", RTDOSE, "--prescribed-dose-gy", "2"]
    argv += [
        "--criteria",
        "3%/2mm,2%/2mm",
        "--fail-under",
        "95",
        "--json",
        str(out_json),
        "--report",
        str(out_html),
    ]
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "3%/2mm" in printed and "100.00" in printed
    payload = json.loads(out_json.read_text())
    assert [r["pass_rate_percent"] for r in payload["results"]] == [100.0, 100.0]
    assert payload["inputs"]["reference"] == input_digest(RTDOSE)
    page = out_html.read_text()
    assert input_digest(RTDOSE) in page and "reference dose maximum" in page
    images = _pngs(page)
    assert len(images) == 2 + 2 * 2  # dose slices + profiles, then map + histogram per criterion
    assert all(img.startswith(b"\x89PNG") for img in images)
    # Outputs are not silently replaced.
    assert main(argv) != EXIT_OK


def test_gamma_fail_under_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = read_dose(RTDOSE, prescribed_dose_gy=2.0)
    worse = imageio.write_image(ref.with_array(ref.array * 1.05), tmp_path / "worse.nii.gz")
    argv = [
        "validate",
        "gamma",
        "--reference",
        RTDOSE,
        "--evaluated",
        str(worse),
        "--prescribed-dose-gy",
        "2",
    ]
    argv += ["--criteria", "2%/1mm", "--fail-under", "95", "--json", str(tmp_path / "g.json")]
    assert main(argv) == EXIT_CHECK_FAILED
    assert "FAILED" in capsys.readouterr().err
    payload = json.loads((tmp_path / "g.json").read_text())
    assert payload["failed"] == ["2%/1mm"] and payload["results"][0]["pass_rate_percent"] < 95


def test_gamma_refuses_relative_dose_without_prescription(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "gamma", "--reference", RTDOSE, "--evaluated", RTDOSE]) == 2
    assert "prescribed" in capsys.readouterr().err


def _phantom_ct() -> Volume:
    _, y, x = np.meshgrid(np.arange(12), np.arange(40), np.arange(44), indexing="ij")
    body = ((y - 20) / 15.0) ** 2 + ((x - 22) / 18.0) ** 2 < 1
    array = np.where(body, 30.0, -1000.0)
    array[body & ((y - 20) ** 2 + (x - 28) ** 2 < 16)] = 800.0
    return Volume(array=array, spacing_mm=(1.0, 1.0, 2.5), origin_mm=(-20.0, -20.0, 0.0))


def test_image_metrics_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ct = _phantom_ct()
    ref = imageio.write_image(ct, tmp_path / "ct.nii.gz")
    cand = imageio.write_image(ct.with_array(ct.array + 12.0), tmp_path / "sct.mha")
    out_json, out_html = tmp_path / "m.json", tmp_path / "m.html"
    argv = ["validate", "image", "--reference", str(ref), "--candidate", str(cand)]
    assert main([*argv, "--json", str(out_json), "--report", str(out_html)]) == EXIT_OK
    metrics = json.loads(out_json.read_text())["metrics"]
    assert metrics["mae_hu"] == pytest.approx(12.0, abs=1e-3) and metrics["me_hu"] == pytest.approx(
        12.0, abs=1e-3
    )
    assert metrics["mask_source"] == "automatic"
    assert "MAE (HU)" in capsys.readouterr().out
    page = out_html.read_text()
    assert "image centre" in page and len(_pngs(page)) == 4
    mask = imageio.write_image(ct.with_array((ct.array > 500).astype(np.float32)), tmp_path / "mask.nrrd")
    assert main([*argv, "--mask", str(mask), "--json", str(tmp_path / "m2.json")]) == EXIT_OK
    masked = json.loads((tmp_path / "m2.json").read_text())["metrics"]
    assert masked["mask_source"] == "given" and masked["voxels_band"]["bone"] == masked["mask_voxels"]


def test_identical_images_give_strict_json(tmp_path: Path) -> None:
    ct = _phantom_ct()
    ref = imageio.write_image(ct, tmp_path / "ct.nii.gz")
    out = tmp_path / "m.json"
    argv = ["validate", "image", "--reference", str(ref), "--candidate", str(ref), "--json", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["metrics"]["psnr_db"] == "inf"


def test_report_planes_are_drawn_to_physical_proportions() -> None:
    from service.validation.report import plane_aspects

    # 1 x 1 mm pixels, 3 mm slices: coronal and sagittal pixels are three times as tall as wide.
    assert plane_aspects((1.0, 1.0, 3.0)) == (1.0, 3.0, 3.0)
    # Anisotropic in plane: axial rows (y) 2 mm over columns (x) 0.5 mm; sagittal columns are y.
    assert plane_aspects((0.5, 2.0, 4.0)) == (4.0, 8.0, 2.0)
