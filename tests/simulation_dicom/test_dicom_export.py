"""Simulated subjects written as DICOM read back exactly and pass the DICOM validator."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.simulation.dicom_export import SimulatedStudy, write_series
from service.dicom.reader import read_series
from service.errors import VolumeError
from service.volume import Modality, Unit, Volume


def _direction() -> np.ndarray:
    a = np.deg2rad(8.0)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _volumes() -> tuple[Volume, Volume]:
    rng = np.random.default_rng(4)
    geometry: dict[str, Any] = {
        "spacing_mm": (1.5, 1.25, 2.5),
        "origin_mm": (-60.0, -80.0, 12.5),
        "direction": _direction(),
    }
    mr = Volume(
        rng.integers(0, 4000, size=(5, 12, 10)).astype(np.float32),
        modality=Modality.MR,
        unit=Unit.MR_AU,
        **geometry,
    )
    ct = Volume(
        rng.integers(-1024, 2000, size=(5, 12, 10)).astype(np.float32),
        modality=Modality.CT,
        unit=Unit.HU,
        **geometry,
    )
    return mr, ct


def test_series_round_trip_exactly_and_share_study(tmp_path: Path) -> None:
    mr, ct = _volumes()
    study = SimulatedStudy.new("SIM-0001")
    write_series(mr, tmp_path / "mr", study, series_number=1, description="SIMULATED T1w")
    write_series(ct, tmp_path / "ct", study, series_number=2, description="SIMULATED CT")
    mr_back = read_series(tmp_path / "mr")
    ct_back = read_series(tmp_path / "ct")
    for original, back in ((mr, mr_back), (ct, ct_back)):
        assert back.same_grid(original, atol_mm=1e-4)
        np.testing.assert_array_equal(back.array, original.array)
    assert mr_back.modality is Modality.MR and ct_back.modality is Modality.CT
    assert mr_back.source is not None and ct_back.source is not None
    assert mr_back.source.study_instance_uid == ct_back.source.study_instance_uid == study.study_uid
    assert mr_back.source.frame_of_reference_uid == ct_back.source.frame_of_reference_uid
    assert mr_back.source.series_instance_uid != ct_back.source.series_instance_uid


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) is not installed")
def test_written_series_pass_dciodvfy(tmp_path: Path) -> None:
    mr, ct = _volumes()
    study = SimulatedStudy.new("SIM-0002")
    for vol, name in ((mr, "mr"), (ct, "ct")):
        folder = write_series(vol, tmp_path / name, study, series_number=1, description=f"SIMULATED {name}")
        for path in sorted(folder.iterdir())[:2]:
            run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
            errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
            assert errors == [], errors


def test_out_of_range_mr_is_refused(tmp_path: Path) -> None:
    mr, _ = _volumes()
    with pytest.raises(VolumeError, match=r"\[0, 65535\] to be stored as uint16: rescale"):
        write_series(mr.with_array(mr.array - 10), tmp_path / "x", SimulatedStudy.new("S"), series_number=1,
                     description="x")  # fmt: skip
    assert not (tmp_path / "x").exists()
