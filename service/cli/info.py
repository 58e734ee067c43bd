"""``radtranslate info PATH [--json]``: the DICOM series in a folder, without patient data.

Prints one row per series (modality, size, spacing, unit, instances, problems) and the
number of skipped files by reason. Series Instance UIDs are printed because they are what
``--series-uid`` selects; patient names, IDs and birth dates never are.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from service.dicom.scan import ScanReport, SeriesSummary, scan_folder


def register(subparsers: Any) -> None:
    """Add the ``info`` subcommand."""
    parser = subparsers.add_parser(
        "info",
        help="list the DICOM series in a folder (no patient data)",
        description="Scan a folder recursively and list its DICOM series: modality, size, spacing, "
        "unit, instance count and geometry problems, plus the files skipped.",
    )
    parser.add_argument("path", help="folder (searched recursively) or DICOM file")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def _size(s: SeriesSummary) -> str:
    if s.rows is None or s.columns is None:
        return "-"
    return f"{s.columns}x{s.rows}x{s.frames}"


def _spacing(s: SeriesSummary) -> str:
    return "-" if s.spacing_mm is None else "x".join(f"{v:.4g}" for v in s.spacing_mm)


def report_dict(report: ScanReport) -> dict[str, Any]:
    """The report as JSON-ready data (the ``--json`` output)."""
    return {
        "series": [
            {
                "series_instance_uid": s.series_instance_uid,
                "modality": s.modality,
                "is_image": s.is_image,
                "sop_class_uid": s.sop_class_uid,
                "instances": s.instances,
                "frames": s.frames,
                "rows": s.rows,
                "columns": s.columns,
                "spacing_mm_xyz": None if s.spacing_mm is None else [round(v, 6) for v in s.spacing_mm],
                "unit": s.unit,
                "series_description": s.series_description,
                "problems": list(s.problems),
            }
            for s in report.series
        ],
        "skipped_files": report.skipped_files,
        "skipped_by_reason": report.skipped_by_reason,
    }


def format_table(report: ScanReport) -> str:
    """A plain-text table of the series, then their problems and the skipped files."""
    header = ("#", "modality", "size (x*y*z)", "spacing mm", "unit", "instances", "problems", "description")
    rows = [
        (
            str(i + 1),
            s.modality,
            _size(s),
            _spacing(s),
            s.unit or "-",
            str(s.instances),
            str(len(s.problems)) if s.problems else "none",
            s.series_description[:40],
        )
        for i, s in enumerate(report.series)
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    if not report.series:
        lines.append("(no DICOM series found)")
    lines.append("")
    for i, s in enumerate(report.series):
        lines.append(f"{i + 1}: SeriesInstanceUID {s.series_instance_uid}")
        lines.extend(f"   problem: {p}" for p in s.problems)
    skipped = ", ".join(f"{n} {reason}" for reason, n in report.skipped_by_reason.items())
    lines.append(f"skipped files: {report.skipped_files}" + (f" ({skipped})" if skipped else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Scan ``args.path`` and print the table (or JSON); 0 on success."""
    report = scan_folder(args.path)
    text = json.dumps(report_dict(report), indent=2) if args.json else format_table(report)
    try:
        print(text)
    except BrokenPipeError:  # output piped into e.g. 'head'
        sys.stderr.close()
    return 0
