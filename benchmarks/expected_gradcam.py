"""Expected Grad-CAM with M draws divided by M plain forward passes of the batch, and by captum's
LayerGradientShap with M samples on the same layer, measured in one run.

    python benchmarks/expected_gradcam.py [--batch 8] [--size 224] [--draws 16]

Model: torchvision resnet18 (random weights, eval), layer `layer4`, a bank of 32 baselines (whose layer
activations Expected Grad-CAM caches between calls, as in a validation loop). Goals (issue 4): at most
1.3 x M forward passes; below 1 x captum.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, machine  # noqa: E402

from lit_xai.explainers import ExpectedGradCAM  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--draws", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=None, help="internal_batch_size (default: automatic, as users get it)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = resnet18(num_classes=1000).eval()
    inputs = torch.randn(args.batch, 3, args.size, args.size)
    bank = torch.randn(32, 3, args.size, args.size)
    targets = torch.ones(args.batch, dtype=torch.long)

    def forwards() -> None:
        with torch.no_grad():
            for _ in range(args.draws):
                model(inputs)

    reference = best_time(forwards, args.repeats)
    explainer = ExpectedGradCAM("layer4", baselines=bank, draws=args.draws, internal_batch_size=args.chunk)
    ours = best_time(lambda: explainer(model, inputs, targets), args.repeats)
    print(f"machine: {machine()}; resnet18, batch {args.batch} x 3 x {args.size} x {args.size}, M = {args.draws}")
    print(f"{args.draws} plain forward passes: {reference * 1000:.0f} ms")
    print("| method | ms | / M forward passes | / captum LayerGradientShap |")
    print("| --- | ---: | ---: | ---: |")
    try:
        from captum.attr import LayerGradientShap
    except ImportError:
        print(f"| ExpectedGradCAM | {ours * 1000:.0f} | {ours / reference:.2f} | - |")
        return
    shap = LayerGradientShap(model, model.layer4)
    captum = best_time(lambda: shap.attribute(inputs, baselines=bank, n_samples=args.draws, stdevs=0.0, target=targets), args.repeats)
    print(f"| ExpectedGradCAM | {ours * 1000:.0f} | {ours / reference:.2f} | {ours / captum:.2f} |")
    print(f"| captum LayerGradientShap | {captum * 1000:.0f} | {captum / reference:.2f} | 1.00 |")


if __name__ == "__main__":
    main()
