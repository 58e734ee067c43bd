"""translate_path with image files, and the translate command against a real local gRPC server."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from service.cli import translate
from service.errors import OptionError, OutputError
from service.inference import Engine
from service.inference.pipeline import OutputFormat, output_format_for, translate_path
from service.volume import Volume
from tests.inference.helpers import card, hu_to_norm, linear_model, norm_to_hu, write_model

A, B = 0.8, 0.1


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write_model(root, card(), lambda p: linear_model(p, 1, A, B))
    return root


@pytest.fixture
def nifti(tmp_path: Path) -> tuple[Path, Volume]:
    from service.imageio import write_image

    rng = np.random.default_rng(3)
    vol = Volume(
        rng.uniform(-1000, 2000, (3, 7, 9)).astype(np.float32),
        spacing_mm=(1.0, 1.0, 2.0),
        origin_mm=(1.0, 2.0, 3.0),
    )
    path = tmp_path / "in.nii.gz"
    write_image(vol, path)
    return path, vol


def expected(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip(norm_to_hu(A * hu_to_norm(x) + B), -1024, 3071))


@pytest.mark.parametrize("suffix", [".mha", ".nii"])
def test_image_to_image(repo: Path, tmp_path: Path, nifti: tuple[Path, Volume], suffix: str) -> None:
    from service.imageio import read_image

    path, vol = nifti
    out = tmp_path / f"out{suffix}"
    summary = translate_path(path, out, engine=Engine(repo), task="cbct-to-ct")
    assert summary.output_format is output_format_for(out, None)
    assert (summary.model, summary.version, summary.provider) == ("cbct-test", "1", "CPUExecutionProvider")
    result = read_image(out)
    assert result.same_grid(vol)
    np.testing.assert_allclose(result.array, expected(vol.array), atol=0.05)
    with pytest.raises(OutputError, match="already exists"):
        translate_path(path, out, engine=Engine(repo), task="cbct-to-ct")


def test_dicom_output_from_an_image_file_is_refused_before_work(
    repo: Path, tmp_path: Path, nifti: tuple[Path, Volume]
) -> None:
    with pytest.raises(OptionError, match="DICOM output needs a DICOM input"):
        translate_path(nifti[0], tmp_path / "series", engine=Engine(repo), task="cbct-to-ct")
    assert not (tmp_path / "series").exists()


def test_output_format_rules() -> None:
    assert output_format_for("a/b", None) is OutputFormat.DICOM
    assert output_format_for("a/b.nii.gz", None) is OutputFormat.NIFTI
    assert output_format_for("a/b.MHA", "mha") is OutputFormat.MHA
    with pytest.raises(OptionError, match="contradicts"):
        output_format_for("a/b.mha", "dicom")
    with pytest.raises(OptionError, match="output_format must be one of"):
        output_format_for("a/b", "png")


def test_translate_command_against_a_local_server(
    repo: Path, tmp_path: Path, nifti: tuple[Path, Volume]
) -> None:
    pytest.importorskip("service.rpc.server")
    from service.imageio import read_image
    from service.rpc.config import ServerConfig
    from service.rpc.server import TranslationServer

    server = TranslationServer(ServerConfig(port=0, models_dir=str(repo), log_json=False), Engine(repo))
    port = server.start()
    try:
        server.load_models()
        path, vol = nifti
        parser = argparse.ArgumentParser()
        translate.register(parser.add_subparsers())
        server_args = ["--server", f"localhost:{port}", "--no-progress"]
        for choice in (["--model", "cbct-test"], ["--task", "cbct-to-ct"]):
            out = tmp_path / f"remote{choice[0]}.nii.gz"
            args = parser.parse_args(["translate", str(path), str(out), *choice, *server_args])
            assert args.func(args) == 0
            result = read_image(out)
            assert result.same_grid(vol)
            np.testing.assert_allclose(result.array, expected(vol.array), atol=0.05)
        # DICOM in, DICOM out; a stray non-DICOM file in the folder is not sent.
        from service.dicom.reader import read_series
        from service.dicom.writer import write_derived_series

        x = np.round(vol.array)
        write_derived_series(
            vol.with_array(x),
            tmp_path / "dicom_in",
            model_name="phantom",
            model_version="1",
            allow_new_study=True,
        )
        (tmp_path / "dicom_in" / "notes.txt").write_text("not DICOM")
        args = parser.parse_args(
            [
                "translate",
                str(tmp_path / "dicom_in"),
                str(tmp_path / "dicom_out"),
                "--task",
                "cbct-to-ct",
                *server_args,
            ]
        )
        assert args.func(args) == 0
        result = read_series(tmp_path / "dicom_out")
        np.testing.assert_allclose(result.array, expected(x), atol=0.51)
    finally:
        server.stop(0)
