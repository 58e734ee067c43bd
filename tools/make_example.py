"""Build the bundled example: one simulated brain subject as DICOM (MR to translate, CT to check against).

    python tools/make_example.py examples/brain-sim-9001

Seed 9001 is never used for training data; the subject is a named phantom, marked simulated in every
series. Writes ``mr/`` (MR Image Storage), ``ct/`` (CT Image Storage, same study and frame of reference)
and ``mask.nii.gz`` (the simulator's body mask) and ``subject.json`` (simulation parameters).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.simulation.anatomy import Site
from models.simulation.dataset import DatasetOptions, Task, simulate_subject
from models.simulation.dicom_export import SimulatedStudy, write_series
from service.atomic import atomic_directory
from service.imageio import write_image

EXAMPLE_SEED = 9001


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    options = DatasetOptions(task=Task.MR_TO_CT, site=Site.BRAIN, subjects=1, seed=EXAMPLE_SEED)
    subject = simulate_subject(options, 0)
    study = SimulatedStudy.new("SIM-BRAIN-9001")
    with atomic_directory(args.out) as tmp:
        write_series(subject.images["mr"], tmp / "mr", study, series_number=1,
                     description="SIMULATED T1w brain (radtranslate example)")  # fmt: skip
        write_series(subject.images["ct"], tmp / "ct", study, series_number=2,
                     description="SIMULATED CT brain (radtranslate example)")  # fmt: skip
        write_image(subject.mask, tmp / "mask.nii.gz")
        (tmp / "subject.json").write_text(json.dumps(subject.meta, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
