"""Each explainer's time divided by one plain forward pass of the same batch, and by pytorch-grad-cam's
time for the same method, all measured in one run.

    python benchmarks/explainers.py [--batch 8] [--size 224] [--score-batch 2] [--score-size 64]

Model: torchvision resnet18 (random weights, eval), target layer `layer4`. Gradient methods run on
batch x 3 x size x size; Score-CAM and Ablation-CAM (512 masked passes per image) on a smaller batch.
Goals (issue 3): gradient CAMs at most 1.3 forward passes; faster than pytorch-grad-cam.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, machine  # noqa: E402

import lit_xai.explainers as ours  # noqa: E402

GRADIENT = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM"]
SCORE = ["ScoreCAM", "AblationCAM"]
OURS_ONLY = {"SmoothGradCAMPlusPlus": {"samples": 8}, "RandomSaliency": {}}


def reference(name: str, model: torch.nn.Module, batch: int):  # type: ignore[no-untyped-def]
    try:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        return None
    cam = getattr(pytorch_grad_cam, name)(model=model, target_layers=[model.layer4])
    if hasattr(cam, "batch_size"):
        cam.batch_size = 64
    targets = [ClassifierOutputTarget(1)] * batch
    return lambda inputs: cam(input_tensor=inputs, targets=targets)


def table(model: torch.nn.Module, inputs: torch.Tensor, names: list[str], repeats: int) -> None:
    def forward() -> None:
        with torch.no_grad():
            model(inputs)

    forward_time = best_time(forward, repeats)
    print(f"\nbatch {tuple(inputs.shape)}: plain forward pass {forward_time * 1000:.1f} ms")
    print("| method | ms | / forward pass | pytorch-grad-cam ms | / pytorch-grad-cam |")
    print("| --- | ---: | ---: | ---: | ---: |")
    targets = torch.ones(len(inputs), dtype=torch.long)
    for name in names:
        explainer = getattr(ours, name)("layer4", **OURS_ONLY.get(name, {})) if name != "RandomSaliency" else ours.RandomSaliency()
        seconds = best_time(lambda: explainer(model, inputs, targets), repeats)
        ref = reference(name, model, len(inputs)) if name not in OURS_ONLY else None
        ref_seconds = best_time(lambda: ref(inputs), repeats) if ref else None
        ref_cells = f"{ref_seconds * 1000:.1f} | {seconds / ref_seconds:.2f}" if ref_seconds else "- | -"
        print(f"| {name} | {seconds * 1000:.1f} | {seconds / forward_time:.2f} | {ref_cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--score-batch", type=int, default=2)
    parser.add_argument("--score-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = resnet18(num_classes=1000).eval()
    print(f"machine: {machine()}; resnet18 (random weights), target layer layer4")
    table(model, torch.randn(args.batch, 3, args.size, args.size), GRADIENT + list(OURS_ONLY), args.repeats)
    table(model, torch.randn(args.score_batch, 3, args.score_size, args.score_size), SCORE, args.repeats)


if __name__ == "__main__":
    main()
