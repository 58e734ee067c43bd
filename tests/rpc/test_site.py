"""Choosing among a task's models by anatomical site: over gRPC (header.site) and from the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from service.errors import InputError, NotFoundError, OptionError
from service.imageio import read_image, write_image
from service.inference.engine import Engine, EngineConfig
from service.rpc.client import TranslationClient
from service.rpc.config import ServerConfig
from service.rpc.remote import RemoteInputError, RemoteNotFoundError
from service.rpc.server import TranslationServer
from tests.inference.helpers import linear_model, write_model
from tests.inference.test_cli import main

from .conftest import card, volume_ct

#: Two MR->CT models that differ by site and by what they do (1x and 2x the input), so the output
#: shows which one ran.
SCALES = {"brain": 1.0, "pelvis": 2.0}


@pytest.fixture(scope="module")
def site_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site_models")
    for site, scale in SCALES.items():
        write_model(
            root,
            {**card(f"sct-{site}", "mr-to-ct"), "site": site},
            partial(linear_model, channels=1, a=scale, b=0.0),
        )
    return root


@pytest.fixture(scope="module")
def target(site_repository: Path) -> Iterator[str]:
    config = ServerConfig(port=0, models_dir=str(site_repository), grace_s=1.0)
    engine = Engine(site_repository, EngineConfig(providers=("CPUExecutionProvider",), intra_op_threads=1))
    server = TranslationServer(config, engine)
    port = server.start()
    server.load_models()
    yield f"{server.host}:{port}"
    server.stop(0.5)


def mr_volume() -> object:
    ct = volume_ct()
    return ct.with_array(np.abs(ct.array), modality="MR", unit="MR_AU")


def test_header_site_chooses_the_model_and_cards_carry_their_site(target: str) -> None:
    with TranslationClient(target) as client:
        cards = {c.name: c.site for c in client.list_models()}
        pelvis = client.translate_volume(mr_volume(), task="mr-to-ct", site="pelvis")  # type: ignore[arg-type]
        brain = client.translate_volume(mr_volume(), task="MR_TO_CT", site="Brain")  # type: ignore[arg-type]
        named = client.translate_volume(mr_volume(), model="sct-pelvis")  # type: ignore[arg-type]
    assert cards == {"sct-brain": "brain", "sct-pelvis": "pelvis"}
    assert (pelvis.model, brain.model) == ("sct-pelvis", "sct-brain")
    assert pelvis.volume is not None and brain.volume is not None and named.volume is not None
    np.testing.assert_array_equal(pelvis.volume.array, named.volume.array)
    assert np.mean(pelvis.volume.array != brain.volume.array) > 0.5  # the other model's output differs


def test_ambiguous_task_and_wrong_site_are_refused_with_the_fix(target: str) -> None:
    with TranslationClient(target) as client:
        with pytest.raises(RemoteInputError, match=r"pass --site \(brain, pelvis\) or --model NAME"):
            client.translate_volume(mr_volume(), task="mr-to-ct")  # type: ignore[arg-type]
        with pytest.raises(RemoteInputError, match="'sct-brain' was trained for site brain, not pelvis"):
            client.translate_volume(mr_volume(), model="sct-brain", site="pelvis")  # type: ignore[arg-type]
        with pytest.raises(RemoteInputError, match="site must be one of brain, pelvis, any, got 'thorax'"):
            client.translate_volume(mr_volume(), task="mr-to-ct", site="thorax")  # type: ignore[arg-type]
        with pytest.raises(RemoteNotFoundError, match="does task cbct-to-ct at site pelvis"):
            client.translate_volume(volume_ct(), task="cbct-to-ct", site="pelvis")


def _mr_file(tmp_path: Path) -> Path:
    path = tmp_path / "mr.nii.gz"
    write_image(mr_volume(), path)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize("remote", [False, True], ids=["local", "server"])
def test_cli_site_chooses_locally_and_on_a_server(
    remote: bool, site_repository: Path, target: str, tmp_path: Path
) -> None:
    where = ["--server", target] if remote else ["--models", str(site_repository)]
    source = _mr_file(tmp_path)
    out = tmp_path / "pelvis.nii.gz"
    pelvis = ["--task", "mr-to-ct", "--site", "pelvis", "--no-progress"]
    assert main(["translate", str(source), str(out), *pelvis, *where]) == 0
    named = tmp_path / "named.nii.gz"
    assert main(["translate", str(source), str(named), "--model", "sct-pelvis", "--no-progress", *where]) == 0
    other = tmp_path / "brain.nii.gz"
    assert main(["translate", str(source), str(other), "--model", "sct-brain", "--no-progress", *where]) == 0
    np.testing.assert_array_equal(read_image(out).array, read_image(named).array)
    assert np.mean(read_image(out).array != read_image(other).array) > 0.5
    error = OptionError if remote else InputError
    with pytest.raises(error, match="--site"):
        main(
            [
                "translate",
                str(source),
                str(tmp_path / "x.nii.gz"),
                "--task",
                "mr-to-ct",
                "--no-progress",
                *where,
            ]
        )
    with pytest.raises((OptionError, InputError), match="trained for site brain, not pelvis"):
        wrong = ["--model", "sct-brain", "--site", "pelvis", "--no-progress"]
        main(["translate", str(source), str(tmp_path / "y.nii.gz"), *wrong, *where])
    with pytest.raises((NotFoundError, OptionError), match="at site pelvis"):
        absent = ["--task", "cbct-to-ct", "--site", "pelvis", "--no-progress"]
        main(["translate", str(source), str(tmp_path / "z.nii.gz"), *absent, *where])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "brain.nii.gz",
        "mr.nii.gz",
        "named.nii.gz",
        "pelvis.nii.gz",
    ]
