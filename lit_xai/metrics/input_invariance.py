"""Input Invariance (Kindermans et al., "The (Un)reliability of Saliency Methods", in Explainable AI:
Interpreting, Explaining and Visualizing Deep Learning, Springer 2019), as a torchmetrics Metric that
re-runs the explainer.

Two networks that compute the same function on inputs that differ by a constant shift c should get the
same explanation: f2 is a copy of the model whose first layer (the first module with parameters the
forward pass calls: a Linear or a convolution) has its bias lowered by the response to c,

    b2 = b1 - W c          (Linear: W @ (c 1);  ConvNd: c sum of each output channel's kernel)

so that f2(x + c) = f1(x) with identical activations after the first layer, and

    InputInvariance = 1[ |E(f2, x + c) - E(f1, x)| <= atol + rtol |E(f1, x)|  at every position ]

(np.isclose's rule, quantus' atol 1e-4). Higher is better. A convolution with zero padding sees zeros, not
c, at its border: the compensation there is not exact, and the border's activations differ (as in
quantus, whose bias comes from the same interior response). quantus 0.6 shifts each sample except its
first element (`perturb_batch` passes `indices[i][1:]`); lit-xai shifts every element. Cost: one deep
copy of the model and one explainer call per image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.metrics.common import PerImageMean, check_explainer, explain_rows, metric_passes
from lit_xai.metrics.efficient_mprt import model_copy
from lit_xai.metrics.randomization import recorded_call_order
from lit_xai.metrics.robustness.base import ExplainerFn, check_number
from lit_xai.targets import ForwardArgs, TargetsLike, model_outputs


def shifted_first_layer(model: nn.Module, inputs: Tensor, shift: float) -> nn.Module:
    """A deep copy of `model` whose first layer's bias absorbs an input shift by `shift` (module docstring)."""
    with torch.no_grad(), recorded_call_order(model) as called:
        model_outputs(model, inputs[:1], torch.zeros(1, dtype=torch.long, device=inputs.device))
    if not called:
        raise ValueError(f"{type(model).__name__} calls no module with parameters: InputInvariance has no first layer to shift")
    copied = model_copy(model)
    with torch.inference_mode(False), torch.no_grad():
        layer = copied.get_submodule(called[0])
        if isinstance(layer, nn.Linear):
            response = layer.weight.sum(dim=1) * shift
        elif isinstance(layer, nn.modules.conv._ConvNd) and not isinstance(layer, nn.modules.conv._ConvTransposeNd):
            response = layer.weight.flatten(1).sum(dim=1) * shift
        else:
            raise ValueError(
                f"InputInvariance shifts the bias of the first layer, a Linear or a convolution; {type(model).__name__}'s first "
                f"layer {called[0]!r} is a {type(layer).__name__}"
            )
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], dtype=layer.weight.dtype, device=layer.weight.device))
        layer.bias -= response
    return copied


class InputInvariance(PerImageMean):
    """1 when the explanation of the shifted network at the shifted input equals the original one
    (Kindermans et al. 2019; module docstring), else 0; higher is better.

    Args:
        explainer: the explainer that produced the maps; None until set (the callback sets it).
        input_shift: c (quantus' default -1).
        atol, rtol: np.isclose's tolerances (quantus: 1e-4 and numpy's 1e-5).
    """

    higher_is_better = True

    def __init__(self, explainer: ExplainerFn | None = None, input_shift: float = -1.0, atol: float = 1e-4, rtol: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_explainer(explainer)
        self.explainer = explainer
        self.input_shift = check_number(input_shift, "input_shift")
        self.atol, self.rtol = check_number(atol, "atol"), check_number(rtol, "rtol")

    def differences(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> tuple[Tensor, Tensor]:
        """The original maps and the shifted network's maps of the shifted inputs, `(B, *spatial)` each."""
        if self.explainer is None:
            raise ValueError("InputInvariance needs the explainer that produced the maps: InputInvariance(explainer=...) (ExplainerCallback sets it)")
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            shifted = shifted_first_layer(model, inputs, self.input_shift)
            maps = explain_rows(self.explainer, shifted, inputs + self.input_shift, resolved, None)
            return saliency, maps.to(saliency.device)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        original, shifted = self.differences(model, inputs, saliency, targets, forward_args)
        close = (shifted.double() - original.double()).abs() <= self.atol + self.rtol * original.double().abs()
        self.add_values(close.flatten(1).all(dim=1).double())
