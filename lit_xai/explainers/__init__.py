"""Explanation methods: `explainer(model, inputs, targets=None) -> (B, *spatial)` saliency (DESIGN.md)."""

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.cam import GradientCAM, LayerExplainer
from lit_xai.explainers.gradcam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from lit_xai.explainers.random_saliency import RandomSaliency
from lit_xai.explainers.score_cam import AblationCAM, ScoreCAM
from lit_xai.explainers.smooth_gradcam import SmoothGradCAMPlusPlus

__all__ = [
    "AblationCAM",
    "Explainer",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientCAM",
    "HiResCAM",
    "LayerCAM",
    "LayerExplainer",
    "RandomSaliency",
    "ScoreCAM",
    "SmoothGradCAMPlusPlus",
    "XGradCAM",
]
