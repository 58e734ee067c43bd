"""A series whose Body Part Examined lies outside the model's site is translated with a warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file

from service.inference import Engine, parse_card
from service.inference.body_part import site_mismatch
from service.inference.pipeline import translate_path
from tests.inference.helpers import card, linear_model, write_model
from tests.rpc.conftest import ct_series

REAL_PET = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "pet" / "acrin-flt-breast-a.dcm"
)


def header(value: str | None) -> Dataset:
    ds = Dataset()
    if value is not None:
        ds.BodyPartExamined = value
    return ds


@pytest.mark.parametrize(
    ("site", "value", "warned"),
    [
        ("brain", "HEAD", False),
        ("brain", "brain ", False),  # case and padding do not matter
        ("brain", "PELVIS", True),
        ("brain", "CHEST", True),
        ("pelvis", "PROSTATE", False),
        ("pelvis", "SKULL", True),
        ("pelvis", None, False),  # absent: nothing to compare
        ("pelvis", "", False),
        ("pelvis", "HEADNECK", False),  # not a term known to lie inside or outside a site
        ("pelvis", "Kopf", False),  # free text is not guessed at
        ("any", "CHEST", False),  # a model for any site
    ],
)
def test_mismatch_is_reported_only_for_known_terms(site: str, value: str | None, warned: bool) -> None:
    note = site_mismatch(parse_card(card(site=site)), header(value))
    assert (note is not None) is warned
    if note is not None:
        assert f"Body Part Examined is {value.strip().upper()!r}" in note  # type: ignore[union-attr]
        assert f"trained for the {site}" in note and "--site or --model" in note


def test_real_vendor_headers() -> None:
    emri = get_testdata_file("emri_small.dcm", download=False)
    if emri is None:
        pytest.skip("pydicom's bundled emri_small.dcm is not available")
    head = dcmread(emri, stop_before_pixels=True)  # a vendor MR of the head: BodyPartExamined HEAD
    assert site_mismatch(parse_card(card(site="brain")), head) is None
    assert "'HEAD'" in str(site_mismatch(parse_card(card(site="pelvis")), head))
    if not REAL_PET.is_file():
        pytest.skip(f"real PET file {REAL_PET} is absent (see /work/shared/data/real/README.md)")
    breast = dcmread(REAL_PET, stop_before_pixels=True)  # an FLT breast PET
    assert "'BREAST'" in str(site_mismatch(parse_card(card(site="brain")), breast))


@pytest.mark.parametrize(("value", "warned"), [("HEAD", True), ("PELVIS", False)])
def test_translate_carries_the_warning_and_still_writes(value: str, warned: bool, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_model(repo, card(site="pelvis"), lambda p: linear_model(p, 1, 1.0, 0.0))
    paths = ct_series(tmp_path / "ct", 4)
    for path in paths:
        ds = dcmread(path)
        ds.BodyPartExamined = value
        ds.save_as(path, enforce_file_format=True)
    summary = translate_path(tmp_path / "ct", tmp_path / "out", engine=Engine(repo), task="cbct-to-ct")
    notes = [w for w in summary.warnings if "Body Part Examined" in w]
    assert len(notes) == int(warned)
    assert len(list((tmp_path / "out").glob("*.dcm"))) == 4
