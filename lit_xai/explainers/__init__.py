"""Explanation methods: `explainer(model, inputs, targets=None) -> (B, *spatial)` saliency (DESIGN.md)."""

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.cam import GradientCAM, LayerExplainer
from lit_xai.explainers.gradcam import GradCAM
from lit_xai.explainers.random_saliency import RandomSaliency

__all__ = ["Explainer", "GradCAM", "GradientCAM", "LayerExplainer", "RandomSaliency"]
