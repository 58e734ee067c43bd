"""``radtranslate validate dose`` end to end on phantom CTs written as MHA / NIfTI files.

Gamma values do not depend on the kernel; the tests use the NumPy kernel because
compiling the numba one costs more than these small cases take.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from service.cli.validate_dose import register_dose
from service.errors import OptionError, OutputError
from service.imageio import write_image
from tests.dose_calc import small_phantom as sp

gamma_kernel = pytest.importorskip("service.validation.gamma_kernel", reason="no gamma module")


@pytest.fixture(autouse=True)
def numpy_gamma_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gamma_kernel, "search_numba", lambda: None)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="radtranslate validate")
    register_dose(parser.add_subparsers(dest="what", required=True))
    args = parser.parse_args(["dose", *argv])
    return int(args.func(args))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    hu = sp.phantom_hu()
    paths = {
        "ct": tmp_path / "ct.mha",
        "same": tmp_path / "sct_same.nii.gz",
        "nobone": tmp_path / "sct_nobone.mha",
    }
    write_image(sp.ct(hu), paths["ct"])
    write_image(sp.ct(hu.copy()), paths["same"])
    write_image(sp.ct(sp.with_bone(hu, 0.0)), paths["nobone"])
    return paths


def test_identical_sct_passes_and_writes_the_report(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    code = run(["--ct", str(files["ct"]), "--sct", str(files["same"]), "--field-size-mm", "80",
                "--criteria", "2%/2mm", "--fail-under", "100", "--json", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["passed"] is True
    assert report["gamma"]["results"][0]["pass_rate_percent"] == 100.0
    assert report["isocentre_dose_ct_gy"] == pytest.approx(2.0)
    assert report["isocentre_source"] == "centre of the CT body mask"
    assert report["plan"]["isocentre_mm_lps"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert [b["gantry_deg"] for b in report["plan"]["beams"]] == [0.0, 90.0, 180.0, 270.0]
    printed = capsys.readouterr().out
    assert "gamma 2%/2mm: 100.00 % pass" in printed and "not a clinical dose engine" in printed


def test_sct_without_bone_fails_the_threshold(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code = run(["--ct", str(files["ct"]), "--sct", str(files["nobone"]), "--field-size-mm", "80",
                "--isocentre", "0,0,0", "--prescription-gy", "2", "--criteria", "2%/2mm",
                "--fail-under", "99.9", "--json", str(out)])  # fmt: skip
    assert code == 1
    report = json.loads(out.read_text())
    assert report["passed"] is False
    assert report["gamma"]["results"][0]["pass_rate_percent"] < 99.9
    assert report["isocentre_dose_sct_gy"] > report["isocentre_dose_ct_gy"]
    assert report["isocentre_source"] == "--isocentre"


def test_dose_volumes_are_written_on_request(files: dict[str, Path], tmp_path: Path) -> None:
    from service.imageio import read_image

    out = tmp_path / "doses"
    report = tmp_path / "report.json"
    code = run(["--ct", str(files["ct"]), "--sct", str(files["nobone"]), "--field-size-mm", "80",
                "--criteria", "3%/3mm", "--dose-out", str(out), "--json", str(report)])  # fmt: skip
    assert code == 0
    ct_dose = read_image(out / "dose_ct.mha")
    sct_dose = read_image(out / "dose_sct.mha")
    difference = read_image(out / "dose_difference.mha")
    assert ct_dose.modality.value == "RTDOSE" and ct_dose.unit.value == "Gy"
    assert float(ct_dose.array.max()) == pytest.approx(json.loads(report.read_text())["max_dose_ct_gy"])
    np.testing.assert_allclose(difference.array, sct_dose.array - ct_dose.array, atol=1e-6)
    assert difference.array.max() > 0.01  # missing bone: more dose behind it
    with pytest.raises(OutputError, match="--dose-out"):
        run(["--ct", str(files["ct"]), "--sct", str(files["same"]), "--dose-out", str(out)])


def test_option_and_output_refusals(files: dict[str, Path], tmp_path: Path) -> None:
    base = ["--ct", str(files["ct"]), "--sct", str(files["same"])]
    with pytest.raises(OptionError, match="--isocentre must be three numbers"):
        run([*base, "--isocentre", "1,2"])
    with pytest.raises(OptionError, match="--fail-under"):
        run([*base, "--fail-under", "120"])
    with pytest.raises(OptionError, match=r"--sct .* does not exist"):
        run(["--ct", str(files["ct"]), "--sct", str(tmp_path / "missing.mha")])
    existing = tmp_path / "exists.json"
    existing.write_text("{}")
    with pytest.raises(OutputError, match="--overwrite"):
        run([*base, "--json", str(existing)])
    assert existing.read_text() == "{}"


def test_through_the_radtranslate_entry_point(files: dict[str, Path]) -> None:
    if importlib.util.find_spec("service.cli.validate") is None:
        pytest.skip("service.cli.validate (which registers 'validate dose') is not present yet")
    from service.cli.main import EXIT_INPUT, main

    argv = ["validate", "dose", "--ct", str(files["ct"]), "--sct", str(files["same"]), "--isocentre", "x"]
    assert main(argv) == EXIT_INPUT
