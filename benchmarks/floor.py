"""Default arguments at the floor: each method's time divided by the plain forward passes it needs
(its own floor), how cost grows with the work, and peak memory, measured in one run.

    python benchmarks/floor.py [--model resnet50] [--size 224] [--batches 4 16] [--section all] [--device cpu] [--methods NAME ...]

Sections (`--section`): `floor` (every method at default arguments: gradient CAMs, Smooth Grad-CAM++,
Expected Grad-CAM, Insertion, Deletion, Average Drop on the model at `--size`, for each batch size),
`scaling` (time against image size, batch size, draws and steps on resnet18), `memory` (peak resident
memory of Expected Grad-CAM and Insertion/Deletion against one forward pass of the batch, each in a fresh
process). Floors: a gradient CAM needs 1 forward pass of the batch; Smooth Grad-CAM++ `samples + 1` (the noisy copies and the inputs themselves);
Expected Grad-CAM `draws + 1` (a pass of the path points per draw and one of the inputs themselves for
A(x), y(x) and the targets; its baseline bank's activations are cached, as in a validation loop);
Insertion/Deletion `steps + 1`; Average Drop 2 (plus one pass for the argmax targets when none are given,
as here). Each floor is timed as back-to-back plain no-grad passes of the batch (up to 10, scaled), the
rate a long loop sustains. Goal (issue 16): at most 1.1 x the floor at defaults. `--device cuda` runs
every section on the GPU (timings synchronise the device; peak memory is `torch.cuda.max_memory_allocated`
above the model's own, in the same process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, machine  # noqa: E402

from lit_xai import explainers as ex  # noqa: E402
from lit_xai import metrics as mx  # noqa: E402


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(num_classes=1000).eval()


def forward_passes(model: torch.nn.Module, inputs: torch.Tensor, count: int) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            for _ in range(count):
                model(inputs)

    return run


def methods(inputs: torch.Tensor, bank: torch.Tensor) -> list[tuple[str, int, Callable]]:
    """(name, forward passes of the batch it needs, callable(model, inputs, targets)) at default arguments."""
    saliency = torch.rand(inputs.shape[0], *inputs.shape[2:], device=inputs.device)
    rows: list[tuple[str, int, Callable]] = [
        (name, 1, getattr(ex, name)("layer4")) for name in ("GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM")
    ]
    smooth = ex.SmoothGradCAMPlusPlus("layer4")
    rows.append((f"SmoothGradCAMPlusPlus ({smooth.samples} samples)", smooth.samples + 1, smooth))  # + the inputs' own pass
    expected = ex.ExpectedGradCAM("layer4", baselines=bank)
    # one pass per draw (the path points) plus the inputs' own pass, which gives A(x), the scores and the targets
    rows.append((f"ExpectedGradCAM ({expected.draws} draws)", expected.draws + 1, expected))
    for metric_class in (mx.Insertion, mx.Deletion):
        metric = metric_class()
        rows.append((f"{metric_class.__name__} ({metric.steps} steps)", metric.steps + 1, lambda m, x, t, metric=metric: metric.curves(m, x, saliency, t)))
    drop = mx.AverageDrop()
    rows.append(("AverageDrop", 2, lambda m, x, t: drop.update(m, x, saliency)))  # argmax targets: scores > 0
    return rows


def floor_table(model_name: str, size: int, batches: list[int], repeats: int, device: str = "cpu", only: list[str] | None = None) -> None:
    model = build(model_name).to(device)
    print(f"\n## Default arguments against their floor ({model_name}, {size} px, {device})\n")
    for batch in batches:
        inputs = torch.randn(batch, 3, size, size, device=device)
        bank = torch.randn(16, 3, size, size, device=device)
        targets = torch.ones(batch, dtype=torch.long, device=device)
        one = best_time(forward_passes(model, inputs, 1), max(repeats, 5))
        print(f"batch {batch}: one plain forward pass {one * 1000:.0f} ms (best of {max(repeats, 5)})\n")
        print("| method | forward passes needed | ms | / floor |")
        print("| --- | ---: | ---: | ---: |")
        for name, passes, method in methods(inputs, bank):
            if only and not any(name.split()[0] == wanted for wanted in only):
                continue
            # the floor: `passes` forward passes at the sustained rate of up to 10 back-to-back passes
            sample = min(passes, 10)
            floor = best_time(forward_passes(model, inputs, sample), repeats) * passes / sample
            seconds = best_time(lambda: method(model, inputs, targets), 1 if passes > 4 else repeats)
            print(f"| {name} | {passes} | {seconds * 1000:.0f} | {seconds / floor:.2f} |", flush=True)
        print()


def scaling_table(repeats: int, device: str = "cpu") -> None:
    """Time per unit of work against each axis on resnet18: flat columns mean linear growth."""
    model = build("resnet18").to(device)
    print(f"\n## How cost grows (resnet18, {device}; ms per forward-pass-equivalent of work, default chunking)\n")

    def row(label: str, work: float, fn: Callable[[], object]) -> None:
        seconds = best_time(fn, repeats)
        print(f"| {label} | {work:g} | {seconds * 1000:.0f} | {seconds * 1000 / work:.1f} |", flush=True)

    print("| Grad-CAM, image size (batch 4) | pixels / 224^2 x images | ms | ms / unit |\n| --- | ---: | ---: | ---: |")
    for size in (64, 112, 224, 448):
        inputs = torch.randn(4, 3, size, size, device=device)
        row(f"{size} px", 4 * (size / 224) ** 2, lambda: ex.GradCAM("layer4")(model, inputs))
    print("\n| Grad-CAM, batch size (224 px) | images | ms | ms / image |\n| --- | ---: | ---: | ---: |")
    for batch in (1, 4, 16, 64):
        inputs = torch.randn(batch, 3, 224, 224, device=device)
        row(f"batch {batch}", batch, lambda: ex.GradCAM("layer4")(model, inputs))
    inputs, bank = torch.randn(4, 3, 112, 112, device=device), torch.randn(16, 3, 112, 112, device=device)
    print("\n| Expected Grad-CAM, draws (4 x 112 px) | path points | ms | ms / point |\n| --- | ---: | ---: | ---: |")
    for draws in (4, 16, 64):
        explainer = ex.ExpectedGradCAM("layer4", baselines=bank, draws=draws)
        row(f"{draws} draws", 4 * draws, lambda: explainer(model, inputs))
    saliency = torch.rand(4, 112, 112, device=device)
    print("\n| Deletion, steps (4 x 112 px) | perturbed images | ms | ms / image |\n| --- | ---: | ---: | ---: |")
    for steps in (8, 32, 128, 256):
        metric = mx.Deletion(steps=steps)
        row(f"{steps} steps", 4 * (steps + 1), lambda: metric.curves(model, inputs, saliency, None))


MEMORY_PROBE = """
import json, resource, sys, torch, torchvision
from lit_xai import explainers as ex, metrics as mx
kind, name, size, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
model = getattr(torchvision.models, name)(num_classes=1000).eval()
inputs, bank = torch.randn(batch, 3, size, size), torch.randn(16, 3, size, size)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if kind == "forward":
    with torch.no_grad():
        model(inputs)
elif kind == "expected_gradcam":
    ex.ExpectedGradCAM("layer4", baselines=bank)(model, inputs)
elif kind == "deletion":
    mx.Deletion().update(model, inputs, torch.rand(batch, size, size))
elif kind == "insertion":
    mx.Insertion().update(model, inputs, torch.rand(batch, size, size))
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024))
"""


def cuda_peak_mib(kind: str, model: torch.nn.Module, size: int, batch: int) -> float:
    """Peak CUDA memory above the model's own while running `kind` once (inputs and bank included)."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    inputs, bank = torch.randn(batch, 3, size, size, device="cuda"), torch.randn(16, 3, size, size, device="cuda")
    saliency = torch.rand(batch, size, size, device="cuda")
    if kind == "forward":
        with torch.no_grad():
            model(inputs)
    elif kind == "expected_gradcam":
        ex.ExpectedGradCAM("layer4", baselines=bank)(model, inputs)
    else:
        (mx.Deletion() if kind == "deletion" else mx.Insertion()).update(model, inputs, saliency)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def memory_table(model_name: str, size: int, batches: list[int], device: str = "cpu") -> None:
    if device != "cpu":
        model = build(model_name).to(device)
        print(f"\n## Peak memory at defaults ({model_name}, {size} px, {device}; peak allocated above the model's weights)\n")
        print("| batch | method | MiB | / one forward pass |\n| --- | --- | ---: | ---: |")
        for batch in batches:
            forward = cuda_peak_mib("forward", model, size, batch)
            print(f"| {batch} | one forward pass | {forward:.0f} | 1.00 |")
            for kind in ("expected_gradcam", "insertion", "deletion"):
                value = cuda_peak_mib(kind, model, size, batch)
                print(f"| {batch} | {kind} | {value:.0f} | {value / forward:.2f} |", flush=True)
        return
    print(f"\n## Peak memory at defaults ({model_name}, {size} px; growth of peak resident memory, fresh process each)\n")
    print("| batch | method | MiB | / one forward pass |\n| --- | --- | ---: | ---: |")
    for batch in batches:
        def peak(kind: str) -> float:
            out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, kind, model_name, str(size), str(batch)], capture_output=True, text=True, check=True)
            return float(json.loads(out.stdout.strip().splitlines()[-1]))

        forward = peak("forward")
        print(f"| {batch} | one forward pass | {forward:.0f} | 1.00 |")
        for kind in ("expected_gradcam", "insertion", "deletion"):
            value = peak(kind)
            print(f"| {batch} | {kind} | {value:.0f} | {value / forward:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--section", choices=("all", "floor", "scaling", "memory"), default="all")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--methods", nargs="+", help="floor section: only these methods (class names, e.g. ExpectedGradCAM)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    print(f"machine: {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.section in ("all", "floor"):
        floor_table(args.model, args.size, args.batches, args.repeats, args.device, args.methods)
    if args.section in ("all", "scaling"):
        scaling_table(args.repeats, args.device)
    if args.section in ("all", "memory"):
        memory_table(args.model, args.size, args.batches, args.device)


if __name__ == "__main__":
    main()
