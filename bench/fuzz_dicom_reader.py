"""Bounded fuzz run of the DICOM series reader on mutated real files.

Each case takes a small real series (bundled pydicom / pydicom-data files and, when present,
slices of the real CT and PET in ../shared/data/real), applies one mutation drawn by
hypothesis (byte flips, truncation, or a tag value change: ImagePositionPatient,
ImageOrientationPatient, PixelSpacing, Rows, Columns, BitsAllocated, BitsStored,
PixelRepresentation, NumberOfFrames, RescaleSlope, TransferSyntaxUID, ...), writes the files
into a temporary folder and runs ``scan_folder`` then ``read_series`` on it in a worker
process. The only acceptable outcomes are a Volume or a ``RadTranslateError`` subclass; any
other exception, a worker death (e.g. a segfault in a decoder) or a case running past the
per-case timeout is a finding. Prints counts by outcome and every distinct finding.

    python bench/fuzz_dicom_reader.py --seconds 300 --max-cases 100000 --case-timeout 10
"""

from __future__ import annotations

import argparse
import collections
import copy
import io
import logging
import multiprocessing as mp
import os
import resource
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydicom import config
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"

TAG_VALUES: dict[str, list[Any]] = {
    "ImagePositionPatient": [
        None,
        [],
        [0, 0],
        ["nan", 0, 0],
        ["inf", 0, 0],
        [1e308, 0, 0],
        ["x", "y", "z"],
        [0, 0, 0],
        [5, 5, 5, 5],
        [0, 0, 0.001],
    ],
    "ImageOrientationPatient": [
        None,
        [1, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0],
        [1, 0, 0, 1, 0, 0],
        ["nan", 0, 0, 0, 1, 0],
        [1, 0, 0, 0, 0.7071, 0.7071],
        [1e300, 0, 0, 0, 1, 0],
        [2, 0, 0, 0, 2, 0],
    ],
    "PixelSpacing": [None, [0, 0], [-1, -1], ["nan", 1], [1], [1e-300, 1e-300], [1e300, 1e300], ["a", "b"]],
    "Rows": [None, 0, 1, 3, 255, 65535],
    "Columns": [None, 0, 1, 3, 255, 65535],
    "BitsAllocated": [None, 0, 1, 7, 8, 12, 32, 64, 65535],
    "BitsStored": [None, 0, 1, 8, 12, 17, 64],
    "HighBit": [None, 0, 31, 64],
    "PixelRepresentation": [None, 0, 1, 2],
    "SamplesPerPixel": [None, 0, 3],
    "PhotometricInterpretation": [None, "RGB", "YBR_FULL", "PALETTE COLOR", "MONOCHROME1", ""],
    "NumberOfFrames": [None, 0, -1, 2, 3, 100000, "abc"],
    "RescaleSlope": [None, 0, -1, "nan", "inf", 1e38, 1e-38, "x"],
    "RescaleIntercept": [None, "nan", 1e38, -1e38, "y"],
    "GantryDetectorTilt": [None, 0.001, 15, "nan"],
    "Modality": [None, "", "PT", "MR", "CT", "RTDOSE", "OT"],
    "Units": [None, "CNTS", "GML", "BQML"],
    "SeriesInstanceUID": [None, "", "1.2.3"],
    "SOPClassUID": [None, "", "1.2.840.10008.5.1.4.1.1.4"],
    "FrameOfReferenceUID": [None, "", "1.2.3.4"],
    "PixelData": [None, b"", b"\x00" * 10],
}
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.100",
    "1.2.840.10008.1.2.1.99",
    "1.2.3.4",
    "",
    "not a uid",
]


def _data(name: str) -> bytes:
    path = get_testdata_file(name, download=False)
    assert path is not None, name
    return Path(path).read_bytes()


def _series_from(raw: bytes, n: int, spacing: float) -> list[bytes]:
    """``n`` slices of one new series from a real single-frame file (new IPP and UIDs)."""
    base = pydicom.dcmread(io.BytesIO(raw))
    uid = generate_uid()
    z0 = float(base.get("ImagePositionPatient", [0, 0, 0])[2])
    out = []
    for i in range(n):
        ds = copy.deepcopy(base)
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ipp = [float(v) for v in base.get("ImagePositionPatient", [0, 0, 0])]
        ds.ImagePositionPatient = [ipp[0], ipp[1], z0 + i * spacing]
        ds.ImageOrientationPatient = base.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0])
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def seeds() -> dict[str, list[bytes]]:
    """Small real series to mutate, by name."""
    out = {
        "CT_small x3": _series_from(_data("CT_small.dcm"), 3, 2.0),
        "MR_small_RLE x2": _series_from(_data("MR_small_RLE.dcm"), 2, 1.5),
        "MR_small_jp2k x2": _series_from(_data("MR_small_jp2klossless.dcm"), 2, 1.5),
        "MR_small_jpegls x2": _series_from(_data("MR_small_jpeg_ls_lossless.dcm"), 2, 1.5),
        "MR_small_bigendian x2": _series_from(_data("MR_small_bigendian.dcm"), 2, 1.5),
        "eCT_Supplemental": [_data("eCT_Supplemental.dcm")],
        "emri_small_RLE": [_data("emri_small_RLE.dcm")],
    }
    ct = REAL / "ct-cort-liver"
    if ct.is_dir():
        out["real CT x3"] = [(ct / f"ct_slice_{i}.dcm").read_bytes() for i in (40, 41, 42)]
    pet = REAL / "pet" / "acrin-flt-breast-a.dcm"
    if pet.is_file():
        out["real PET x2"] = _series_from(pet.read_bytes(), 2, 3.27)
    return out


def _set(ds: pydicom.Dataset, keyword: str, value: Any) -> None:
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
        return
    if keyword == "PixelData":
        ds.PixelData = value
        return
    if isinstance(value, list):
        value = [str(v) for v in value]
    setattr(ds, keyword, value)


def mutate(files: list[bytes], data: st.DataObject) -> tuple[list[bytes], str]:
    """Apply one drawn mutation to one of ``files``; return the files and a description."""
    files = list(files)
    target = data.draw(st.integers(0, len(files) - 1), label="file")
    kinds = ["flip", "truncate", "tag", "tag", "syntax", "frame-group"]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    raw = files[target]
    if kind == "flip":
        count = data.draw(st.integers(1, 16))
        buf = bytearray(raw)
        for _ in range(count):
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] ^= data.draw(st.integers(1, 255))
        files[target] = bytes(buf)
        return files, f"flip {count} byte(s) in file {target}"
    if kind == "truncate":
        cut = data.draw(st.integers(0, len(raw) - 1))
        files[target] = raw[:cut]
        return files, f"truncate file {target} at {cut}/{len(raw)}"
    ds = pydicom.dcmread(io.BytesIO(raw))
    if kind == "syntax":
        ts = data.draw(st.sampled_from(TRANSFER_SYNTAXES))
        ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(ts)
        what = f"TransferSyntaxUID={ts!r} in file {target}"
    elif kind == "frame-group" and "PerFrameFunctionalGroupsSequence" in ds:
        seq = data.draw(
            st.sampled_from(
                [
                    "PlanePositionSequence",
                    "PlaneOrientationSequence",
                    "PixelMeasuresSequence",
                    "PixelValueTransformationSequence",
                ]
            )
        )
        frame = data.draw(st.integers(0, len(ds.PerFrameFunctionalGroupsSequence) - 1))
        shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
        for item in (ds.PerFrameFunctionalGroupsSequence[frame], shared):
            if item is not None and seq in item:
                delattr(item, seq)
        what = f"delete {seq} of frame {frame} in file {target}"
    else:
        keyword = data.draw(st.sampled_from(sorted(TAG_VALUES)))
        value = data.draw(st.sampled_from(TAG_VALUES[keyword]))
        what = f"{keyword}={str(value)[:30]!r} in file {target}"
        try:
            _set(ds, keyword, value)
        except Exception as exc:  # pydicom refuses some values at assignment: no case
            return files, f"unwritable ({type(exc).__name__}) {what}"
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=False)
    except Exception as exc:  # pydicom refuses to write some values: no case
        return files, f"unwritable ({type(exc).__name__}) {what}"
    files[target] = out.getvalue()
    return files, what


def _quiet() -> None:
    os.environ["RUST_BACKTRACE"] = "0"  # decoder panics are counted, not printed in full
    warnings.simplefilter("ignore")
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)


def _worker(conn: Any, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    _quiet()
    from service.dicom import read_series, scan_folder
    from service.errors import RadTranslateError

    while True:
        files = conn.recv()
        if files is None:
            return
        with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
            for i, raw in enumerate(files):
                (Path(tmp) / f"f{i}.dcm").write_bytes(raw)
            try:
                scan_folder(tmp)
                vol = read_series(tmp)
                if not np.all(np.isfinite(vol.array)):
                    conn.send(("crash", "non-finite volume", ""))
                else:
                    conn.send(("ok", "volume", ""))
            except RadTranslateError as exc:
                conn.send(("refused", type(exc).__name__, ""))
            except BaseException as exc:
                tb = traceback.extract_tb(exc.__traceback__)
                where = f"{tb[-1].filename.split('site-packages/')[-1]}:{tb[-1].lineno}" if tb else "?"
                conn.send(("crash", f"{type(exc).__name__} at {where}", traceback.format_exc()[-1500:]))


class Runner:
    """A worker process with a per-case timeout; restarted after a hang or a death."""

    def __init__(self, timeout_s: float, memory_bytes: int) -> None:
        self.timeout_s, self.memory_bytes = timeout_s, memory_bytes
        self.ctx = mp.get_context("fork")
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, self.memory_bytes), daemon=True)
        self.proc.start()

    def run(self, files: list[bytes]) -> tuple[str, str, str]:
        try:
            self.conn.send(files)
            if self.conn.poll(self.timeout_s):
                result: tuple[str, str, str] = self.conn.recv()
                return result
            outcome = ("timeout", f"no answer in {self.timeout_s} s", "")
        except (EOFError, BrokenPipeError, ConnectionResetError):
            outcome = ("crash", f"worker died (exit code {self.proc.exitcode})", "")
        self.proc.kill()
        self.proc.join()
        self._start()
        return outcome

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    parser.add_argument("--max-cases", type=int, default=100_000, help="case budget (default 100000)")
    parser.add_argument("--case-timeout", type=float, default=10.0, help="per-case timeout in s (default 10)")
    parser.add_argument("--memory-mb", type=int, default=3072, help="worker address-space limit (MiB)")
    parser.add_argument("--crash-dir", type=Path, help="write the files of each distinct finding here")
    args = parser.parse_args()

    config.settings.writing_validation_mode = config.IGNORE  # let the mutator write invalid values
    _quiet()
    corpus = seeds()
    names = sorted(corpus)
    runner = Runner(args.case_timeout, args.memory_mb << 20)
    outcomes: collections.Counter[str] = collections.Counter()
    by_kind: collections.Counter[str] = collections.Counter()
    ok_by_kind: collections.Counter[str] = collections.Counter()
    findings: dict[str, tuple[str, str, str]] = {}
    start = time.monotonic()

    batch = 25  # hypothesis runs in batches so that the time budget is checked between them

    @settings(
        max_examples=batch,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(st.data())
    def case(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(names), label="seed")
        files, what = mutate(corpus[name], data)
        kind = what.split(" ")[0].split("=")[0]
        by_kind[kind] += 1
        if what.startswith("unwritable"):
            outcomes["skipped (mutation not writable)"] += 1
            return
        status, detail, trace = runner.run(files)
        outcomes[f"{status}: {detail}"] += 1
        if status == "ok":
            ok_by_kind[kind] += 1
        if status in ("crash", "timeout") and detail not in findings:
            findings[detail] = (name, what, trace)
            if args.crash_dir:
                folder = args.crash_dir / f"finding_{len(findings):02d}"
                folder.mkdir(parents=True, exist_ok=True)
                for i, raw in enumerate(files):
                    (folder / f"f{i}.dcm").write_bytes(raw)
                (folder / "what.txt").write_text(f"{detail}\nseed {name}\n{what}\n{trace}")

    while time.monotonic() - start < args.seconds and sum(outcomes.values()) + batch <= args.max_cases:
        case()
    runner.close()
    elapsed = time.monotonic() - start
    total = sum(outcomes.values())
    print(
        f"fuzz_dicom_reader: {total} cases in {elapsed:.0f} s ({total / max(elapsed, 1e-9):.1f}/s), "
        f"seeds: {', '.join(names)}"
    )
    print(f"{'outcome':<60} {'cases':>7}")
    for key, count in sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{key:<60} {count:>7}")
    print(f"\n{'mutation kind':<30} {'cases':>7} {'volume':>7}")
    for key, count in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"{key:<30} {count:>7} {ok_by_kind[key]:>7}")
    bad = sum(c for k, c in outcomes.items() if k.startswith(("crash", "timeout")))
    print(f"\nfindings (crashes or timeouts): {bad} case(s), {len(findings)} distinct")
    for detail, (name, what, trace) in findings.items():
        print(f"- {detail}\n  seed {name}; {what}\n  {trace.strip().splitlines()[-1] if trace else ''}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
