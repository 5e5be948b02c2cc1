"""High-resolution CAMs on the shapes data: localisation and time per explanation relative to Grad-CAM.

    python benchmarks/high_resolution.py [--images 200] [--first 0] [--draws 4] [--repeats 1]

Model: the small CNN of the tests (`tests/shapes_helpers.py`: small_cnn width 16, 5 epochs on 1,500
ShapesDataModule images, ~99 % validation accuracy), target layer `block3` (16 x 16 for 32 x 32 inputs).
Explained: `--images` validation images from `--first`, for their true class. Scores: PointingGame with
tolerance 0 (the maximum must be on the shape's mask) and 1 (on it or on a pixel touching it), and
EnergyPointingGame (share of the positive map inside the mask's box). Times: best of `--repeats` calls on the whole batch, one thread, divided by
Grad-CAM's in the same run. Expected Grad-CAM based methods draw from a bank of 32 training images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import best_time, machine  # noqa: E402

from lit_xai.explainers import ExpectedGradCAM, GradCAM, HyperExpectedGradCAM, JitterCAM, MassPreservingUpsampler  # noqa: E402
from lit_xai.metrics.localisation import EnergyPointingGame, PointingGame  # noqa: E402
from tests.shapes_helpers import single_thread, trained_shapes_classifier  # noqa: E402


def methods(bank: torch.Tensor, draws: int) -> dict[str, object]:
    return {
        "Grad-CAM (bilinear)": GradCAM(),
        "Jitter-CAM (grid 17)": JitterCAM(grid=17),
        "Jitter-CAM (grid 18)": JitterCAM(grid=18),
        "Jitter-CAM (grid 18, authors' counter)": JitterCAM(grid=18, counter_start=1.0),
        "Jitter-CAM (grid 32 = scale 2)": JitterCAM(),
        "Grad-CAM + mass-preserving (input_edges)": GradCAM(upsample=MassPreservingUpsampler("input_edges")),
        "Grad-CAM + mass-preserving (activations)": GradCAM(upsample=MassPreservingUpsampler("activations")),
        "Grad-CAM + mass-preserving (gradients)": GradCAM(upsample=MassPreservingUpsampler("gradients")),
        f"Expected Grad-CAM ({draws} draws)": ExpectedGradCAM(baselines=bank, draws=draws),
        f"Hyper Expected Grad-CAM ({draws} draws, 1 stage, threshold 0.05)": HyperExpectedGradCAM(
            baselines=bank, draws=draws, stages=1, threshold=0.05
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    trained = trained_shapes_classifier()
    dataset = trained.data.dataset("val")
    chosen = slice(args.first, args.first + args.images)
    inputs, labels, masks = dataset.images[chosen], dataset.labels[chosen], dataset.masks[chosen]
    bank = trained.data.baseline_bank(32)
    rows = []
    with single_thread():
        for name, explainer in methods(bank, args.draws).items():
            maps = explainer(trained.model, inputs, labels)  # type: ignore[operator]
            strict, touching, energy = PointingGame(tolerance=0), PointingGame(tolerance=1), EnergyPointingGame()
            for metric in (strict, touching, energy):
                metric.update(maps, masks)
            seconds = best_time(lambda: explainer(trained.model, inputs, labels), args.repeats, warmup=0)  # type: ignore[operator]
            rows.append((name, strict.compute().item(), touching.compute().item(), energy.compute().item(), seconds))
            print(f"{name}: {rows[-1][1:]}", file=sys.stderr, flush=True)
    reference = rows[0][4]
    print(f"machine: {machine()} (one thread); shapes small_cnn (val acc {trained.val_acc:.3f}), "
          f"{args.images} validation images from {args.first}, 32 x 32, layer block3 16 x 16")
    print("| method | PointingGame (tol. 0) | PointingGame (tol. 1) | EnergyPointingGame | ms / image | time / Grad-CAM |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, strict, touching, share, seconds in rows:
        print(f"| {name} | {strict:.3f} | {touching:.3f} | {share:.3f} | {seconds / args.images * 1000:.2f} | {seconds / reference:.1f} |")


if __name__ == "__main__":
    main()
