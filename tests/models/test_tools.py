"""The error-analysis tools (``tools/*_error_analysis.py``) on one simulated held-out subject each.

The tools print the figures docs/training.md quotes; these tests recompute some of them from the files
and the serving engine, and check that the tools refuse what they cannot analyse.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export.evaluate import label_biases
from models.simulation.anatomy import Site
from models.simulation.dataset import LESION_LABEL_BASE, DatasetOptions, Task, write_dataset
from models.simulation.loader import load_subject
from models.simulation.tissues import Tissue
from service.imageio import read_image, write_image
from service.inference.engine import Engine
from service.inference.repository import default_repository_path

ROOT = Path(__file__).resolve().parents[2]
PET_MODEL = "pet_denoise_brain_drf10"
CT_MODEL = "cbct_to_ct_brain"


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def pet_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tools") / "pet"
    options = DatasetOptions(
        task=Task.PET, site=Site.BRAIN, subjects=1, seed=1001, drfs=(10,), write_labels=True
    )
    write_dataset(root, options)
    return root


@pytest.fixture(scope="module")
def cbct_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tools") / "cbct"
    write_dataset(root, DatasetOptions(task=Task.CBCT_TO_CT, site=Site.BRAIN, subjects=1, seed=1001))
    return root


@pytest.mark.slow
def test_pet_error_analysis_figures_match_a_recomputation(pet_set: Path) -> None:
    done = _tool("pet_error_analysis.py", "--model", PET_MODEL, "--data", str(pet_set), "--subjects", "5")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert ", 1 subjects, body mask" in out  # the folder holds one subject, not --subjects
    row = r"^(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+) %\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
    rows = {m.group(1): [float(x) for x in m.group(2, 3, 4, 5, 6, 7)] for m in re.finditer(row, out, re.M)}
    assert {"grey_matter", "white_matter", "lesions"} <= rows.keys()
    assert sum(r[2] for r in rows.values()) == pytest.approx(100.0, abs=0.1 * len(rows))

    subject = load_subject(next(p for p in pet_set.iterdir() if p.is_dir()), "pet")
    assert subject.labels is not None
    full, low = subject.images["pet_full"].array, subject.images["pet_low_drf10"].array
    model = Engine(default_repository_path()).translate(subject.images["pet_low_drf10"], model=PET_MODEL)
    out_suv = model.volume.array.astype(np.float64)
    grey = subject.mask & (subject.labels == Tissue.GREY_MATTER)
    voxels, _, _, mse_model, _, mse_low = rows["grey_matter"]
    assert voxels == grey.sum()
    assert mse_low == pytest.approx(float(((low - full)[grey] ** 2).mean()), abs=1e-4)
    assert mse_model == pytest.approx(float(((out_suv - full)[grey] ** 2).mean()), abs=1e-4)

    # The signed lesion mean is the card's lesion figure with its sign: same lesions, same maxima.
    signed = float(re.search(r"mean of 1 subjects' means: ([+-][\d.]+) %", out).group(1))  # type: ignore[union-attr]
    ids = [v for v in np.unique(subject.labels) if v >= LESION_LABEL_BASE]
    biases = [100 * (out_suv[subject.labels == v].max() / full[subject.labels == v].max() - 1) for v in ids]
    assert len(ids) > 0
    assert signed == pytest.approx(np.mean(biases), abs=0.006)
    per_lesion = [float(x) for x in re.findall(r"bias vs full ([+-][\d.]+) %", out)]
    assert per_lesion == pytest.approx(biases, abs=0.06)
    card_style = label_biases(full, out_suv, subject.labels)["lesion_suvmax_bias_mean_abs_percent"]
    assert card_style == pytest.approx(np.mean(np.abs(biases)), abs=1e-6)


def test_pet_error_analysis_refuses_a_folder_it_cannot_re_simulate(pet_set: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "pet"
    shutil.copytree(pet_set, tampered)
    folder = next(p for p in tampered.iterdir() if p.is_dir())
    full = read_image(folder / "pet_full.nii.gz")
    write_image(full.with_array(full.array * 1.01), folder / "pet_full.nii.gz", overwrite=True)
    done = _tool("pet_error_analysis.py", "--model", PET_MODEL, "--data", str(tampered))
    assert done.returncode == 2
    assert f"subject {folder.name!r}: re-simulating index 0 does not give its pet_full" in done.stderr

    meta = json.loads((tampered / "dataset.json").read_text())
    (tampered / "dataset.json").write_text(json.dumps({**meta, "labels": False}))
    done = _tool("pet_error_analysis.py", "--model", PET_MODEL, "--data", str(tampered))
    assert done.returncode == 2
    assert "is not a simulated PET set with labels and DRF 10" in done.stderr

    done = _tool("pet_error_analysis.py", "--model", CT_MODEL, "--data", str(pet_set))
    assert done.returncode == 2
    assert f"--model {CT_MODEL!r} is a cbct-to-ct model: pass a low-dose PET model" in done.stderr


@pytest.mark.slow
def test_ct_error_analysis_figures_match_a_recomputation(cbct_set: Path, pet_set: Path) -> None:
    done = _tool("ct_error_analysis.py", "--model", CT_MODEL, "--data", str(cbct_set), "--subjects", "1")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.count("\n") == 0 and line.startswith("2BS0000: detail SD reference ")
    assert line.endswith("best shift (0, 0) px")  # the simulator aligns the CBCT with its CT

    subject = load_subject(next(p for p in cbct_set.iterdir() if p.is_dir()), "cbct-to-ct")
    ct, cbct = subject.images["ct"].array, subject.images["cbct"].array
    unblurred = float(np.abs(cbct - ct)[subject.mask].mean())
    found = re.search(r"input-vs-CT MAE (\d+) HU unblurred, (\d+) HU blurred", line)
    assert found is not None
    assert int(found.group(1)) == round(unblurred)
    assert int(found.group(2)) < int(found.group(1))  # the CBCT is blurrier than the CT

    done = _tool("ct_error_analysis.py", "--model", PET_MODEL, "--data", str(pet_set))
    assert done.returncode == 2
    assert f"--model {PET_MODEL!r} translates to PT, not CT: pass a CT model" in done.stderr


def test_the_tools_answer_bad_arguments_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    cases = [
        ("pet_error_analysis.py", ["--model", PET_MODEL, "--data", str(missing)], "has no dataset.json"),
        ("ct_error_analysis.py", ["--model", CT_MODEL, "--data", str(missing)], "does not exist: check"),
        ("pet_error_analysis.py", ["--model", "no_such_model", "--data", str(missing)], "no_such_model"),
        ("ct_error_analysis.py", ["--model", "no_such_model", "--data", str(missing)], "no_such_model"),
    ]
    for tool in ("pet_error_analysis.py", "ct_error_analysis.py"):
        model = PET_MODEL if tool.startswith("pet") else CT_MODEL
        args = ["--model", model, "--data", str(tmp_path), "--subjects", "0"]
        cases.append((tool, args, "--subjects must be at least 1, got 0"))
    for tool, args, message in cases:
        done = _tool(tool, *args)
        assert done.returncode == 2, (tool, args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (tool, args, done.stderr)
