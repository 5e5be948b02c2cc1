"""LRP's time against zennit's for the same composite and model, and against one plain forward pass, all
measured in one run.

    python benchmarks/lrp.py [--batch 4] [--size 224] [--repeats 3] [--models resnet18 vgg11_bn]

Models: torchvision resnet18 and vgg11_bn (random weights, eval, float32), target class 1; zennit with its
ResNet / VGG canonizer. Goals (issue 12): at most 1.0 x zennit and at most 3 forward passes' worth of
time (one forward, one modified backward).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision import models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from lit_xai.explainers import LRP  # noqa: E402

COMPOSITES = ["epsilon_plus", "epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon_alpha2_beta1_flat"]


def zennit_call(model: torch.nn.Module, name: str, inputs: torch.Tensor, target: int):  # type: ignore[no-untyped-def]
    try:
        from zennit import composites
        from zennit.attribution import Gradient
        from zennit.torchvision import ResNetCanonizer, VGGCanonizer
    except ImportError:
        return None
    canonizer = VGGCanonizer if isinstance(model, models.VGG) else ResNetCanonizer
    kind = {
        "epsilon_plus": composites.EpsilonPlus,
        "epsilon_plus_flat": composites.EpsilonPlusFlat,
        "epsilon_gamma_box": composites.EpsilonGammaBox,
        "epsilon_alpha2_beta1": composites.EpsilonAlpha2Beta1,
        "epsilon_alpha2_beta1_flat": composites.EpsilonAlpha2Beta1Flat,
    }[name]
    extra = {"low": -3.0 * torch.ones_like(inputs), "high": 3.0 * torch.ones_like(inputs)} if name == "epsilon_gamma_box" else {}
    one_hot = torch.zeros(len(inputs), 1000)
    one_hot[:, target] = 1.0

    def run() -> None:
        with Gradient(model=model, composite=kind(canonizers=[canonizer()], **extra)) as attributor:
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
    print("| composite | ms | / forward pass | / forward + input gradient | zennit ms | / zennit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in COMPOSITES:
        bounds = {"low": -3.0, "high": 3.0} if name == "epsilon_gamma_box" else {}
        explainer = LRP(name, **bounds)
        functions = {"forward": forward, "gradient": gradient, "ours": lambda: explainer(model, inputs, targets)}
        reference = zennit_call(model, name, inputs, 1)
        if reference is not None:
            functions["zennit"] = reference
        times = interleaved(functions, repeats)
        ref_cells = f"{times['zennit'] * 1000:.1f} | {times['ours'] / times['zennit']:.2f}" if "zennit" in times else "- | -"
        print(
            f"| {name} | {times['ours'] * 1000:.1f} | {times['ours'] / times['forward']:.2f} | "
            f"{times['ours'] / times['gradient']:.2f} | {ref_cells} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["resnet18", "vgg11_bn"])
    args = parser.parse_args()
    print(f"machine: {machine()}; random weights, eval, float32, target class 1")
    inputs = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    for model_name in args.models:
        table(model_name, inputs, args.repeats)


if __name__ == "__main__":
    main()
