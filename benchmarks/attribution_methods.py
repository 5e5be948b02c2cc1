"""Issue 25's methods against captum's / pytorch-grad-cam's time on the same work, measured in one run.

    python benchmarks/attribution_methods.py [--batch 4] [--size 112] [--samples 8] [--patch 28] [--repeats 1]
                                             [--clock wall|cpu] [--threads N] [--device cpu|cuda]

Model: torchvision resnet18 (random weights, eval) on batch x 3 x size x size; captum's DeepLift-family and
Deconvolution run on a copy with one ReLU module per use (captum cannot take the reused in-place ReLU; the
arithmetic is the same). Same work on both sides: the same derived inputs (draws, coalitions, permutations,
noisy copies) per sample and, where the reference can batch (`perturbations_per_eval`, `nt_samples_batch_size`),
the same number per pass as lit-xai's automatic chunk. Segment methods use a grid of `patch` px patches.
Goal (issue 25): at most 1.0 x the reference for every method.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import best_time, cpu_time, machine  # noqa: E402

import lit_xai.explainers as ours  # noqa: E402
from lit_xai.chunking import automatic_chunk_size  # noqa: E402
from lit_xai.segments import segments  # noqa: E402
from tests.explainers.attribution_parity.models import one_relu_per_use  # noqa: E402  (captum's copy of the ResNet)


def methods(args: argparse.Namespace, model: nn.Module, inputs: torch.Tensor, chunk: int):  # type: ignore[no-untyped-def]
    """(name, our call, the reference's call) on (model, inputs, targets)."""
    import pytorch_grad_cam as pgc
    from captum.attr import (
        Deconvolution, DeepLift, DeepLiftShap, FeatureAblation, GradientShap, KernelShap, Lime, NoiseTunnel, Saliency,
        ShapleyValueSampling,
    )
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    copy_model = one_relu_per_use(model)
    copy_model.maxpool = model.maxpool = nn.Identity()  # captum's DeepLift is wrong on ReLU -> MaxPool (docs/explainers.md)
    n, bank = args.samples, torch.randn(4, *inputs.shape[1:], generator=torch.Generator().manual_seed(1)).to(inputs.device)
    ids = segments(inputs, patch_size=args.patch)
    mask = ids.unsqueeze(1)
    per = max(1, chunk // inputs.shape[0])
    sigma = float(0.15 * (inputs.max() - inputs.min()))
    coalition = dict(patch_size=args.patch, samples=n, internal_batch_size=chunk)

    def per_sample(attribute: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def call(m, x, t):  # type: ignore[no-untyped-def]
            return torch.cat([attribute(m, x[i : i + 1], t[i : i + 1], mask[i : i + 1]) for i in range(len(x))])

        return call

    def pgc_call(method: str, **options):  # type: ignore[no-untyped-def]
        def call(m, x, t):  # type: ignore[no-untyped-def]
            cam = getattr(pgc, method)(model=m, target_layers=[m.layer3])
            return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in t], **options)

        return call

    def dff_call(m, x, t):  # type: ignore[no-untyped-def]
        return pgc.DeepFeatureFactorization(m, m.layer4, computation_on_concepts=m.fc)(x, n_components=4)

    return [
        ("DeepLift", lambda m, x, t: ours.DeepLift(reduce="none")(model, x, t),
         lambda m, x, t: DeepLift(copy_model).attribute(x, baselines=0.0, target=t)),
        ("DeepLiftShap (4 baselines)", lambda m, x, t: ours.DeepLiftShap(bank, reduce="none", internal_batch_size=chunk)(model, x, t),
         lambda m, x, t: DeepLiftShap(copy_model).attribute(x, baselines=bank, target=t)),
        (f"GradientShap ({n} samples)", lambda m, x, t: ours.GradientShap(bank, samples=n, stdevs=0.1, internal_batch_size=n * len(x), reduce="none")(model, x, t),
         lambda m, x, t: GradientShap(model).attribute(x, baselines=bank, n_samples=n, stdevs=0.1, target=t)),
        ("Deconvolution", lambda m, x, t: ours.Deconvolution(reduce="none")(model, x, t),
         lambda m, x, t: Deconvolution(copy_model).attribute(x, target=t)),
        (f"NoiseTunnel(Saliency) ({n} samples)", lambda m, x, t: ours.NoiseTunnel(ours.Saliency(abs=False, reduce="none"), samples=n, internal_batch_size=chunk)(model, x, t),
         lambda m, x, t: NoiseTunnel(Saliency(model)).attribute(x, nt_samples=n, nt_samples_batch_size=per, stdevs=sigma, target=t, abs=False)),
        (f"FeatureAblation ({args.patch} px patches)", lambda m, x, t: ours.FeatureAblation(patch_size=args.patch, internal_batch_size=chunk, reduce="none")(model, x, t),
         lambda m, x, t: FeatureAblation(model).attribute(x, target=t, feature_mask=mask, perturbations_per_eval=per)),
        (f"ShapleyValueSampling ({n} permutations)", lambda m, x, t: ours.ShapleyValueSampling(**coalition, reduce="none")(model, x, t),
         lambda m, x, t: ShapleyValueSampling(model).attribute(x, target=t, feature_mask=mask, n_samples=n, perturbations_per_eval=per)),
        (f"KernelShap ({n * 8} coalitions)", lambda m, x, t: ours.KernelShap(**{**coalition, "samples": n * 8}, reduce="none")(model, x, t),
         per_sample(lambda m, x, t, f: KernelShap(model).attribute(x, target=t, feature_mask=f, n_samples=n * 8, perturbations_per_eval=chunk))),
        (f"Lime ({n * 8} coalitions)", lambda m, x, t: ours.Lime(**{**coalition, "samples": n * 8}, reduce="none")(model, x, t),
         per_sample(lambda m, x, t, f: Lime(model, interpretable_model=SkLearnLinearRegression()).attribute(
             x, target=t, feature_mask=f, n_samples=n * 8, perturbations_per_eval=chunk))),
        ("GradCAM augment (6 views)", lambda m, x, t: ours.GradCAM("layer3", augment=True)(model, x, t), pgc_call("GradCAM", aug_smooth=True)),
        ("GradCAM eigen_smooth", lambda m, x, t: ours.GradCAM("layer3", eigen_smooth=True)(model, x, t), pgc_call("GradCAM", eigen_smooth=True)),
        ("deep_feature_factorization (4 concepts)", lambda m, x, t: ours.deep_feature_factorization(model, x, "layer4", components=4, head="fc"), dff_call),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--patch", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default=None, help="run the methods whose name contains this")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    timer = best_time if args.clock == "wall" else cpu_time
    torch.manual_seed(0)
    model = resnet18(num_classes=10).eval().to(args.device)
    inputs = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(args.device)
    targets = (torch.arange(args.batch) % 10).to(args.device)
    chunk = automatic_chunk_size(inputs)
    print(f"machine: {machine()}; {args.clock} clock; resnet18 (random weights), batch {tuple(inputs.shape)}, {chunk} derived inputs per pass")
    print("| method | lit-xai ms | reference ms | / reference |")
    print("| --- | ---: | ---: | ---: |")
    for name, ours_call, reference in methods(args, model, inputs, chunk):
        if args.only and args.only not in name:
            continue
        seconds = timer(lambda: ours_call(model, inputs, targets), args.repeats)
        reference_model = copy.deepcopy(model)  # pytorch-grad-cam fills parameter .grad
        other = timer(lambda: reference(reference_model, inputs.clone(), targets), args.repeats)
        print(f"| {name} | {seconds * 1000:.0f} | {other * 1000:.0f} | {seconds / other:.2f} |", flush=True)


if __name__ == "__main__":
    main()
