"""NIfTI/MHA/MHD/NRRD: geometry in LPS, stored modality and unit, refusals, atomic output."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

from service.dicom import read_series
from service.errors import ImageFormatError, OutputError
from service.imageio import SUPPORTED_EXTENSIONS, read_image, write_image
from service.volume import Modality, Unit, Volume

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
# NIfTI stores its affine in float32: < 3e-5 mm within a metre of the origin.
NIFTI_TOL_MM = 1e-4


def _oblique_volume() -> Volume:
    rng = np.random.default_rng(7)
    angle = np.deg2rad(17.0)
    rot = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    return Volume(
        array=rng.normal(0.0, 300.0, size=(4, 6, 5)).astype(np.float32),
        spacing_mm=(0.9, 1.1, 2.5),
        origin_mm=(-120.25, 33.5, -410.75),
        direction=rot,
        modality=Modality.CT,
        unit=Unit.HU,
    )


@pytest.mark.parametrize("ext", SUPPORTED_EXTENSIONS)
def test_round_trip_keeps_values_geometry_modality_and_unit(tmp_path: Path, ext: str) -> None:
    volume = _oblique_volume()
    path = write_image(volume, tmp_path / f"vol{ext}")
    assert path.is_file()
    back = read_image(path)
    np.testing.assert_array_equal(back.array, volume.array)
    tol = NIFTI_TOL_MM if ext.startswith(".nii") else 1e-9
    assert np.abs(back.affine_lps() - volume.affine_lps()).max() <= tol
    assert back.modality is Modality.CT and back.unit is Unit.HU
    assert back.source is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"vol{ext}"] + (["vol.raw"] if ext == ".mhd" else [])
    )


@pytest.mark.parametrize(
    ("modality", "unit"), [("PT", "Bq/ml"), ("PT", "SUVbw"), ("MR", "MR_AU"), ("RTDOSE", "Gy")]
)
def test_each_modality_and_unit_is_stored(tmp_path: Path, modality: str, unit: str) -> None:
    volume = _oblique_volume()
    volume = volume.with_array(np.abs(volume.array), modality=modality, unit=unit)
    for ext in (".nii.gz", ".nrrd"):
        back = read_image(write_image(volume, tmp_path / f"v{ext}"))
        assert (back.modality, back.unit) == (volume.modality, volume.unit)


@pytest.mark.slow
def test_dicom_to_nifti_keeps_geometry_and_affine_is_lps_with_x_y_negated(tmp_path: Path) -> None:
    if not REAL.is_dir():
        pytest.skip(f"real data folder {REAL} is absent (shared/data/real next to the repository)")
    volume = read_series(REAL / "ct-cort-liver")
    path = write_image(volume, tmp_path / "ct.nii")
    back = read_image(path)
    assert back.shape == volume.shape
    assert np.abs(back.affine_lps() - volume.affine_lps()).max() <= NIFTI_TOL_MM
    np.testing.assert_array_equal(back.array, volume.array)
    image = nib.load(path)
    assert isinstance(image, nib.Nifti1Image)
    assert image.header["descrip"].item() == b"radtranslate modality=CT unit=HU"
    ras = np.asarray(image.affine)
    # nibabel indexes (i, j, k) like ITK; the affine is RAS = diag(-1, -1, 1) @ LPS.
    expected = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.affine_lps()
    assert np.abs(ras - expected).max() <= NIFTI_TOL_MM
    # nibabel's array is (x, y, z): the transpose of ours.
    np.testing.assert_array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), volume.array)


def test_foreign_file_needs_modality_and_unit(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.float32))
    for ext in (".nii", ".mha"):
        path = tmp_path / f"foreign{ext}"
        sitk.WriteImage(image, str(path))
        with pytest.raises(ImageFormatError, match=r"does not store its modality.*pass modality="):
            read_image(path)
        with pytest.raises(ImageFormatError, match=r"does not store its unit.*pass unit="):
            read_image(path, modality="CT")
        given = read_image(path, modality="MR", unit="MR_AU")
        assert (given.modality, given.unit) == (Modality.MR, Unit.MR_AU)


def test_given_values_must_agree_with_stored_ones(tmp_path: Path) -> None:
    path = write_image(_oblique_volume(), tmp_path / "ct.nii.gz")
    assert read_image(path, modality="ct", unit="HU").modality is Modality.CT
    with pytest.raises(
        ImageFormatError, match=r"modality 'MR' was given but .* stores 'CT'.*omit --modality"
    ):
        read_image(path, modality="MR")
    mha = write_image(_oblique_volume(), tmp_path / "ct.mha")
    with pytest.raises(ImageFormatError, match=r"unit 'Gy' was given but .* stores 'HU'"):
        read_image(mha, unit="Gy")


def test_four_d_and_vector_images_are_refused(tmp_path: Path) -> None:
    four_d = sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), np.float32), isVector=False)
    sitk.WriteImage(four_d, str(tmp_path / "4d.nii.gz"))
    with pytest.raises(ImageFormatError, match=r"4D image with 1 component.*split 4D"):
        read_image(tmp_path / "4d.nii.gz", modality="CT", unit="HU")
    vector = sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.float32), isVector=True)
    sitk.WriteImage(vector, str(tmp_path / "vec.mha"))
    with pytest.raises(ImageFormatError, match=r"3D image with 3 component"):
        read_image(tmp_path / "vec.mha", modality="CT", unit="HU")


def test_unknown_extension_lists_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match=r"\.nii, \.nii\.gz, \.mha, \.mhd, \.nrrd"):
        write_image(_oblique_volume(), tmp_path / "vol.tiff")
    with pytest.raises(ImageFormatError, match="unsupported extension"):
        read_image(tmp_path / "vol.img")
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="does not exist"):
        read_image(tmp_path / "absent.nii.gz", modality="CT", unit="HU")
    broken = tmp_path / "broken.nrrd"
    broken.write_bytes(b"NRRD0004\ntype: float\n")
    with pytest.raises(ImageFormatError, match=r"cannot be read as \.nrrd"):
        read_image(broken, modality="CT", unit="HU")


@pytest.mark.parametrize("ext", [".nii.gz", ".mhd"])
def test_existing_output_needs_overwrite(tmp_path: Path, ext: str) -> None:
    volume = _oblique_volume()
    path = write_image(volume, tmp_path / f"v{ext}")
    with pytest.raises(OutputError, match="overwrite"):
        write_image(volume.with_array(volume.array + 1), path)
    np.testing.assert_array_equal(read_image(path).array, volume.array)
    write_image(volume.with_array(volume.array + 1), path, overwrite=True)
    np.testing.assert_array_equal(read_image(path).array, volume.array + 1)
    leftovers = [p.name for p in tmp_path.iterdir() if "partial" in p.name]
    assert leftovers == []


def test_pydicom_ct_via_mha_keeps_hu(tmp_path: Path) -> None:
    from tests.dicom_write.conftest import build_ct_series

    src = get_testdata_file("CT_small.dcm", download=False)
    assert src is not None
    build_ct_series(Path(src), tmp_path / "dicom")
    volume = read_series(tmp_path / "dicom")
    back = read_image(write_image(volume, tmp_path / "ct.mha"))
    assert back.same_grid(volume, atol_mm=1e-6)
    np.testing.assert_array_equal(back.array, volume.array)
