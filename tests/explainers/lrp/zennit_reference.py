"""zennit's composites with the canonizer of the torchvision network they explain: the LRP reference that
tests/explainers/lrp/test_lrp.py compares with and benchmarks/lrp.py times (zennit is a test-only dependency)."""

from __future__ import annotations

from torch import nn
from torchvision.models import VGG

COMPOSITES = ("epsilon_plus", "epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon_alpha2_beta1_flat")


def zennit_composite(model: nn.Module, name: str, low: object = None, high: object = None):  # type: ignore[no-untyped-def]
    """zennit's composite `name` with its VGG or ResNet canonizer; `low` / `high` are epsilon_gamma_box's bounds."""
    from zennit import composites
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    kind = {
        "epsilon_plus": composites.EpsilonPlus,
        "epsilon_plus_flat": composites.EpsilonPlusFlat,
        "epsilon_gamma_box": composites.EpsilonGammaBox,
        "epsilon_alpha2_beta1": composites.EpsilonAlpha2Beta1,
        "epsilon_alpha2_beta1_flat": composites.EpsilonAlpha2Beta1Flat,
    }[name]
    canonizer = VGGCanonizer() if isinstance(model, VGG) else ResNetCanonizer()
    bounds = {"low": low, "high": high} if name == "epsilon_gamma_box" else {}
    return kind(canonizers=[canonizer], **bounds)
