"""``radtranslate convert``: DICOM to image, image to image, and its refusals (exit codes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from service.cli.main import EXIT_INPUT, EXIT_OUTPUT, main
from service.dicom import read_series
from service.imageio import read_image, write_image
from service.volume import Modality, Unit
from tests.dicom_write.conftest import build_ct_series, build_pet_series

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"


@pytest.fixture
def ct_dicom(tmp_path: Path) -> Path:
    src = get_testdata_file("CT_small.dcm", download=False)
    assert src is not None
    build_ct_series(Path(src), tmp_path / "dicom")
    return tmp_path / "dicom"


def test_dicom_folder_to_nifti_and_on_to_mhd(
    ct_dicom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nifti = tmp_path / "out" / "ct.nii.gz"
    assert main(["convert", str(ct_dicom), str(nifti)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {nifti}" in printed and "CT in HU" in printed
    volume = read_series(ct_dicom)
    back = read_image(nifti)
    np.testing.assert_array_equal(back.array, volume.array)
    assert np.abs(back.affine_lps() - volume.affine_lps()).max() <= 1e-4
    mhd = tmp_path / "out" / "ct.mhd"
    assert main(["convert", str(nifti), str(mhd)]) == 0
    assert "ct.raw" in capsys.readouterr().out
    np.testing.assert_array_equal(read_image(mhd).array, volume.array)


def test_existing_output_gives_output_exit_code(ct_dicom: Path, tmp_path: Path) -> None:
    target = tmp_path / "ct.nrrd"
    assert main(["convert", str(ct_dicom), str(target)]) == 0
    assert main(["convert", str(ct_dicom), str(target)]) == EXIT_OUTPUT
    assert main(["convert", str(ct_dicom), str(target), "--overwrite"]) == 0


def test_refusals_give_input_exit_code_with_the_fix(
    ct_dicom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", str(ct_dicom), str(tmp_path / "ct.tiff")]) == EXIT_INPUT
    assert "use one of .nii, .nii.gz, .mha, .mhd, .nrrd" in capsys.readouterr().err
    assert main(["convert", str(ct_dicom), str(tmp_path / "ct.mha"), "--unit", "Bq/ml"]) == EXIT_INPUT
    assert "omit --unit" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "absent"), str(tmp_path / "x.mha")]) == EXIT_INPUT
    assert "does not exist" in capsys.readouterr().err
    image = write_image(read_series(ct_dicom), tmp_path / "ct.mha")
    assert main(["convert", str(image), str(tmp_path / "y.nii"), "--series-uid", "1.2.3"]) == EXIT_INPUT
    assert "omit --series-uid" in capsys.readouterr().err
    assert main(["convert", str(image), str(tmp_path / "y.nii"), "--modality", "MR"]) == EXIT_INPUT
    assert "stores 'CT'" in capsys.readouterr().err
    assert not (tmp_path / "y.nii").exists() and not (tmp_path / "ct.tiff").exists()


def test_pet_dicom_in_bqml_and_suv(tmp_path: Path) -> None:
    pet = sorted((REAL / "pet").glob("*.dcm")) if REAL.is_dir() else []
    if not pet:
        pytest.skip(f"real PET slices in {REAL / 'pet'} are absent")
    build_pet_series(pet[0], tmp_path / "pet")
    assert main(["convert", str(tmp_path / "pet"), str(tmp_path / "suv.nrrd")]) == 0
    assert main(["convert", str(tmp_path / "pet"), str(tmp_path / "bq.nrrd"), "--unit", "Bq/ml"]) == 0
    suv, bq = read_image(tmp_path / "suv.nrrd"), read_image(tmp_path / "bq.nrrd")
    assert (suv.modality, suv.unit, bq.unit) == (Modality.PT, Unit.SUVBW, Unit.BQML)
    factor = read_series(tmp_path / "pet").source.suvbw_per_bqml  # type: ignore[union-attr]
    assert factor is not None
    np.testing.assert_allclose(suv.array, bq.array * factor, rtol=1e-5, atol=1e-6)


def test_single_multiframe_dicom_file_converts(tmp_path: Path) -> None:
    path = get_testdata_file("eCT_Supplemental.dcm", download=False)
    assert path is not None
    target = tmp_path / "ect.mha"
    assert main(["convert", str(path), str(target), "--modality", "CT"]) == 0
    back = read_image(target)
    assert back.shape[0] == 2 and (back.modality, back.unit) == (Modality.CT, Unit.HU)
