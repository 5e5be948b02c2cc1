"""CAM: the classifier's own weights on a global-average-pooling + linear head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import Tensor, nn

from lit_xai.explainers.cam.base import LayerExplainer
from lit_xai.explainers.cam.weighting import weighted_channel_sum
from lit_xai.explainers.gradients import forward_with_activations
from lit_xai.explainers.layers import get_layer
from lit_xai.explainers.upsample import UpsampleMode, upsample
from lit_xai.targets import is_regression, model_outputs, resolve_targets


@contextmanager
def recorded_linear_calls(model: nn.Module, names: list[str]) -> Iterator[dict[str, tuple[Tensor, Tensor]]]:
    """Inside the block, `{name: (input, output)}` of each named nn.Linear's last call; hooks removed on exit."""
    calls: dict[str, tuple[Tensor, Tensor]] = {}
    with ExitStack() as stack:
        for name in names:

            def hook(module: nn.Module, args: tuple[object, ...], output: Tensor, name: str = name) -> None:
                if args and isinstance(args[0], Tensor):
                    calls[name] = (args[0], output)

            stack.callback(get_layer(model, name).register_forward_hook(hook).remove)
        yield calls


def close(a: Tensor, b: Tensor) -> bool:
    """Per-sample values equal up to float32 round-off, relative to the larger magnitude; tensors of
    different sizes (e.g. a hidden layer of a two-layer MLP head and the model's output) are not close."""
    if a.shape[0] != b.shape[0] or a[0].numel() != b[0].numel():
        return False
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    scale = float(torch.maximum(a.abs().max(), b.abs().max()).clamp_min(1e-12))
    return bool((a - b).abs().max() <= 1e-4 * scale)


def gap_input_layer(model: nn.Module, inputs: Tensor, linear_names: list[str]) -> str:
    """The deepest module, run once, whose output `(B, K, *s)` (more than one position) the head averages: its spatial mean is the
    input of a linear layer whose output is the model's output. A ValueError when there is none."""
    outputs_of: dict[str, list[Tensor]] = {}
    with ExitStack() as stack, torch.no_grad():
        for name, module in model.named_modules():
            if name:

                def hook(module: nn.Module, args: object, output: object, name: str = name) -> None:
                    spatial = isinstance(output, Tensor) and output.ndim == inputs.ndim and output[0, 0].numel() > 1
                    if spatial and output.shape[0] == inputs.shape[0]:
                        outputs_of.setdefault(name, []).append(output)

                stack.callback(module.register_forward_hook(hook).remove)
        calls = stack.enter_context(recorded_linear_calls(model, linear_names))
        outputs = model_outputs(model, inputs).reshape(len(inputs), -1)
    heads = [features.reshape(len(inputs), -1) for features, result in calls.values() if close(result, outputs)]
    for name in reversed(list(outputs_of)):  # hooks fire as modules finish: containers after their children
        if len(outputs_of[name]) == 1 and any(close(outputs_of[name][0].flatten(2).mean(dim=2), head) for head in heads):
            return name
    raise ValueError(
        f"CAM needs a head of global average pooling + one linear layer (y = W mean_ij(A) + b), and {type(model).__name__} has "
        "none: no layer's spatial mean feeds a linear layer whose output is the model's output (e.g. a head with two linear "
        "layers, as mobilenet_v3's). Use GradCAM (equal to CAM on such a head), HiResCAM, LayerCAM or ScoreCAM, which need no "
        "particular head; or pass target_layer= (the layer before the pooling) and fc_layer= (the linear head) if it has one"
    )


class CAM(LayerExplainer):
    """CAM (Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016). For a model
    whose output is `y = W mean_ij(A) + b` (global average pooling of the target layer A, then one linear
    layer), the map of class c weighs the channels with that class's row of W:

        L^c = ReLU(sum_k W_ck A_k)

    (a regressor with one output uses W's only row). `target_layer` None takes the layer whose pooled
    output feeds the head, found in one extra forward pass (a model's `default_target_layer`, usually its
    last convolution, is not used: CAM needs the pooling's input). The head is checked on every call: the linear
    layer's input must be the spatial mean of A and its output the model's output, else a ValueError
    says the model has no such head (use Grad-CAM, which needs none and on such a head equals CAM up to
    the factor 1 / number of positions). `fc_layer` names the linear layer; None finds it among the
    model's nn.Linear modules. The ReLU keeps the family's convention of maps >= 0 (torchcam's CAM
    min-max normalises the signed map instead).
    """

    def __init__(self, target_layer: str | None = None, upsample: UpsampleMode = "bilinear", fc_layer: str | None = None, augment: bool = False) -> None:
        super().__init__(target_layer, upsample, augment=augment)
        if fc_layer is not None and (not isinstance(fc_layer, str) or not fc_layer):
            raise ValueError(f"fc_layer must be the dotted name of the model's nn.Linear head (e.g. 'fc') or None, got {fc_layer!r}")
        self.fc_layer = fc_layer

    def head_weights(self, model: nn.Module, layer_name: str, activations: Tensor, outputs: Tensor, calls: dict) -> Tensor:
        """The head's weight matrix `(num_outputs, K)`, after checking that `outputs = W mean_ij(A) + b`."""
        pooled = activations.flatten(2).mean(dim=2)
        flat_outputs = outputs.reshape(outputs.shape[0], -1)
        for name, (features, result) in reversed(list(calls.items())):
            if close(features, pooled) and close(result, flat_outputs):
                return get_layer(model, name).weight.detach()
        where = f"nn.Linear {self.fc_layer!r} is not" if self.fc_layer else f"none of the model's nn.Linear layers {list(calls)} is"
        raise ValueError(
            f"CAM needs the model's output to be W mean(A) + b, with A the output of target layer {layer_name!r} "
            f"(global average pooling, then one linear layer), and {where} such a head. Choose the layer that "
            "feeds the global average pooling, name the head with fc_layer=, or use GradCAM (equal to CAM on such a head), "
            "HiResCAM, LayerCAM or ScoreCAM, which need no particular head"
        )

    def linear_names(self, model: nn.Module) -> list[str]:
        if self.fc_layer is not None and not isinstance(get_layer(model, self.fc_layer), nn.Linear):
            raise ValueError(f"fc_layer {self.fc_layer!r} is a {type(get_layer(model, self.fc_layer)).__name__}, not an nn.Linear")
        return [self.fc_layer] if self.fc_layer else [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]

    def single_view(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        layer_name = self.target_layer or gap_input_layer(model, inputs, self.linear_names(model))
        return upsample(self.layer_map(model, layer_name, inputs, targets), tuple(inputs.shape[2:]), self.upsample)

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        names = self.linear_names(model)
        with torch.no_grad(), recorded_linear_calls(model, names) as calls:
            outputs, activations = forward_with_activations(model, layer_name, inputs)
        targets = resolve_targets(outputs, targets)
        weights = self.head_weights(model, layer_name, activations, outputs, calls)
        rows = weights[:1].expand(len(inputs), -1) if is_regression(outputs) else weights[targets]
        return torch.relu(weighted_channel_sum(rows.to(activations.dtype), activations))
