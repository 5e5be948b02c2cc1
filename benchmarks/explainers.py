"""Each explainer's time divided by one plain forward pass of the same batch, and by pytorch-grad-cam's
time for the same method, all measured in one run.

    python benchmarks/explainers.py [--batch 8] [--size 224] [--score-batch 2] [--score-size 64] [--only-more]

Model: torchvision resnet18 (random weights, eval), target layer `layer4`. Gradient methods run on
batch x 3 x size x size; Score-CAM and Ablation-CAM (512 masked passes per image) on a smaller batch.
Goals (issue 3): gradient CAMs at most 1.3 forward passes; faster than pytorch-grad-cam.

The methods of issue 13 are timed against their reference library in the same run (pytorch-grad-cam, or
torchcam for CAM, SS-CAM and IS-CAM; goal: at most 1.0 x the reference). `--only-more` runs those alone.
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


MORE_GRAD_CAM_LIB = {  # ours (options) vs pytorch-grad-cam, same batch, layer4, target 1
    "GradCAMElementWise": {},
    "EigenCAM": {},
    "EigenGradCAM": {},
    "KPCA_CAM": {},
    "FEM": {},
    "ShapleyCAM": {},
    "FinerCAM": {},
    "FullGrad": {},
}


def grad_cam_lib_reference(name: str, model: torch.nn.Module, batch: int):  # type: ignore[no-untyped-def]
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layers = [] if name == "FullGrad" else [model.layer4]
    cam = getattr(pytorch_grad_cam, name)(model=model, target_layers=layers)
    if name == "FinerCAM":  # the authors' contrastive target around class 1
        return lambda inputs: cam(input_tensor=inputs, targets=None, target_idx=1)
    targets = [ClassifierOutputTarget(1)] * batch
    return lambda inputs: cam(input_tensor=inputs, targets=targets)


def torchcam_reference(name: str, model: torch.nn.Module, samples: int):  # type: ignore[no-untyped-def]
    """torchcam's extractor: the user's forward pass, then the map (hooks registered once, outside the timing)."""
    from torchcam import methods

    options = {"CAM": {"fc_layer": "fc"}, "SSCAM": {"num_samples": samples, "batch_size": 64}, "ISCAM": {"num_samples": samples, "batch_size": 64}}
    cam = getattr(methods, name)(model, "layer4", **options[name])

    def run(inputs: torch.Tensor) -> object:
        with torch.no_grad():
            scores = model(inputs)
        return cam(class_idx=1, scores=scores)

    return run


def interleaved_times(ours_fn, ref_fn, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best times of ours and the reference, measured alternately (one warm-up each), so that a change of
    load on a shared machine hits both alike."""
    ours_times, ref_times = [], []
    for _ in range(repeats):
        ours_times.append(best_time(ours_fn, 1, warmup=0 if ours_times else 1))
        ref_times.append(best_time(ref_fn, 1, warmup=0 if ref_times else 1))
    return min(ours_times), min(ref_times)


def more_table(model: torch.nn.Module, inputs: torch.Tensor, rows: dict[str, tuple[dict, object]], repeats: int) -> None:
    """Rows: name -> (our options, reference callable); ours and the reference alternate in the same run."""
    print(f"\nbatch {tuple(inputs.shape)}")
    print("| method | ms | reference | reference ms | / reference |")
    print("| --- | ---: | --- | ---: | ---: |")
    targets = torch.ones(len(inputs), dtype=torch.long)
    for name, (options, (library, ref)) in rows.items():
        layer = {} if name == "FullGrad" else {"target_layer": "layer4"}
        explainer = getattr(ours, name)(**layer, **options)
        seconds, ref_seconds = interleaved_times(lambda: explainer(model, inputs, targets), lambda: ref(inputs), repeats)
        print(f"| {name} | {seconds * 1000:.1f} | {library} | {ref_seconds * 1000:.1f} | {seconds / ref_seconds:.2f} |")


def more_cams(model: torch.nn.Module, args: argparse.Namespace) -> None:
    names = args.methods or [*MORE_GRAD_CAM_LIB, "CAM", "SSCAM", "ISCAM"]
    inputs = torch.randn(args.batch, 3, args.size, args.size)
    rows = {name: (MORE_GRAD_CAM_LIB[name], ("pytorch-grad-cam", grad_cam_lib_reference(name, model, args.batch))) for name in names if name in MORE_GRAD_CAM_LIB}
    if "CAM" in names:
        rows["CAM"] = ({}, ("torchcam", torchcam_reference("CAM", model, 0)))
    if rows:
        more_table(model, inputs, rows, args.repeats)
    score_inputs = torch.randn(args.score_batch, 3, args.score_size, args.score_size)
    samples = args.score_samples
    options = {"samples": samples, "internal_batch_size": 64}
    rows = {name: (options, ("torchcam", torchcam_reference(name, model, samples))) for name in ("SSCAM", "ISCAM") if name in names}
    if rows:
        more_table(model, score_inputs, rows, args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--score-batch", type=int, default=2)
    parser.add_argument("--score-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--score-samples", type=int, default=2, help="SS-CAM / IS-CAM draws (each: 512 masked passes per image)")
    parser.add_argument("--only-more", action="store_true", help="only the methods of issue 13, against their references")
    parser.add_argument("--methods", nargs="*", help="with --only-more: a subset of them")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = resnet18(num_classes=1000).eval()
    print(f"machine: {machine()}; resnet18 (random weights), target layer layer4")
    if args.only_more:
        more_cams(model, args)
        return
    table(model, torch.randn(args.batch, 3, args.size, args.size), GRADIENT + list(OURS_ONLY), args.repeats)
    table(model, torch.randn(args.score_batch, 3, args.score_size, args.score_size), SCORE, args.repeats)
    more_cams(model, args)


if __name__ == "__main__":
    main()
