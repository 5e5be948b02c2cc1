"""Input-space explainers: each method's time against captum's for the same number of model evaluations, and
against the plain passes its evaluations need, all measured in one run.

    python benchmarks/input_space.py [--batch 4] [--size 112] [--samples 8] [--masks 64] [--repeats 1]
                                     [--clock wall|cpu] [--threads N]

Model: torchvision resnet18 (random weights, eval) on batch x 3 x size x size. Every method (ours, captum's
and the plain reference) runs the same derived inputs per pass: `chunk` (default: lit-xai's automatic size
for these inputs, `lit_xai.chunking`), except Expected Gradients, which runs all draws in one pass as
captum's GradientShap does (it has no chunking). The plain reference for a gradient method is E chunked passes that
take the target logit's gradient with respect to the input (forward + backward to the input), for a
forward-only method E chunked no-grad forward passes, E the method's number of model evaluations.
Goals (issue 11): at most 1.0 x captum for every shared method, at most 1.2 x the plain passes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, cpu_time, machine  # noqa: E402

import lit_xai.explainers as ours  # noqa: E402
from lit_xai.chunking import automatic_chunk_size  # noqa: E402


def plain_passes(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, evaluations: int, chunk: int, gradient: bool) -> Callable[[], None]:
    """E * B derived inputs (copies of the batch) in passes of `chunk`, with or without the input gradient."""
    total = evaluations * len(inputs)
    index = torch.arange(total) % len(inputs)

    def run() -> None:
        for start in range(0, total, chunk):
            rows = index[start : start + chunk]
            if gradient:
                x = inputs[rows].clone().requires_grad_(True)
                scores = model(x).gather(1, targets[rows, None]).sum()
                torch.autograd.grad(scores, x)
            else:
                with torch.no_grad():
                    model(inputs[rows]).gather(1, targets[rows, None])

    return run


def methods(args: argparse.Namespace, chunk: int, bank: torch.Tensor):  # type: ignore[no-untyped-def]
    """(name, our explainer, captum's call or None, model evaluations per sample, needs gradients)."""
    from captum.attr import GradientShap, InputXGradient, IntegratedGradients, NoiseTunnel, Occlusion, Saliency

    n, per = args.samples, max(1, chunk // args.batch)
    window, stride = args.size // 7, args.size // 7
    windows = (-(-(args.size - window) // stride) + 1) ** 2
    scales = tuple(k / 4 for k in range(1, 5))
    sigma = 0.15  # SmoothGrad's noise, relative to each sample's range; captum takes one absolute std

    def captum_noise(kind: str):  # type: ignore[no-untyped-def]
        def call(model, inputs, targets):  # type: ignore[no-untyped-def]
            std = float(sigma * (inputs.max() - inputs.min()))
            return NoiseTunnel(Saliency(model)).attribute(
                inputs, nt_type=kind, nt_samples=n, nt_samples_batch_size=per, stdevs=std, target=targets, abs=False
            )

        return call

    return [
        ("Saliency", ours.Saliency(reduce="none"), lambda m, x, t: Saliency(m).attribute(x, target=t), 1, True),
        ("InputXGradient", ours.InputXGradient(reduce="none"), lambda m, x, t: InputXGradient(m).attribute(x, target=t), 1, True),
        (f"IntegratedGradients ({n} steps)", ours.IntegratedGradients(steps=n, internal_batch_size=chunk, reduce="none"),
         lambda m, x, t: IntegratedGradients(m).attribute(x, target=t, n_steps=n, method="riemann_right", internal_batch_size=chunk), n, True),
        (f"ExpectedGradients ({n} draws, one pass)", ours.ExpectedGradients(bank, draws=n, internal_batch_size=n * args.batch, reduce="none"),
         lambda m, x, t: GradientShap(m).attribute(x, baselines=bank, n_samples=n, stdevs=0.0, target=t), n, True),
        (f"SmoothGrad ({n} samples)", ours.SmoothGrad(samples=n, internal_batch_size=chunk, reduce="none"), captum_noise("smoothgrad"), n, True),
        (f"SmoothGradSquared ({n} samples)", ours.SmoothGradSquared(samples=n, internal_batch_size=chunk, reduce="none"), captum_noise("smoothgrad_sq"), n, True),
        (f"VarGrad ({n} samples)", ours.VarGrad(samples=n, internal_batch_size=chunk, reduce="none"), captum_noise("vargrad"), n, True),
        (f"SpectralLens (4 scales x {n // 4})", ours.SpectralLens(scales=scales, samples=n // 4, internal_batch_size=chunk), None, n, True),
        (f"ArgLens (4 scales x {n // 4})", ours.ArgLens(scales=scales, samples=n // 4, internal_batch_size=chunk), None, n, True),
        (f"RISE ({args.masks} masks)", ours.RISE(masks=args.masks, internal_batch_size=chunk), None, args.masks, False),
        (f"Occlusion ({window} px windows, stride {stride})", ours.Occlusion(window=window, stride=stride, internal_batch_size=chunk, reduce="none"),
         lambda m, x, t: Occlusion(m).attribute(x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride), target=t, perturbations_per_eval=per),
         windows, False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--masks", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=None, help="derived inputs per pass (default: lit-xai's automatic size)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="cpu: process CPU time (for shared machines)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    timer = best_time if args.clock == "wall" else cpu_time
    torch.manual_seed(0)
    model = resnet18(num_classes=1000).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    inputs = torch.randn(args.batch, 3, args.size, args.size)
    targets = torch.arange(args.batch) % 1000
    bank = torch.randn(8, 3, args.size, args.size)
    chunk = args.chunk or automatic_chunk_size(inputs)
    print(f"machine: {machine()}; {args.clock} clock; resnet18 (random weights), batch {tuple(inputs.shape)}, {chunk} derived inputs per pass")
    print("| method | evaluations / sample | ms | / plain passes | captum ms | / captum |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, explainer, captum, evaluations, gradient in methods(args, chunk, bank):
        seconds = timer(lambda: explainer(model, inputs, targets), args.repeats)
        passes = getattr(explainer, "internal_batch_size", None) or chunk
        plain = timer(plain_passes(model, inputs, targets, evaluations, passes, gradient), args.repeats)
        if captum is not None:
            reference = timer(lambda: captum(model, inputs.clone(), targets), args.repeats)
            cells = f"{reference * 1000:.0f} | {seconds / reference:.2f}"
        else:
            cells = "- | -"
        print(f"| {name} | {evaluations} | {seconds * 1000:.0f} | {seconds / plain:.2f} | {cells} |", flush=True)
    scale = timer(lambda: ours.optimal_noise_scale(model, inputs, samples=4, internal_batch_size=chunk), 1)
    plain = timer(plain_passes(model, inputs, targets, 20 * 4, chunk, False), 1)
    print(f"| optimal_noise_scale (20 scales x 4) | 80 | {scale * 1000:.0f} | {scale / plain:.2f} | - | - |")


if __name__ == "__main__":
    main()
