"""Expected Grad-CAM against its floor, paired pass by pass: robust to a shared, busy CPU.

    python benchmarks/expected_gradcam_paired.py [--batch 4] [--size 224] [--repeats 2]

`floor.py` times the method once and its floor separately (the best of a few runs of 10 plain passes),
so load from other processes during the long method run counts against the method only. Here a plain
no-grad forward pass of the batch is run right before each of the method's own forward calls
(ExpectedGradCAM at default arguments, a cached bank of 16 baselines, ResNet-50, `layer4`), and each
stretch of the method between two such passes (one chunk's forward pass, the backward through the head
and the chunk's bookkeeping) is divided by the mean of the two plain passes around it (scaled by the
chunk's size over the batch's, where automatic chunking makes them differ: tiny inputs). The median of
these ratios over the call's chunks is the method's cost per pass relative to a plain pass under the
same load; times (draws + 1) / draws, it is the ratio to a floor of `draws` passes. The first stretch
(setup and the inputs' own pass) is shown separately; the work after the last forward call (averaging,
upsampling, a few ms) is not in any stretch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import lit_xai.explainers.expected_gradients as expected_gradients_module  # noqa: E402
from lit_xai import explainers as ex  # noqa: E402


def paired_ratios(model: torch.nn.Module, inputs: torch.Tensor, bank: torch.Tensor, targets: torch.Tensor) -> tuple[list[float], float, float]:
    """Per-chunk ratios (method stretch / mean adjacent plain pass), first stretch and its adjacent plain pass (s)."""
    explainer = ex.ExpectedGradCAM("layer4", baselines=bank)
    original = expected_gradients_module.forward_with_activations
    log: list[tuple[float, float | None, int]] = []  # (plain pass, method stretch before it, images in this forward call)
    end: list[float] = []

    def paired(*args, **kwargs):
        now = time.perf_counter()
        with torch.no_grad():
            start = time.perf_counter()
            model(inputs)
            plain = time.perf_counter() - start
        log.append((plain, now - end[-1] if end else None, args[2].shape[0]))
        end.append(time.perf_counter())
        return original(*args, **kwargs)

    explainer(model, inputs, targets)  # warm-up: fills the bank cache
    expected_gradients_module.forward_with_activations = paired
    try:
        explainer(model, inputs, targets)
    finally:
        expected_gradients_module.forward_with_activations = original
    batch = inputs.shape[0]  # stretch i holds forward call i - 1: its plain-pass equivalent is scaled by its size
    pairs = [(log[i][1], (log[i - 1][0] + log[i][0]) / 2 * log[i - 1][2] / batch) for i in range(1, len(log))]
    return [stretch / plain for stretch, plain in pairs[1:]], pairs[0][0], pairs[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=1000).eval()
    inputs = torch.randn(args.batch, 3, args.size, args.size)
    bank = torch.randn(16, 3, args.size, args.size)
    targets = torch.ones(args.batch, dtype=torch.long)
    draws = ex.ExpectedGradCAM("layer4").draws
    print(f"machine: {machine()}; ResNet-50, batch {args.batch}, {args.size} px, {draws} draws (default)")
    for _ in range(args.repeats):
        ratios, first, plain = paired_ratios(model, inputs, bank, targets)
        median = statistics.median(ratios)
        print(
            f"per chunk / adjacent plain pass: median {median:.3f}, mean {statistics.mean(ratios):.3f} over {len(ratios)} chunks; "
            f"first stretch {first * 1000:.0f} ms vs plain pass {plain * 1000:.0f} ms; "
            f"estimated / floor of {draws} passes {median * (draws + 1) / draws:.3f}, of {draws + 1} passes {median:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
