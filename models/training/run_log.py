"""The run folder's logs: ``metrics.jsonl`` (one line per epoch) and ``timing.json`` (wall time per session).

Both survive a killed session consistently with ``checkpoint.pt``: a resume keeps the metrics lines of
the epochs its checkpoint holds (and drops an unfinished last line), and the time is rewritten after
every epoch, so a killed session keeps its time up to the checkpoint a resume continues from.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from service.atomic import atomic_file
from service.errors import OptionError

log = logging.getLogger(__name__)


def timing_before(path: Path, resume: bool) -> dict[str, Any]:
    """The run's ``timing.json`` before this session (a new run starts from nothing)."""
    if resume and path.exists():
        return dict(json.loads(path.read_text()))
    return {"seconds_total": 0.0, "sessions": []}


def _epoch_of(path: Path, number: int, line: str) -> int:
    try:
        return int(json.loads(line)["epoch"])
    except (ValueError, KeyError, TypeError) as exc:
        raise OptionError(
            f"--resume: line {number} of {path} is not an epoch's record ({type(exc).__name__}): "
            "delete that line, or start the run again in a new --out folder."
        ) from None


def metrics_upto(path: Path, epochs: int) -> None:
    """Keep only the ``metrics.jsonl`` lines of epochs 1..``epochs`` (those a checkpoint holds).

    A session killed between an epoch's metrics line and its checkpoint leaves a line that the resume
    writes again; a new run (``epochs`` 0) does not append to a file left in its folder.
    """
    if not path.exists():
        return
    text = path.read_text()
    if not epochs:
        if text:
            with atomic_file(path, overwrite=True) as tmp:
                tmp.write_text("")
        return
    lines = [line for line in text.splitlines() if line.strip()]
    unfinished = bool(lines) and not text.endswith("\n")
    if unfinished:  # a session killed while appending a line; its epoch is logged again
        log.warning("metrics.jsonl: dropped an unfinished last line (a session killed while writing it).")
        lines = lines[:-1]
    kept = [line for n, line in enumerate(lines, 1) if _epoch_of(path, n, line) <= epochs]
    if len(kept) < len(lines):
        log.warning(
            "metrics.jsonl: dropped %d line(s) of epochs after the checkpoint's epoch %d "
            "(written by a session that ended before checkpointing them); the resume logs them again.",
            len(lines) - len(kept), epochs,
        )  # fmt: skip
    elif not unfinished:
        return
    with atomic_file(path, overwrite=True) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept))


def record_timing(
    path: Path, before: Mapping[str, Any], seconds: float, epochs: int, device: torch.device
) -> None:
    """Write the run's wall time: ``before`` (earlier sessions) plus this session so far, with its hardware.

    Called after every epoch's checkpoint, so a session that is killed keeps its time up to the epoch a
    resume continues from.
    """
    session = {
        "seconds": round(seconds, 1),
        "epochs": epochs,
        # machine, then the processor name where Python knows one that differs (often it is "x86_64" again)
        "machine": " ".join(dict.fromkeys(p for p in (platform.machine(), platform.processor()) if p)),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    timing = {
        "seconds_total": round(float(before["seconds_total"]) + seconds, 1),
        "sessions": [*before["sessions"], session],
    }
    with atomic_file(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(timing, indent=2) + "\n")
