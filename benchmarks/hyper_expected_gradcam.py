"""Hyper Expected Grad-CAM against its floor and against Expected Grad-CAM with the same draws (issue 27).

    python benchmarks/hyper_expected_gradcam.py [--model resnet18] [--size 64] [--batch 2] [--draws 8] [--threads 1] [--device cpu]

The method's floor is the Expected Grad-CAM evaluations its definition needs, with the frequency layers
sharing one: one Expected Grad-CAM of the batch at the shallowest frequency layer (the same path points
give every frequency layer's and the target layer's expected gradients: one forward pass per chunk, one
backward pass to that layer), plus one Expected Grad-CAM of the target layer over the N neighbourhood
crops the stage parameters ask for (made here beforehand, so cropping is not part of the floor). Both are
timed as plain `ExpectedGradCAM` calls at default chunking. Also printed: the frequency stage as one
evaluation per layer (what the method did before issue 27) against the shared one, and how far apart
their maps are. Random-weight torchvision model in eval mode, a bank of 16 random baselines (its
activations cached, as in a validation loop), best of `--repeats` interleaved rounds after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, machine  # noqa: E402

from lit_xai.explainers import ExpectedGradCAM, HyperExpectedGradCAM  # noqa: E402
from lit_xai.explainers.resolution.hyper_expected_gradcam import (  # noqa: E402
    crop_and_upscale,
    frequency_layers,
    neighbourhood_boxes,
    stage_parameters,
)


def neighbourhood_crops(inputs: torch.Tensor, target_map: torch.Tensor, explainer: HyperExpectedGradCAM) -> tuple[torch.Tensor, torch.Tensor]:
    """The crops stage 2 explains (all samples and stages) and the sample each belongs to."""
    size = tuple(inputs.shape[2:])
    parameters = stage_parameters(target_map, size, explainer.threshold, explainer.max_stages, explainer.stages)
    ir = parameters.inflation
    samples, boxes = [], []
    for b in range(inputs.shape[0]):
        for cells in parameters.kernels[b].tolist():
            if cells:
                step = cells if explainer.stride is None else explainer.stride
                found = neighbourhood_boxes(size, (cells * ir[0], cells * ir[1]), (step * ir[0], step * ir[1]))
                boxes.append(found)
                samples.append(torch.full((len(found),), b))
    sample = torch.cat(samples).to(inputs.device)
    return crop_and_upscale(inputs, sample, torch.cat(boxes).to(inputs.device)), sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--layer", default="layer4")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU (0: leave as is)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(num_classes=1000).eval().to(device)
    inputs = torch.randn(args.batch, 3, args.size, args.size, device=device)
    bank = torch.randn(16, 3, args.size, args.size, device=device)
    targets = torch.arange(args.batch, device=device) % 1000

    hyper = HyperExpectedGradCAM(args.layer, baselines=bank, draws=args.draws)
    names = [*frequency_layers(model, inputs, args.layer), args.layer]
    egc = ExpectedGradCAM(args.layer, "none", baselines=bank, draws=args.draws)
    shallowest = ExpectedGradCAM(names[0], "none", baselines=bank, draws=args.draws)
    per_layer = {name: ExpectedGradCAM(name, "none", baselines=bank, draws=args.draws) for name in names}
    target_map = egc(model, inputs, targets)
    crops, sample = neighbourhood_crops(inputs, target_map, hyper)
    crop_targets = targets[sample]

    print(f"machine: {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"\n{args.model}, {args.size} px, batch {args.batch}, {args.draws} draws, {torch.get_num_threads()} thread(s), {device.type}; "
        f"{len(names) - 1} frequency layers ({', '.join(names[:-1])}) + {args.layer}; {len(crops)} neighbourhoods\n"
    )
    # interleaved: each round runs every candidate once, and each keeps its best round, so a shared
    # machine's drifting speed touches them alike
    candidates = {
        "egc": lambda: egc(model, inputs, targets),
        "separate": lambda: [e(model, inputs, targets) for e in per_layer.values()],
        "shared": lambda: hyper.layer_maps(model, names, inputs, targets),
        "shallow": lambda: shallowest(model, inputs, targets),
        "crops": lambda: egc(model, crops, crop_targets),
        "hyper": lambda: hyper(model, inputs, targets),
    }
    best: dict[str, float] = {}
    for key in candidates:
        candidates[key]()  # warm-up (caches of the bank's activations filled)
    for _ in range(args.repeats):
        for key, fn in candidates.items():
            best[key] = min(best.get(key, float("inf")), best_time(fn, 1, warmup=0))
    egc_time, separate, shared, shallow_time, crops_time, hyper_time = (best[key] for key in candidates)
    floor = shallow_time + crops_time

    maps, _ = hyper.layer_maps(model, names, inputs, targets)
    gap = max(
        float((shared_map - e(model, inputs, targets)).abs().max() / e(model, inputs, targets).abs().max().clamp_min(1e-30))
        for shared_map, e in zip(maps, per_layer.values())
    )
    print("| what | ms | / Expected Grad-CAM |")
    print("| --- | ---: | ---: |")
    rows = [
        (f"Expected Grad-CAM at {args.layer} (the batch)", egc_time),
        (f"frequency stage, one evaluation per layer ({len(names)} evaluations, before)", separate),
        (f"frequency stage, one shared evaluation ({len(names)} layers)", shared),
        (f"floor: Expected Grad-CAM at {names[0]} (the batch)", shallow_time),
        (f"floor: Expected Grad-CAM at {args.layer} over the {len(crops)} neighbourhood crops", crops_time),
        ("floor (sum of the two)", floor),
        ("Hyper Expected Grad-CAM", hyper_time),
    ]
    for label, seconds in rows:
        print(f"| {label} | {seconds * 1000:.0f} | {seconds / egc_time:.2f} |")
    print(f"\nHyper / floor: {hyper_time / floor:.2f}; Hyper / Expected Grad-CAM: {hyper_time / egc_time:.2f}; "
          f"shared / separate frequency stage: {shared / separate:.2f}")
    print(f"largest difference between a shared and a separate layer map, relative to that map's maximum: {gap:.1e}")


if __name__ == "__main__":
    main()
