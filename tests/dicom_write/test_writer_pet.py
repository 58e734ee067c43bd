"""Derived PET series: SUVbw survives a write/read round trip and any QIBA reader of our tags."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from service.dicom import read_series
from service.dicom.suv import suv_parameters, suvbw_factor
from service.dicom.writer import encode_derived_series, write_derived_series
from service.errors import SUVError, VolumeError
from service.volume import Unit, Volume
from tests.dicom_write.conftest import build_pet_series
from tests.dicom_write.dciodvfy import dciodvfy_errors

MODEL: dict[str, Any] = {"model_name": "pet_lowdose", "model_version": "2"}


def _edit_series(folder: Path, **tags: str) -> None:
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for keyword, value in tags.items():
            setattr(ds, keyword, value)
        ds.save_as(path)


def _assert_suv_close(back: np.ndarray, ref: np.ndarray) -> None:
    """Within 0.1 % of the value, plus int16 quantisation (1/65534 of the slice maximum)."""
    peak = np.abs(ref).reshape(ref.shape[0], -1).max(axis=1)[:, None, None]
    assert np.all(np.abs(back - ref) <= 1e-3 * np.abs(ref) + peak / 65534.0 * 1.001)


@pytest.mark.parametrize("which", [0, 1])
def test_suv_round_trip_and_tags_recompute_the_same_factor(
    pet_paths: list[Path], tmp_path: Path, which: int
) -> None:
    build_pet_series(pet_paths[which], tmp_path / "src")
    source = read_series(tmp_path / "src")
    assert source.unit is Unit.SUVBW and source.source is not None
    written = write_derived_series(source, tmp_path / "out", **MODEL)
    datasets = [pydicom.dcmread(p) for p in written.paths]
    # A viewer applying QIBA to our tags gets the source factor.
    ours = suvbw_factor(datasets)
    assert ours == pytest.approx(source.source.suvbw_per_bqml, rel=1e-9)
    for k, ds in enumerate(datasets):
        assert ds.Units == "BQML" and ds.SOPClassUID == pydicom.uid.PositronEmissionTomographyImageStorage
        assert float(ds.RescaleIntercept) == 0.0
        assert ds.SeriesDescription == "PET radtranslate pet_lowdose v2"
        suv = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) * ours
        _assert_suv_close(suv[None], source.array[k][None].astype(np.float64))
    back = read_series(written.directory)
    assert np.abs(back.affine_lps() - source.affine_lps()).max() <= 1e-4
    _assert_suv_close(back.array.astype(np.float64), source.array.astype(np.float64))
    assert dciodvfy_errors(written.paths[0]) == []


def test_series_time_after_acquisition_keeps_the_factor(pet_paths: list[Path], tmp_path: Path) -> None:
    build_pet_series(pet_paths[0], tmp_path / "src")
    first = pydicom.dcmread(next((tmp_path / "src").glob("*.dcm")))
    acquisition = first.AcquisitionTime
    later = f"{int(acquisition[:2]) + 1:02d}{acquisition[2:]}"
    _edit_series(tmp_path / "src", SeriesTime=later)
    source = read_series(tmp_path / "src")
    assert source.source is not None
    datasets = encode_derived_series(source, **MODEL)
    params = suv_parameters(datasets)
    assert params.factor == pytest.approx(source.source.suvbw_per_bqml, rel=1e-9)
    assert datasets[0].SeriesTime[:6] == acquisition[:6]


def test_admin_decay_correction_keeps_the_factor(pet_paths: list[Path], tmp_path: Path) -> None:
    build_pet_series(pet_paths[0], tmp_path / "src")
    _edit_series(tmp_path / "src", DecayCorrection="ADMIN")
    source = read_series(tmp_path / "src")
    assert source.source is not None
    datasets = encode_derived_series(source, **MODEL)
    assert datasets[0].DecayCorrection == "ADMIN"
    assert suvbw_factor(datasets) == pytest.approx(source.source.suvbw_per_bqml, rel=1e-12)


def test_bqml_volume_is_written_as_is(pet_paths: list[Path], tmp_path: Path) -> None:
    build_pet_series(pet_paths[0], tmp_path / "src")
    source = read_series(tmp_path / "src", pet_unit=Unit.BQML)
    assert source.unit is Unit.BQML
    written = write_derived_series(source, tmp_path / "out", **MODEL)
    back = read_series(written.directory, pet_unit="Bq/ml")
    _assert_suv_close(back.array.astype(np.float64), source.array.astype(np.float64))


def test_pet_without_pet_source_is_refused(pet_paths: list[Path], tmp_path: Path) -> None:
    build_pet_series(pet_paths[0], tmp_path / "src")
    source = read_series(tmp_path / "src")
    with pytest.raises(VolumeError, match="needs its source PET series header"):
        encode_derived_series(dataclasses.replace(source, source=None), allow_new_study=True, **MODEL)
    assert source.source is not None and source.source.header is not None
    header = copy.deepcopy(source.source.header)
    del header.RadiopharmaceuticalInformationSequence
    bare = dataclasses.replace(source, source=dataclasses.replace(source.source, header=header))
    with pytest.raises(SUVError, match="must derive from a PET source series"):
        encode_derived_series(bare, **MODEL)
    no_factor = dataclasses.replace(source, source=dataclasses.replace(source.source, suvbw_per_bqml=None))
    with pytest.raises(SUVError, match="suvbw_per_bqml must be a positive factor"):
        encode_derived_series(no_factor, **MODEL)


def test_negative_and_zero_slices_encode(pet_paths: list[Path], tmp_path: Path) -> None:
    build_pet_series(pet_paths[0], tmp_path / "src", n_slices=3)
    source: Volume = read_series(tmp_path / "src")
    values = source.array.copy()
    values[0] = 0.0
    values[1] -= 0.5 * values[1].max()
    volume = source.with_array(values)
    datasets = encode_derived_series(volume, **MODEL)
    factor = suvbw_factor(datasets)
    for k, ds in enumerate(datasets):
        suv = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) * factor
        _assert_suv_close(suv[None], values[k][None].astype(np.float64))
