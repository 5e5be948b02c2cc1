"""Relative Input, Output and Representation Stability (Agarwal et al., "Rethinking Stability for
Attribution-based Explanations", ICLR Workshop 2022), as torchmetrics Metrics that re-run the explainer.

For draws x_s = x + d_s, d_s ~ U(low, high) per element (quantus' default: U(0.02, 0.2), its uniform noise
with upper_bound 0.2), e_x = E(x), e_s = E(x_s), relative changes r(u, v) = (u - v) / u (u = 0 replaced by
eps_min) and the norm over all elements,

    RIS = max_s ||r(e_x, e_s)|| / max(||r(x, x_s)||, eps_min)
    ROS = max_s ||r(e_x, e_s)|| / max(||h(x) - h(x_s)||_2, eps_min)       h: the model's outputs (logits)
    RRS = max_s ||r(e_x, e_s)|| / max(||r(L(x), L(x_s))||, eps_min)      L: an internal representation

over the draws whose predicted class is the input's (the paper's definition: x_s in the neighbourhood
with the same prediction). quantus sets a draw that changes the prediction to NaN and takes `np.max`, so
one such draw makes the image NaN; lit-xai leaves those draws out of the maximum and an image with no
draw left out of the mean (NaN in `last_values`, counted in `skipped`). quantus' "a denominator of 0
becomes eps_min" is kept. Lower is better. Cost: nr_samples explainer calls and passes per image.
"""

from __future__ import annotations

import abc
import difflib
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.metrics.randomization import recorded_call_order
from lit_xai.metrics.robustness.base import (
    AdditiveNoiseMetric,
    check_number,
)
from lit_xai.targets import ForwardArgs, TargetsLike, model_outputs


def relative_change(u: Tensor, v: Tensor, eps_min: float) -> Tensor:
    """||(u - v) / u|| per row of `(k, ...)` (u = 0 replaced by eps_min), float64."""
    u, v = u.flatten(1).double(), v.flatten(1).double()
    return ((u - v) / torch.where(u == 0, eps_min, u)).norm(dim=1)


class RelativeStability(AdditiveNoiseMetric):
    """Shared by RIS, ROS and RRS (module docstring).

    Args:
        low, high: the uniform noise's range (quantus: 0.02 and 0.2).
        eps_min: quantus' guard against division by zero (1e-6).
        explainer, nr_samples (200), abs (False), normalise (False), skip_changed_predictions (True: the
        paper's definition), seed, internal_batch_size: as `ReexplainingMetric`.
    """

    higher_is_better = False
    reduce = "max"

    def __init__(self, low: float = 0.02, high: float = 0.2, eps_min: float = 1e-6, skip_changed_predictions: bool = True, **kwargs: Any) -> None:
        super().__init__(skip_changed_predictions=skip_changed_predictions, **kwargs)
        self.low, self.high = check_number(low, "low"), check_number(high, "high")
        if self.high <= self.low:
            raise ValueError(f"high must exceed low (the uniform noise's range), got {low!r} and {high!r}")
        self.eps_min = check_number(eps_min, "eps_min", positive=True)

    def noise_law(self) -> tuple[str, float, float]:
        return "uniform", self.low, self.high

    @abc.abstractmethod
    def denominator(self, x: Tensor, xs: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        """The per-draw change the explanation's change is divided by: of the inputs (RIS), the outputs (ROS) or a
        layer's representation (RRS), `(rows,)`."""

    def draw_values(self, x: Tensor, xs: Tensor, a: Tensor, a_s: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        denominator = self.denominator(x, xs, outputs, outputs_s, rows)
        return relative_change(a, a_s, self.eps_min) / torch.where(denominator == 0, self.eps_min, denominator)


class RelativeInputStability(RelativeStability):
    """RIS (Agarwal et al. 2022): relative map change over relative input change (module docstring); lower is better."""

    def denominator(self, x: Tensor, xs: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        return relative_change(x, xs, self.eps_min)


class RelativeOutputStability(RelativeStability):
    """ROS (Agarwal et al. 2022): relative map change over the change of the model's outputs (module
    docstring); lower is better. The outputs are the model's raw outputs (logits), unwrapped as the call says."""

    needs_outputs = True

    def denominator(self, x: Tensor, xs: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        assert outputs is not None and outputs_s is not None
        return (outputs - outputs_s).norm(dim=1)


class RelativeRepresentationStability(RelativeStability):
    """RRS (Agarwal et al. 2022): relative map change over the relative change of an internal
    representation (module docstring); lower is better.

    `layer`: a dotted name for `model.get_submodule`, whose output is the representation; None (default):
    the input of the last module with parameters of its own that the forward pass calls (the
    penultimate representation the head reads: `fc`'s input in a ResNet). quantus' default is every
    layer's output concatenated. The representation of x is read once per update; each draw costs one
    more pass (with a hook on the layer). Other arguments as `RelativeStability`.
    """

    def __init__(self, layer: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if layer is not None and (not isinstance(layer, str) or not layer):
            raise ValueError(f"layer must be a module name for model.get_submodule (e.g. 'layer4'), or None for the head's input, got {layer!r}")
        self.layer = layer
        self._module: nn.Module | None = None
        self._read_input = False
        self._model: nn.Module | None = None
        self._reference: Tensor | None = None

    def representation(self, inputs: Tensor, rows: Tensor | None) -> Tensor:
        """The representation `(k, D)` float64 on channel-first `inputs` whose samples are `rows`."""
        assert self._model is not None and self._module is not None
        captured: list[Tensor] = []

        def keep(value: object) -> None:
            captured.append(value[0] if isinstance(value, (tuple, list)) else value)  # type: ignore[arg-type]

        if self._read_input:
            handle = self._module.register_forward_pre_hook(lambda _m, args: keep(args))
        else:
            handle = self._module.register_forward_hook(lambda _m, _a, out: keep(out))
        try:
            with torch.no_grad():
                model_outputs(self._model, inputs, rows)
        finally:
            handle.remove()
        return captured[0].flatten(1).double()

    def prepare(self, model: nn.Module, inputs: Tensor) -> None:
        self._model = model
        if self.layer is None:
            with torch.no_grad(), recorded_call_order(model) as called:
                model_outputs(model, inputs[:1], torch.zeros(1, dtype=torch.long, device=inputs.device))
            if not called:
                raise ValueError(f"{type(model).__name__} calls no module with parameters: pass layer=<module name>")
            self._module, self._read_input = model.get_submodule(called[-1]), True
        else:
            names = [name for name, _ in model.named_modules() if name]
            if self.layer not in names:
                close = difflib.get_close_matches(self.layer, names, n=5, cutoff=0.4)
                raise ValueError(
                    f"layer {self.layer!r} is not a submodule of {type(model).__name__}" + (f"; close matches: {', '.join(close)}" if close else "")
                )
            self._module, self._read_input = model.get_submodule(self.layer), False
        self._reference = self.representation(inputs, None)

    def values(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        try:
            return super().values(model, inputs, saliency, targets, forward_args)
        finally:
            self._model, self._module, self._reference = None, None, None

    def denominator(self, x: Tensor, xs: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        assert self._reference is not None
        return relative_change(self._reference[rows], self.representation(xs, rows), self.eps_min)
