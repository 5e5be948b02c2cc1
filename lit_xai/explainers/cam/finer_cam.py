"""Finer-CAM: a CAM of the target's score contrasted with the most similar classes' scores."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.explainers.cam.base import GradientCAM
from lit_xai.explainers.cam.weighting import elementwise_gradcam_map, gradcam_map, hirescam_map, layercam_map
from lit_xai.explainers.gradients import LayerGradients, forward_with_activations, gradients_of_scores
from lit_xai.explainers.upsample import UpsampleMode
from lit_xai.targets import is_regression, resolve_targets

RULES = {"gradcam": gradcam_map, "hirescam": hirescam_map, "layercam": layercam_map, "elementwise": elementwise_gradcam_map}
REFERENCE_WEIGHTS = ("probability", "uniform")


def similar_classes(outputs: Tensor, targets: Tensor, count: int) -> Tensor:
    """`(B, count)`: per sample, the classes whose outputs are closest to the target's, |y_j - y_c|
    ascending, the target itself excluded."""
    scores = outputs.detach()
    distances = (scores - scores.gather(1, targets.view(-1, 1))).abs()
    distances.scatter_(1, targets.view(-1, 1), float("inf"))
    return distances.topk(count, dim=1, largest=False).indices


def contrastive_scores(outputs: Tensor, targets: Tensor, references: Tensor, alpha: float, weights: str) -> Tensor:
    """`sum_j w_j (y_c - alpha y_j) / (sum_j w_j + eps)` over the reference classes j; w_j = softmax(y)_j
    ("probability", eps 1e-9, differentiated with the rest) or 1 ("uniform", eps 0: y_c - alpha mean_j y_j)."""
    target = outputs.gather(1, targets.view(-1, 1))
    differences = target - alpha * outputs.gather(1, references)
    if weights == "uniform":
        return differences.mean(dim=1)
    probabilities = torch.softmax(outputs, dim=1).gather(1, references)
    return (probabilities * differences).sum(dim=1) / (probabilities.sum(dim=1) + 1e-9)


class FinerCAM(GradientCAM):
    """Finer-CAM (Zhang et al., "Finer-CAM: Spotting the Difference Reveals Finer Details for Visual
    Explanation", CVPR 2025): a gradient CAM of the target's score contrasted with the scores of the
    `references` classes most similar to it (the closest outputs |y_j - y_c|, target excluded),

        s^c = sum_j w_j (y_c - alpha y_j) / sum_j w_j,    L^c = rule(A, ds^c/dA)   (Grad-CAM by default)

    Defaults are the authors' (pytorch-grad-cam's `FinerCAM` with `FinerWeightedTarget`): alpha = 1,
    3 references, w_j = softmax(y)_j, differentiated as part of s^c. torchcam's `FinerCAM` is
    `reference_weights="uniform", alpha=0.6`: s^c = y_c - 0.6 mean_j y_j. `rule` is the weighting:
    "gradcam", "hirescam", "layercam" or "elementwise". Needs a classifier with at least 2 outputs.
    """

    def __init__(
        self,
        target_layer: str | None = None,
        upsample: UpsampleMode = "bilinear",
        alpha: float = 1.0,
        references: int = 3,
        reference_weights: str = "probability",
        rule: str = "gradcam",
        augment: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, augment=augment)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise ValueError(f"alpha must be a float (the comparison strength; 0 gives the plain rule), got {alpha!r}")
        if reference_weights not in REFERENCE_WEIGHTS:
            raise ValueError(f"reference_weights must be one of {REFERENCE_WEIGHTS}, got {reference_weights!r}")
        if rule not in RULES:
            raise ValueError(f"rule must be one of {tuple(RULES)}, got {rule!r}")
        self.alpha = float(alpha)
        self.references = check_positive_int(references, "references")
        self.reference_weights, self.rule = reference_weights, rule

    def layer_gradients(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> LayerGradients:
        inputs.requires_grad_(True)
        outputs, activations = forward_with_activations(model, layer_name, inputs)
        if is_regression(outputs):
            raise ValueError("FinerCAM contrasts the target with other classes; the model has one output (regression). Use GradCAM")
        targets = resolve_targets(outputs, targets)
        references = similar_classes(outputs, targets, min(self.references, outputs.shape[1] - 1))
        scores = contrastive_scores(outputs, targets, references, self.alpha, self.reference_weights)
        gradients = gradients_of_scores(scores, activations, layer_name)
        return LayerGradients(activations.detach(), gradients.detach(), targets)

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return RULES[self.rule](activations, gradients)
