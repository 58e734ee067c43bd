"""What test-time flip averaging costs: each flip-averaged model against its single-pass peer, one volume.

    python bench/flip_cost.py [--repeats 3] [--repository models/repository]

For every model whose default version averages mirrors in its graph (``radtranslate export --flips``),
times ``Engine.translate`` of one re-simulated held-out subject (the card's own held-out set, subject 0)
with that version and with the newest single-pass version of the same model in the repository (the
same generator without the average, where the repository keeps it), in the same run: median of the
repeats after a warm-up, the engine's defaults (ONNX Runtime's CUDA provider when present, else CPU).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from timing import median_seconds  # bench/timing.py (scripts run from bench/)

from export.score import preset_for
from models.simulation.dataset import DatasetOptions, simulate_subject
from service.inference.card import ModelCard
from service.inference.engine import Engine
from service.inference.repository import default_repository_path


def _flips(card: ModelCard) -> str:
    return str(card.documentation.get("architecture", {}).get("flips", {}).get("mode", "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repository", type=Path, default=default_repository_path())
    args = parser.parse_args()
    engine = Engine(args.repository)
    print(f"{'model':<24} {'single pass':>16} {'flip-averaged':>16} {'ratio':>6}  provider")
    for card in engine.list_models():
        served = engine.get_model(card.name)
        if card.version != served.version or _flips(served) == "none":
            continue
        peers = [c for c in engine.list_models() if c.name == card.name and _flips(c) == "none"]
        if not peers:
            print(f"{card.name:<24} no single-pass version kept: nothing to compare")
            continue
        peer = max(peers, key=lambda c: int(c.version))
        held_out = served.documentation["metrics"]["test_dataset"]
        preset = preset_for(served)  # its dataset_input names the image the model reads
        drf = int(served.dose_reduction_factor or 10)
        options = DatasetOptions(
            task=held_out["task"], site=held_out["site"], subjects=1, seed=held_out["seed"],
            drfs=(drf,) if held_out["task"] == "pet" else (4, 10, 20, 50, 100),
        )  # fmt: skip
        volume = simulate_subject(options, 0).images[preset.dataset_input]
        seconds = {}
        for version in (peer.version, served.version):
            run = functools.partial(engine.translate, volume, model=card.name, version=version)
            seconds[version] = median_seconds(run, args.repeats)
        provider = engine.provider(card.name, served.version)
        a, b = seconds[peer.version], seconds[served.version]
        print(
            f"{card.name:<24} {f'v{peer.version} {a:.2f} s':>16} {f'v{served.version} {b:.2f} s':>16} "
            f"{b / a:>6.2f}  {provider}, {volume.array.shape} voxels"
        )


if __name__ == "__main__":
    main()
