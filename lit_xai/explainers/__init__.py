"""Explanation methods: `explainer(model, inputs, targets=None) -> (B, *spatial)` saliency (DESIGN.md)."""

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.baselines import BankBaselines, BaselineSource, DataBaselines, GaussianBaselines, ZeroBaseline
from lit_xai.explainers.cam import GradientCAM, LayerExplainer
from lit_xai.explainers.center_saliency import CenterSaliency
from lit_xai.explainers.expected_gradcam import ExpectedGradCAM, ExpectedGradCAMPlusPlus, GuidedExpectedGradCAM
from lit_xai.explainers.expected_gradients import ConvergenceDiagnostics
from lit_xai.explainers.gradcam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from lit_xai.explainers.guided import GuidedBackprop, GuidedGradCAM
from lit_xai.explainers.hyper_expected_gradcam import HyperExpectedGradCAM
from lit_xai.explainers.jitter_cam import JitterCAM
from lit_xai.explainers.mass_preserving import MassPreservingUpsampler
from lit_xai.explainers.polycam import PolyCAM, find_polycam_layers
from lit_xai.explainers.random_saliency import RandomSaliency
from lit_xai.explainers.score_cam import AblationCAM, ScoreCAM
from lit_xai.explainers.smooth_gradcam import SmoothGradCAMPlusPlus
from lit_xai.explainers.spectral_residual import SpectralResidualSaliency

__all__ = [
    "AblationCAM",
    "BankBaselines",
    "BaselineSource",
    "CenterSaliency",
    "ConvergenceDiagnostics",
    "DataBaselines",
    "ExpectedGradCAM",
    "ExpectedGradCAMPlusPlus",
    "Explainer",
    "GaussianBaselines",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientCAM",
    "GuidedBackprop",
    "GuidedExpectedGradCAM",
    "GuidedGradCAM",
    "HiResCAM",
    "HyperExpectedGradCAM",
    "JitterCAM",
    "LayerCAM",
    "LayerExplainer",
    "MassPreservingUpsampler",
    "PolyCAM",
    "RandomSaliency",
    "ScoreCAM",
    "SmoothGradCAMPlusPlus",
    "SpectralResidualSaliency",
    "XGradCAM",
    "ZeroBaseline",
    "find_polycam_layers",
]
