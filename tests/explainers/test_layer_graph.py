"""Layer methods record no autograd graph below their target layer; methods with input terms do."""

from __future__ import annotations

import pytest
import torch

from lit_xai.explainers import (
    ExpectedGradCAM,
    GradCAM,
    GradCAMPlusPlus,
    GuidedExpectedGradCAM,
    HiResCAM,
    LayerCAM,
    SmoothGradCAMPlusPlus,
    XGradCAM,
)
from lit_xai.explainers.gradients import forward_with_activations, forward_with_layers

BANK = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def graph_flags(model, explainer, inputs) -> dict[str, list[bool]]:
    """`requires_grad` of the outputs below (features.0) and above (head) the target layer features.3."""
    flags: dict[str, list[bool]] = {"below": [], "above": []}
    hooks = [
        model.features[0].register_forward_hook(lambda m, a, out: flags["below"].append(out.requires_grad)),
        model.head.register_forward_hook(lambda m, a, out: flags["above"].append(out.requires_grad)),
    ]
    try:
        explainer(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return flags


@pytest.mark.parametrize(
    "explainer",
    [
        GradCAM("features.3"),
        GradCAMPlusPlus("features.3"),
        XGradCAM("features.3"),
        HiResCAM("features.3"),
        LayerCAM("features.3"),
        SmoothGradCAMPlusPlus("features.3", samples=2),
        ExpectedGradCAM("features.3", baselines=BANK, draws=3),
        ExpectedGradCAM("features.3", baselines=BANK, draws=3, noise_std=0.1),  # baselines through the model too
    ],
    ids=["gradcam", "gradcam_pp", "xgradcam", "hirescam", "layercam", "smooth_gradcam_pp", "expected_gradcam", "egc_noisy"],
)
def test_no_graph_below_the_target_layer(small_net, explainer) -> None:
    flags = graph_flags(small_net, explainer, torch.randn(2, 3, 8, 8))
    assert flags["below"] and not any(flags["below"])
    assert any(flags["above"])  # the gradient passes need a graph above the layer


def test_input_terms_keep_the_whole_graph(small_net) -> None:
    flags = graph_flags(small_net, GuidedExpectedGradCAM("features.3", baselines=BANK, draws=3), torch.randn(2, 3, 8, 8))
    assert any(flags["below"])


def test_layer_leaf_gives_the_full_graph_gradients(small_net) -> None:
    small_net.eval()
    inputs = torch.randn(2, 3, 8, 8, requires_grad=True)
    out_full, act_full = forward_with_activations(small_net, "features.3", inputs, graph="input")
    (full,) = torch.autograd.grad(out_full[:, 1].sum(), act_full)
    out_leaf, act_leaf = forward_with_activations(small_net, "features.3", inputs.detach())
    assert act_leaf.is_leaf and act_leaf.requires_grad
    (leaf,) = torch.autograd.grad(out_leaf[:, 1].sum(), act_leaf)
    torch.testing.assert_close(leaf, full, rtol=0, atol=0)
    torch.testing.assert_close(out_leaf, out_full, rtol=0, atol=0)
    assert torch.is_grad_enabled()  # the caller's grad mode is restored


def test_graph_mode_is_checked_and_no_grad_is_respected(small_net) -> None:
    with pytest.raises(ValueError, match="graph must be one of"):
        forward_with_layers(small_net, ["features.3"], torch.randn(1, 3, 8, 8), graph="all")
    with torch.no_grad():
        outputs, activations = forward_with_activations(small_net, "features.3", torch.randn(1, 3, 8, 8))
        assert not torch.is_grad_enabled()
    assert not activations.requires_grad and not outputs.requires_grad
