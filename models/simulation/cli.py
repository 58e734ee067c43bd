"""``radtranslate simulate``: write a simulated paired dataset in the SynthRAD layout.

Example::

    radtranslate simulate --task mr-to-ct --site brain --subjects 20 --seed 0 --workers 2 data/sim_brain/
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from service.errors import OptionError


def register(subparsers: Any) -> None:
    """Add the ``simulate`` subcommand to the radtranslate CLI."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate paired training data (MR/CT, CBCT/CT, low/full-dose PET)",
        description=(
            "Simulate random subjects (digital anatomy + CT, MR, CBCT or PET physics) into OUT/ in the "
            "SynthRAD layout: one folder per subject with the image pair and a body mask. Subject i "
            "depends only on (seed, task, site, i)."
        ),
    )
    parser.add_argument("--task", required=True, choices=["mr-to-ct", "cbct-to-ct", "pet"])
    parser.add_argument("--site", required=True, choices=["brain", "pelvis"])
    parser.add_argument("--subjects", required=True, type=int, help="number of subjects")
    parser.add_argument("--seed", required=True, type=int, help="dataset seed (non-negative integer)")
    parser.add_argument("--format", default="nii.gz", choices=["nii.gz", "mha"], help="image format")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument(
        "--mr-weighting",
        choices=["t1", "t2"],
        default=None,
        help="MR contrast for mr-to-ct (default: t1 for brain, t2 for pelvis)",
    )
    parser.add_argument(
        "--drfs",
        type=int,
        nargs="+",
        default=None,
        help="PET dose reduction factors (default 4 10 20 50 100)",
    )
    parser.add_argument(
        "--downscale",
        type=int,
        default=1,
        help="N times fewer voxels per axis, same field of view (quick previews and tests; default 1)",
    )
    parser.add_argument(
        "--labels",
        action="store_true",
        help="also write labels.EXT: the majority tissue label per voxel (for tissue-wise evaluation)",
    )
    parser.add_argument(
        "--cbct-oversample",
        type=int,
        default=1,
        help=(
            "cbct-to-ct: detector bins and reconstruction points K times finer than the voxel, averaged "
            "back to it (a sharper CBCT, as a clinical scanner reconstructs finer and resamples; "
            "default 1; K x K times the reconstruction time)"
        ),
    )
    parser.add_argument("--resume", action="store_true", help="complete an interrupted dataset in OUT/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("out", metavar="OUT/", help="output folder (absent or empty unless --resume)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``radtranslate simulate``; returns the exit code (0 on success)."""
    from tqdm import tqdm

    from models.simulation.dataset import DEFAULT_DRFS, DatasetOptions, write_dataset

    if args.workers < 1 or args.workers > (os.cpu_count() or 1) * 4:
        raise OptionError(
            f"--workers must be between 1 and {(os.cpu_count() or 1) * 4}, got {args.workers}: "
            "pass the number of CPU cores to use."
        )
    options = DatasetOptions(
        task=args.task,
        site=args.site,
        subjects=args.subjects,
        seed=args.seed,
        file_format=args.format,
        weighting=args.mr_weighting,
        drfs=tuple(args.drfs) if args.drfs else DEFAULT_DRFS,
        downscale=args.downscale,
        write_labels=args.labels,
        cbct_oversample=args.cbct_oversample,
    )
    with tqdm(
        total=options.subjects,
        unit="subject",
        desc=f"simulate {options.task.value} {options.site.value}",
        disable=args.no_progress,
        file=sys.stderr,
    ) as bar:

        def progress(done: int) -> None:
            bar.update(done - bar.n)

        folders = write_dataset(
            args.out, options, workers=args.workers, resume=args.resume, progress=progress
        )
    print(f"{len(folders)} subjects in {args.out}")
    return 0
