"""Datasets on disk: per-subject determinism, layout, loader, resume and refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from models.simulation.anatomy import Site
from models.simulation.dataset import (
    DatasetOptions,
    Task,
    iter_dataset,
    load_subject,
    subject_name,
    subject_rng,
    write_dataset,
)
from service.errors import InputError, OptionError, OutputError


def _options(subjects: int, seed: int = 11, **kw: object) -> DatasetOptions:
    return DatasetOptions(task="mr-to-ct", site="pelvis", subjects=subjects, seed=seed, downscale=2, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim") / "two"
    write_dataset(root, _options(2))
    return root


def test_subject_rng_depends_only_on_its_key() -> None:
    a = subject_rng(1, "mr-to-ct", "brain", 3).random(4)
    assert np.array_equal(a, subject_rng(1, "mr-to-ct", "brain", 3).random(4))
    for other in (
        subject_rng(2, "mr-to-ct", "brain", 3),
        subject_rng(1, "pet", "brain", 3),
        subject_rng(1, "mr-to-ct", "pelvis", 3),
        subject_rng(1, "mr-to-ct", "brain", 4),
    ):
        assert not np.array_equal(a, other.random(4))


def test_layout_and_loader(two: Path) -> None:
    names = [subject_name("mr-to-ct", "pelvis", i) for i in range(2)]
    assert sorted(p.name for p in two.iterdir()) == sorted([*names, "dataset.json"])
    meta = json.loads((two / "dataset.json").read_text())
    assert meta["task"] == "mr-to-ct" and meta["seed"] == 11 and meta["mr_weighting"] == "t2"
    subjects = list(iter_dataset(two, "mr-to-ct"))
    assert [s.name for s in subjects] == names
    for s in subjects:
        assert set(s.images) == {"ct", "mr"}
        assert s.images["ct"].same_grid(s.images["mr"])
        assert s.mask.shape == s.images["ct"].shape and s.mask.dtype == bool
        assert 0.1 < s.mask.mean() < 0.9
        ct = s.images["ct"].array
        assert ct[~s.mask].mean() < -900 and ct[s.mask].mean() > -300
        assert s.images["mr"].modality.value == "MR"
    assert (two / names[0] / "mask.nii.gz").is_file()
    assert "ct_params" in json.loads((two / names[0] / "subject.json").read_text())


@pytest.mark.slow
def test_subject_i_is_identical_whatever_the_count_and_workers(two: Path, tmp_path: Path) -> None:
    three = tmp_path / "three"
    write_dataset(three, _options(3), workers=2)
    for i in range(2):
        a = load_subject(two / subject_name("mr-to-ct", "pelvis", i))
        b = load_subject(three / subject_name("mr-to-ct", "pelvis", i))
        for key in ("ct", "mr"):
            assert np.array_equal(a.images[key].array, b.images[key].array)
        assert np.array_equal(a.mask, b.mask)
    other = tmp_path / "other_seed"
    write_dataset(other, _options(1, seed=12))
    c = load_subject(other / subject_name("mr-to-ct", "pelvis", 0))
    a = load_subject(two / subject_name("mr-to-ct", "pelvis", 0))
    assert not np.array_equal(a.images["ct"].array, c.images["ct"].array)


def test_refuses_non_empty_output_and_resumes(two: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(two, root)
    with pytest.raises(OutputError, match="not empty: choose a new folder, or pass --resume"):
        write_dataset(root, _options(2))
    with pytest.raises(OutputError, match="other settings"):
        write_dataset(root, _options(2, seed=99), resume=True)
    victim = root / subject_name("mr-to-ct", "pelvis", 1)
    shutil.rmtree(victim)
    (root / ".1PS0001.abc.partial").mkdir()  # debris of a killed run
    write_dataset(root, _options(2), resume=True)
    assert not list(root.glob(".*.partial"))
    a = load_subject(two / victim.name)
    b = load_subject(victim)
    assert np.array_equal(a.images["mr"].array, b.images["mr"].array)


def test_loader_refusals(two: Path, tmp_path: Path) -> None:
    subject = tmp_path / "s"
    shutil.copytree(two / subject_name("mr-to-ct", "pelvis", 0), subject)
    (subject / "mr.nii.gz").unlink()
    with pytest.raises(InputError, match=r"lacks mr .* add the missing images"):
        load_subject(subject, "mr-to-ct")
    assert set(load_subject(subject).images) == {"ct"}  # no task: read what is there
    with pytest.raises(InputError, match="lacks cbct"):
        load_subject(subject, "cbct-to-ct")
    image = sitk.ReadImage(str(subject / "ct.nii.gz"))
    sitk.WriteImage(image, str(subject / "ct.mha"))
    with pytest.raises(InputError, match="holds 'ct' twice"):
        load_subject(subject)
    (subject / "ct.nii.gz").unlink()
    shifted = sitk.ReadImage(str(subject / "ct.mha"))
    shifted.SetOrigin(tuple(o + 5.0 for o in shifted.GetOrigin()))
    sitk.WriteImage(shifted, str(subject / "ct.mha"))
    with pytest.raises(InputError, match="different grids: resample"):
        load_subject(subject)
    with pytest.raises(InputError, match="does not exist"):
        load_subject(tmp_path / "nowhere")


def test_reads_real_synthrad_style_files_without_stored_modality(tmp_path: Path) -> None:
    subject = tmp_path / "1BA001"
    subject.mkdir()
    rng = np.random.default_rng(0)
    for name, values in (("ct", rng.normal(0, 100, (4, 5, 6))), ("mr", rng.uniform(0, 900, (4, 5, 6)))):
        image = sitk.GetImageFromArray(values.astype(np.int16))
        image.SetSpacing((1.0, 1.0, 2.5))
        sitk.WriteImage(image, str(subject / f"{name}.mha"))
    mask = sitk.GetImageFromArray(np.ones((4, 5, 6), np.uint8))
    mask.SetSpacing((1.0, 1.0, 2.5))
    sitk.WriteImage(mask, str(subject / "mask.nii.gz"))
    loaded = load_subject(subject, "mr-to-ct")
    assert loaded.images["ct"].unit.value == "HU" and loaded.images["mr"].unit.value == "MR_AU"
    assert loaded.mask.all()


def test_options_are_validated() -> None:
    with pytest.raises(OptionError, match="format must be one of"):
        _options(1, file_format="png")
    with pytest.raises(OptionError, match="subjects must be"):
        _options(0)
    with pytest.raises(OptionError, match="task must be one of"):
        DatasetOptions(task="ct-to-mr", site="brain", subjects=1, seed=0)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "keys"), [("cbct-to-ct", {"ct", "cbct"}), ("pet", {"pet_full", "pet_low_drf4"})]
)
def test_cbct_and_pet_tasks_write_loadable_subjects(tmp_path: Path, task: str, keys: set[str]) -> None:
    options = DatasetOptions(
        task=Task.parse(task), site=Site.BRAIN, subjects=1, seed=3, downscale=2, drfs=(4,), file_format="mha"
    )
    (folder,) = write_dataset(tmp_path / task, options)
    subject = load_subject(folder, task)
    assert set(subject.images) == keys
    if task == "pet":
        assert subject.low_dose_factors == (4,)
        full = subject.images["pet_full"].array
        assert full[subject.mask].mean() > 3 * max(float(full[~subject.mask].mean()), 0.01)
    else:
        ct, cbct = subject.images["ct"].array, subject.images["cbct"].array
        assert not np.array_equal(ct, cbct)
        assert np.corrcoef(ct[subject.mask], cbct[subject.mask])[0, 1] > 0.5


def test_iter_dataset_skips_temporary_folders_and_refuses_empty_roots(two: Path, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(two, root)
    (root / ".1PS0002.xyz.partial").mkdir()  # a subject being written right now
    assert [s.name for s in iter_dataset(root, "mr-to-ct")] == ["1PS0000", "1PS0001"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no subject folders"):
        list(iter_dataset(empty))


def test_cbct_oversample_is_validated_and_recorded_only_when_set() -> None:
    plain = DatasetOptions(task="cbct-to-ct", site="brain", subjects=1, seed=0)  # type: ignore[arg-type]
    fine = DatasetOptions(task="cbct-to-ct", site="brain", subjects=1, seed=0, cbct_oversample=2)  # type: ignore[arg-type]
    # datasets written before the option have no key, and must still resume
    assert "cbct_oversample" not in plain.describe()
    assert fine.describe()["cbct_oversample"] == 2
    with pytest.raises(OptionError, match=r"cbct_oversample must be 1\.\.4, got 5: pass 1"):
        DatasetOptions(task="cbct-to-ct", site="brain", subjects=1, seed=0, cbct_oversample=5)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match=r"cbct_oversample must be 1\.\.4, got 1\.5"):
        DatasetOptions(task=Task.CBCT_TO_CT, site=Site.BRAIN, subjects=1, seed=0, cbct_oversample=1.5)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="cbct_oversample applies to task cbct-to-ct only"):
        _options(1, cbct_oversample=2)


@pytest.mark.slow
def test_cbct_oversample_sharpens_the_same_subject(tmp_path: Path) -> None:
    """Same subject, CT and protocol draw: the finer CBCT is closer to the CT, and resume refuses the mix."""

    def one(k: int) -> tuple[Path, dict[str, object]]:
        options = DatasetOptions(
            task="cbct-to-ct",  # type: ignore[arg-type]
            site="brain",  # type: ignore[arg-type]
            subjects=1,
            seed=5,
            downscale=2,
            cbct_oversample=k,
        )
        (folder,) = write_dataset(tmp_path / f"k{k}", options)
        return folder, json.loads((folder / "subject.json").read_text())

    (f1, m1), (f2, m2) = one(1), one(2)
    s1, s2 = load_subject(f1, "cbct-to-ct"), load_subject(f2, "cbct-to-ct")
    assert np.array_equal(s1.images["ct"].array, s2.images["ct"].array)
    p1, p2 = dict(m1["cbct_params"]), dict(m2["cbct_params"])  # type: ignore[call-overload]
    assert p1.pop("det_spacing_mm") is None and p1.pop("recon_oversample") == 1
    assert p2.pop("det_spacing_mm") == pytest.approx(s1.images["ct"].spacing_mm[0] / 2)
    assert p2.pop("recon_oversample") == 2
    assert p1 == p2  # the same protocol draw
    ct, mask = s1.images["ct"].array, s1.mask
    assert (
        np.corrcoef(ct[mask], s2.images["cbct"].array[mask])[0, 1]
        > np.corrcoef(ct[mask], s1.images["cbct"].array[mask])[0, 1]
    )
    with pytest.raises(OutputError, match="other settings"):
        write_dataset(
            tmp_path / "k1",
            DatasetOptions(
                task="cbct-to-ct",  # type: ignore[arg-type]
                site="brain",  # type: ignore[arg-type]
                subjects=1,
                seed=5,
                downscale=2,
                cbct_oversample=2,
            ),
            resume=True,
        )
