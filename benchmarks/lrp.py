"""LRP's time against zennit's for the same composite and model, and against one plain forward pass, all
measured in one run.

    python benchmarks/lrp.py [--batch 4] [--size 224] [--repeats 3] [--models resnet18 vgg11_bn] [--threads N]

Models: torchvision resnet18 and vgg11_bn (random weights, eval, float32), target class 1; zennit with its
ResNet / VGG canonizer. Goals (issue 12): at most 1.0 x zennit and at most 3 forward passes' worth of
time (one forward, one modified backward). "ours" calls one explainer repeatedly (the callback's use: the
weights its rules derive are kept between calls); "new explainer" builds a new one for every call, so it
derives them every time, as zennit does.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision import models

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from lit_xai.explainers import LRP  # noqa: E402
from lit_xai.explainers.lrp.composites import assign_rules  # noqa: E402
from tests.explainers.lrp.zennit_reference import COMPOSITES, zennit_composite  # noqa: E402

# layer-sized operations per Conv/Linear (its forward call = 1, its transpose = 1), by rule and input sign;
# a stacked call on [x+, x-] (twice the input channels) counts 2, and so does its transpose
OPERATIONS = {
    ("zero", True): 2, ("zero", False): 2, ("epsilon", True): 2, ("epsilon", False): 2,
    ("z_plus", True): 3, ("z_plus", False): 5,
    ("alpha_beta", True): 4, ("alpha_beta", False): 6,
    ("gamma", True): 4, ("gamma", False): 6,  # minus 1 where the W^T path is skipped (no relevance at y < 0)
    ("flat", True): 1, ("flat", False): 1,  # + a one-channel pass and transpose (not counted)
    ("z_box", True): 5, ("z_box", False): 5,
}


def operation_floor(model: torch.nn.Module, name: str, inputs: torch.Tensor) -> float:
    """The composite's layer-sized operations, weighted by each layer's multiply-adds, per forward pass's.

    Gamma's `W^T` path runs where relevance reaches units with y < 0: in torchvision ResNets the layers
    whose output enters a residual sum (`conv2` of a BasicBlock, `conv3` of a Bottleneck, the downsampling
    shortcut); after a ReLU that feeds the next layer's input it carries none (as counted in the run).
    """
    from torchvision.models.resnet import BasicBlock, Bottleneck

    rules = assign_rules(model, name, {})
    into_sums = set()
    for block in model.modules():
        if isinstance(block, (BasicBlock, Bottleneck)):
            into_sums.add(block.conv3 if isinstance(block, Bottleneck) else block.conv2)
            if block.downsample is not None:
                into_sums.add(block.downsample[0])
    sums = {"forward": 0.0, "lrp": 0.0}
    handles = []
    for layer_name, module in model.named_modules():
        if layer_name not in rules:
            continue

        def hook(mod, args, output, layer_name=layer_name):  # type: ignore[no-untyped-def]
            x = args[0]
            weight = mod.weight
            macs = output.numel() * weight[0].numel()  # out positions x (C_in / groups) x kernel
            rule, nonnegative = rules[layer_name], bool(x.min() >= 0)
            count = OPERATIONS[(rule, nonnegative)]
            if rule == "gamma" and mod not in into_sums:
                count -= 1
            sums["forward"] += macs
            sums["lrp"] += macs * count

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return sums["lrp"] / sums["forward"]



def zennit_call(model: torch.nn.Module, name: str, inputs: torch.Tensor, target: int):  # type: ignore[no-untyped-def]
    try:
        from zennit.attribution import Gradient
    except ImportError:
        return None
    bounds = (-3.0 * torch.ones_like(inputs), 3.0 * torch.ones_like(inputs)) if name == "epsilon_gamma_box" else (None, None)
    one_hot = torch.zeros(len(inputs), 1000)
    one_hot[:, target] = 1.0

    def run() -> None:
        with Gradient(model=model, composite=zennit_composite(model, name, *bounds)) as attributor:
            attributor(inputs, one_hot)

    return run


def interleaved(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function, measured round-robin (one call of each per round, after one warm-up
    round) so that load drifts on a shared machine hit all of them alike."""
    best = {name: float("inf") for name in functions}
    for round_ in range(repeats + 1):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            if round_:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def table(model_name: str, inputs: torch.Tensor, repeats: int) -> None:
    torch.manual_seed(0)
    model = getattr(models, model_name)(num_classes=1000).eval()
    targets = torch.ones(len(inputs), dtype=torch.long)

    def forward() -> None:
        with torch.no_grad():
            model(inputs)

    def gradient() -> None:
        x = inputs.clone().requires_grad_(True)
        torch.autograd.grad(model(x)[:, 1].sum(), x)

    print(f"\n{model_name}, batch {tuple(inputs.shape)}")
    print(
        "| composite | floor (layer-sized operations / forward pass) | ms | / forward pass | / forward + input gradient "
        "| new explainer ms | / forward pass | zennit ms | / zennit | new / zennit |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in COMPOSITES:
        bounds = {"low": -3.0, "high": 3.0} if name == "epsilon_gamma_box" else {}
        explainer = LRP(name, **bounds)
        functions = {
            "forward": forward,
            "gradient": gradient,
            "ours": lambda: explainer(model, inputs, targets),
            "new": lambda: LRP(name, **bounds)(model, inputs, targets),
        }
        reference = zennit_call(model, name, inputs, 1)
        if reference is not None:
            functions["zennit"] = reference
        times = interleaved(functions, repeats)
        ref_cells = (
            f"{times['zennit'] * 1000:.1f} | {times['ours'] / times['zennit']:.2f} | {times['new'] / times['zennit']:.2f}"
            if "zennit" in times
            else "- | - | -"
        )
        print(
            f"| {name} | {operation_floor(model, name, inputs):.2f} | {times['ours'] * 1000:.1f} | {times['ours'] / times['forward']:.2f} | "
            f"{times['ours'] / times['gradient']:.2f} | {times['new'] * 1000:.1f} | {times['new'] / times['forward']:.2f} | {ref_cells} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["resnet18", "vgg11_bn"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice, OMP_NUM_THREADS)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; random weights, eval, float32, target class 1")
    inputs = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    for model_name in args.models:
        table(model_name, inputs, args.repeats)


if __name__ == "__main__":
    main()
