"""Layer-wise Relevance Propagation (LRP): the input relevance `LRP` and the relevance at a layer `LayerLRP`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.explainers.attributions import check_reduce, reduce_channels
from lit_xai.explainers.base import Explainer
from lit_xai.explainers.cam.base import LayerExplainer
from lit_xai.explainers.layers import get_layer
from lit_xai.explainers.lrp.backward import UnsupportedLayerError, lrp_backward
from lit_xai.explainers.lrp.composites import assign_rules, check_composite, check_rule_overrides
from lit_xai.explainers.lrp.rules import DerivedWeights, RuleSettings
from lit_xai.explainers.upsample import UpsampleMode
from lit_xai.targets import model_outputs, resolved_scores


def _check_settings(epsilon: float, gamma: float, alpha: float, beta: float, stabilizer: float) -> None:
    for name, value in (("epsilon", epsilon), ("gamma", gamma), ("stabilizer", stabilizer), ("alpha", alpha), ("beta", beta)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if abs(alpha - beta - 1.0) > 1e-12:
        raise ValueError(f"the alpha-beta rule needs alpha - beta = 1 (relevance is conserved), got alpha={alpha}, beta={beta}")


def lrp_relevance(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor | None,
    composite: str,
    overrides: Mapping[str, str],
    settings: RuleSettings,
    target_layer: str | None = None,
    cache: DerivedWeights | None = None,
) -> Tensor:
    """Relevance of each sample's target score at the input `(B, C, *spatial)` or at `target_layer`'s output.

    One forward pass through the hooked model (`lrp_backward`), then one backward pass from the scores
    with the output relevance `one_hot(target) * f(x)` (the raw logit; a regressor's prediction), so
    that sum_d R_d = f(x) for conservative rules. `inputs` is the explainer's own clone. Parameters
    are frozen for the pass (the explainer contract restores their flags): no `.grad` is written and no
    graph is built for them. `cache` keeps the weights the rules derive between calls (`DerivedWeights`).
    """
    rules = assign_rules(model, composite, overrides)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if target_layer is None:
        inputs.requires_grad_(True)
    else:
        get_layer(model, target_layer)
    with lrp_backward(model, rules, settings, target_layer, cache) as captured:
        try:
            outputs = model_outputs(model, inputs)
        except ValueError as error:
            if isinstance(error.__cause__, UnsupportedLayerError):
                raise error.__cause__ from None
            raise
    scores, targets = resolved_scores(outputs, targets)
    if target_layer is not None and not captured:
        raise ValueError(f"target layer {target_layer!r} did not run in the model's forward pass; choose a layer that forward uses")
    source = inputs if target_layer is None else captured[0]
    relevance = None
    if scores.requires_grad:
        (relevance,) = torch.autograd.grad(scores, source, grad_outputs=scores.detach(), allow_unused=True)
    if relevance is None:
        where = "its inputs" if target_layer is None else f"target layer {target_layer!r}"
        raise ValueError(f"the output of {type(model).__name__} does not depend on {where}; LRP needs a path from there to the output")
    return relevance


class _LRPSettings:
    """Constructor arguments shared by `LRP` and `LayerLRP`."""

    def _init_lrp(
        self,
        composite: str,
        epsilon: float,
        gamma: float,
        alpha: float,
        beta: float,
        low: Any,
        high: Any,
        rules: Mapping[str, str] | None,
        stabilizer: float,
    ) -> None:
        _check_settings(epsilon, gamma, alpha, beta, stabilizer)
        self.composite = check_composite(composite)
        self.rules = check_rule_overrides(rules)
        self.epsilon, self.gamma, self.alpha, self.beta, self.stabilizer = epsilon, gamma, alpha, beta, stabilizer
        self.low, self.high = low, high
        self._derived = DerivedWeights()

    @property
    def settings(self) -> RuleSettings:
        return RuleSettings(self.epsilon, self.gamma, self.alpha, self.beta, self.stabilizer, self.low, self.high)


class LRP(_LRPSettings, Explainer):
    """Layer-wise Relevance Propagation (Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier
    Decisions by Layer-Wise Relevance Propagation", PLoS ONE 2015; Montavon et al., "Layer-Wise Relevance
    Propagation: An Overview", 2019).

    The target's raw output f(x) (the logit; a one-output regressor's prediction) is the relevance at
    the output. Each layer l redistributes the relevance of its outputs k to its inputs j by a rule, e.g.

        LRP-0:        R_j = sum_k a_j w_jk / (sum_j' a_j' w_j'k + b_k) R_k
        LRP-epsilon:  the same with the denominator z_k stabilised to z_k + epsilon sign(z_k)
        LRP-gamma:    w_jk -> w_jk + gamma w_jk^+ in numerator and denominator

    so that sum_j R_j = sum_k R_k (up to what biases and stabilisers absorb) and finally
    sum_d R_d = f(x). Rules per layer (see `lit_xai.explainers.lrp.rules` for all eight and
    `lrp_composites` for the composites): `composite` assigns them by layer type and position as zennit's
    composites do ("epsilon_plus", "epsilon_plus_flat" (default), "epsilon_gamma_box",
    "epsilon_alpha2_beta1", "epsilon_alpha2_beta1_flat"; a rule name gives that rule to every Conv/Linear
    layer), and `rules={"features.0": "z_box", ...}` overrides it by layer name.

    BatchNorm following a Conv/Linear layer is merged into it; ReLU passes relevance; average pooling
    redistributes in proportion to its inputs; max pooling to the winner; torchvision ResNet blocks split
    the relevance of `out + identity` in proportion to each branch's contribution. An unsupported layer
    raises a ValueError naming it. One forward pass builds the modified backward graph (forward hooks
    make each layer's output carry its rule's gradient), one backward pass computes the relevance. The
    weights the rules derive (merged with BatchNorm, clamped) are kept between calls of one explainer and
    rebuilt when a parameter or BatchNorm buffer changes (in place, or moved); edits through `param.data`
    are not seen (make a new explainer after those).

    Args:
        composite: a composite or rule name (above).
        epsilon: the LRP-epsilon stabiliser.
        gamma: the LRP-gamma factor.
        alpha, beta: the alpha-beta rule's weights of positive and negative contributions (alpha - beta = 1;
            the `*_alpha2_beta1*` composites are meant with the defaults 2 and 1).
        low, high: the z-box bounds of the layer input: None = each sample's per-channel minimum / maximum
            (the range its normalised pixels span), a float, a list of floats per channel, or a tensor
            `(1, C, 1, 1)` / `(B, C, H, W)`.
        rules: `{layer name: rule name}` overrides.
        stabilizer: the epsilon added to the denominators of all other rules and of pooling / sums (1e-6).
        reduce: over channels, "sum" (default: signed relevance summing to f(x)), "abs_sum", "max_abs",
            or "none" for `(B, C, *spatial)`.
    """

    def __init__(
        self,
        composite: str = "epsilon_plus_flat",
        epsilon: float = 1e-6,
        gamma: float = 0.25,
        alpha: float = 2.0,
        beta: float = 1.0,
        low: Any = None,
        high: Any = None,
        rules: Mapping[str, str] | None = None,
        stabilizer: float = 1e-6,
        reduce: str = "sum",
    ) -> None:
        self._init_lrp(composite, epsilon, gamma, alpha, beta, low, high, rules, stabilizer)
        self.reduce = check_reduce(reduce)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        relevance = lrp_relevance(model, inputs, targets, self.composite, self.rules, self.settings, cache=self._derived)
        return reduce_channels(relevance.detach(), self.reduce)


class LayerLRP(_LRPSettings, LayerExplainer):
    """LRP relevance at a layer's output (a CAM-like map), the same rules and composites as `LRP`.

    The relevance R_k of the target layer's outputs `(B, K, *s)` (for a Conv/Linear merged with its
    BatchNorm, the merged layer's output) is reduced over the K channels by `reduce` ("sum", the default,
    keeps the sign: the map sums to f(x) minus what the layers above absorb; "abs_sum", "max_abs") and
    upsampled to the input size (`upsample`, as for the CAMs; "none" keeps the layer resolution). No graph
    is built below the target layer. `target_layer=None` uses the model's `default_target_layer`, else
    its last Conv1d/Conv2d.
    """

    def __init__(
        self,
        target_layer: str | None = None,
        composite: str = "epsilon_plus_flat",
        epsilon: float = 1e-6,
        gamma: float = 0.25,
        alpha: float = 2.0,
        beta: float = 1.0,
        low: Any = None,
        high: Any = None,
        rules: Mapping[str, str] | None = None,
        stabilizer: float = 1e-6,
        reduce: str = "sum",
        upsample: UpsampleMode = "bilinear",
    ) -> None:
        super().__init__(target_layer, upsample)
        self._init_lrp(composite, epsilon, gamma, alpha, beta, low, high, rules, stabilizer)
        if check_reduce(reduce) == "none":
            raise ValueError("LayerLRP returns a map (B, *spatial): reduce must be 'sum', 'abs_sum' or 'max_abs'")
        self.reduce = reduce

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        relevance = lrp_relevance(model, inputs, targets, self.composite, self.rules, self.settings, layer_name, self._derived)
        if relevance.ndim != inputs.ndim:
            raise ValueError(
                f"target layer {layer_name!r} outputs shape {tuple(relevance.shape)}, not (B, K, *spatial) like the inputs "
                f"{tuple(inputs.shape)}; choose a convolutional layer or block"
            )
        return reduce_channels(relevance.detach(), self.reduce)
