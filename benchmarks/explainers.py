"""Time of each explainer divided by the time of one plain forward pass of the same batch.

    python benchmarks/explainers.py [--batch 8] [--size 224]

Model: torchvision resnet18 with random weights, eval mode, target layer `layer4`.
Goal (issue 3): gradient CAMs at most 1.3 forward passes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, machine  # noqa: E402

from lit_xai.explainers import GradCAM, RandomSaliency  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = resnet18(num_classes=1000).eval()
    inputs = torch.randn(args.batch, 3, args.size, args.size)

    def forward() -> None:
        with torch.no_grad():
            model(inputs)

    forward_time = best_time(forward, args.repeats)
    explainers = {"GradCAM": GradCAM("layer4"), "RandomSaliency": RandomSaliency()}
    print(f"machine: {machine()}; resnet18, batch {args.batch} x 3 x {args.size} x {args.size}")
    print(f"plain forward pass: {forward_time * 1000:.1f} ms")
    print("| method | ms | / forward pass |")
    print("| --- | ---: | ---: |")
    for name, explainer in explainers.items():
        seconds = best_time(lambda: explainer(model, inputs), args.repeats)
        print(f"| {name} | {seconds * 1000:.1f} | {seconds / forward_time:.2f} |")


if __name__ == "__main__":
    main()
