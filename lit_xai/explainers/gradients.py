"""Gradient sources for CAM methods: what dy_c/dA is and where it is evaluated.

A CAM method is a gradient source x a weighting rule (DESIGN.md). The plain source here evaluates the
gradient of the target score at the input itself, in one forward pass and one partial backward pass
(`torch.autograd.grad` from the scores to the layer's activations only).

Layer methods build no autograd graph below their target layer: the forward pass runs without
gradients up to the layer, whose output enters the rest of the network as the leaf that gradients are
taken with respect to (`forward_with_layers(..., graph="layer")`, the default). Methods that also need
gradients at the input (guided variants) ask for `graph="input"`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lit_xai.explainers.layers import captured_output, get_layer
from lit_xai.explainers.tokens import TokenView
from lit_xai.targets import model_outputs, resolved_scores


@dataclass
class LayerGradients:
    """Activations `A (B, K, *s)` of the target layer at the input, `dy_c/dA` of the same shape, and the targets used."""

    activations: Tensor
    gradients: Tensor
    targets: Tensor | None


GRAPHS = ("layer", "input")


def forward_with_layers(
    model: nn.Module, names: Sequence[str], inputs: Tensor, graph: str = "layer", samples: Tensor | None = None
) -> tuple[Tensor, list[Tensor]]:
    """Run `model(inputs)` once; return the outputs and the activations of every named layer.

    The names must be in the order the forward pass runs them (shallow to deep); every layer's output is
    seen as `(B, K, *spatial)` like the inputs (transformer tokens are rearranged, `tokens.spatial_view`).
    Hooks are removed on exit, also when this raises.

    Where gradients are enabled, `graph="layer"` records the autograd graph from the first named layer
    on only: its activations are a leaf that requires grad, and nothing below it is recorded (no
    parameter or input gradient can be taken). `graph="input"` records the whole forward pass (the
    caller sets `inputs.requires_grad_()` for input gradients). `samples`: each row's sample when the
    inputs are derived from a batch (`lit_xai.targets.model_outputs`: extra inputs follow them).
    """
    outputs, activations, _ = forward_with_views(model, names, inputs, graph, samples)
    return outputs, activations


def forward_with_views(
    model: nn.Module, names: Sequence[str], inputs: Tensor, graph: str = "layer", samples: Tensor | None = None
) -> tuple[Tensor, list[Tensor], list[TokenView]]:
    """`forward_with_layers`, plus each layer's `TokenView` (how its output maps to the activations)."""
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {GRAPHS}, got {graph!r}")
    layers = [get_layer(model, name) for name in names]
    order: list[str] = []
    from_layer = graph == "layer" and torch.is_grad_enabled()
    with ExitStack() as stack:
        if from_layer:
            stack.enter_context(torch.no_grad())  # switched on again by the first layer's hook
        captured = []
        for index, (layer, name) in enumerate(zip(layers, names)):
            leaf = from_layer and index == 0
            captured.append(stack.enter_context(captured_output(layer, name, tuple(inputs.shape), leaf=leaf)))
            handle = layer.register_forward_hook(lambda module, args, output, name=name: order.append(name))
            stack.callback(handle.remove)
        outputs = model_outputs(model, inputs, samples)
    for capture in captured:
        if capture.error is not None:
            raise capture.error
    missing = [name for name, capture in zip(names, captured) if not capture.found]
    if missing:
        raise ValueError(f"target layers {missing} did not run in the model's forward pass; choose layers that forward uses")
    if order != list(names):
        raise ValueError(
            f"target_layers must be ordered shallow to deep, as the forward pass runs them: got {list(names)}, "
            f"the forward pass runs them as {order}"
        )
    return outputs, [capture.found[0][0] for capture in captured], [capture.found[0][1] for capture in captured]


def forward_with_activations(
    model: nn.Module, layer_name: str, inputs: Tensor, graph: str = "layer", samples: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Run `model(inputs)` once and return `(outputs, activations of layer_name)` (as in `forward_with_layers`)."""
    outputs, (activations,) = forward_with_layers(model, [layer_name], inputs, graph, samples)
    return outputs, activations


def gradients_of_scores(scores: Tensor, activations: Tensor, layer_name: str) -> Tensor:
    """`d(sum_b scores_b)/dA`: per-sample gradients, since samples do not interact in eval mode."""
    (gradients,) = torch.autograd.grad(scores.sum(), activations, allow_unused=True)
    if gradients is None:
        raise ValueError(f"the model's output does not depend on target layer {layer_name!r}; choose a layer on the path to the output")
    return gradients


def plain_gradients(model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> LayerGradients:
    """`A(x)` and `dy_c/dA` at `x` (Grad-CAM's source)."""
    outputs, activations = forward_with_activations(model, layer_name, inputs)
    scores, targets = resolved_scores(outputs, targets)
    gradients = gradients_of_scores(scores, activations, layer_name)
    # float32 (the inputs' dtype) accumulation also when the forward pass ran under autocast
    return LayerGradients(activations.detach().to(inputs.dtype), gradients.detach().to(inputs.dtype), targets)
