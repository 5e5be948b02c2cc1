"""The Jitter-CAM paper's 'Constant' map: a map that explains nothing, for sanity-checking metrics."""

from __future__ import annotations

import math

from torch import Tensor, nn

from lit_xai.explainers.base import Explainer


class ConstantSaliency(Explainer):
    """`value` everywhere except the first position (1) and the last (0):

        map = value;  map[0, ..., 0] = 1;  map[-1, ..., -1] = 0.

    Hartley, Peng & Pirie ("Jitter-CAM: Improving the Spatial Resolution of CAM-Based Explanations",
    BMVC 2022, section 4.3, Table 1) built it to show that Average Drop and Increase in Confidence reward
    maps with many high values: the two extreme pixels make min-max scaling keep the 0.9 everywhere else, so
    the masked image is nearly the input and the model's confidence barely moves. It beat Grad-CAM and
    Grad-CAM++ on both (IIC 48.22 vs 40.21, AD 2.70 vs 14.04 on ResNet-50) while being a useless explanation;
    perturbation curves (Deletion) rank it as it deserves. Model, targets and input values are ignored.
    """

    def __init__(self, value: float = 0.9) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value < 1:
            raise ValueError(f"value must be a number strictly between 0 and 1 (the map's level between its 0 and 1 pixels), got {value!r}")
        self.value = float(value)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        spatial = tuple(inputs.shape[2:])
        saliency = inputs.new_full((inputs.shape[0], *spatial), self.value)
        flat = saliency.view(inputs.shape[0], -1)
        flat[:, 0], flat[:, -1] = 1.0, 0.0
        return saliency
