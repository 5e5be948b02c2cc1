"""Insertion / Deletion time divided by the time of the same number of plain forward passes, and by
quantus' PixelFlipping (the same deletion curve, numpy) on the same inputs, measured in one run.

    python benchmarks/metrics.py [--batch 8] [--size 224] [--steps 28]

Each image needs steps + 1 forward passes; the reference is one batched no-grad forward pass over the
same number of images (batch x (steps + 1)), chunked like the metric. Goal (issue 5): at most 1.2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, machine  # noqa: E402

from lit_xai.metrics import Deletion, Insertion  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = resnet18(num_classes=1000).eval()
    inputs = torch.randn(args.batch, 3, args.size, args.size)
    saliency = torch.rand(args.batch, args.size, args.size)
    targets = torch.zeros(args.batch, dtype=torch.long)
    total = args.batch * (args.steps + 1)
    stacked = inputs.repeat(args.steps + 1, 1, 1, 1)

    def forwards() -> None:
        with torch.no_grad():
            for start in range(0, total, args.chunk):
                model(stacked[start : start + args.chunk])

    reference = best_time(forwards, args.repeats)
    print(f"machine: {machine()}; resnet18, {args.batch} images 3 x {args.size} x {args.size}, {args.steps} steps")
    print(f"{total} plain forward passes: {reference * 1000:.0f} ms")
    print("| metric | ms | / plain forward passes |")
    print("| --- | ---: | ---: |")
    timings = {}
    for metric in (Insertion(steps=args.steps, internal_batch_size=args.chunk), Deletion(steps=args.steps, internal_batch_size=args.chunk)):
        timings[type(metric).__name__] = best_time(lambda: metric.update(model, inputs, saliency, targets), args.repeats)
        print(f"| {type(metric).__name__} | {timings[type(metric).__name__] * 1000:.0f} | {timings[type(metric).__name__] / reference:.2f} |")
    try:
        import quantus
    except ImportError:
        print("(quantus is not installed: pip install quantus for the comparison)")
        return
    pixels = args.size * args.size
    flipping = quantus.PixelFlipping(
        features_in_step=pixels // args.steps, perturb_baseline="black", disable_warnings=True, return_auc_per_sample=False  # its AUC needs np.trapz, gone in numpy 2.4
    )
    x, y, a = inputs.numpy(), targets.numpy(), saliency.unsqueeze(1).numpy()
    seconds = best_time(lambda: flipping(model=model, x_batch=x, y_batch=y, a_batch=a, device="cpu", batch_size=args.chunk), args.repeats)
    print(f"| quantus PixelFlipping | {seconds * 1000:.0f} | {seconds / reference:.2f} |")
    print(f"Deletion / quantus PixelFlipping: {timings['Deletion'] / seconds:.2f}")


if __name__ == "__main__":
    main()
