"""Explanation methods: `explainer(model, inputs, targets=None) -> (B, *spatial)` saliency (DESIGN.md)."""

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.baselines import BankBaselines, BaselineSource, DataBaselines, GaussianBaselines, ZeroBaseline
from lit_xai.explainers.cam import GradientCAM, LayerExplainer
from lit_xai.explainers.center_saliency import CenterSaliency
from lit_xai.explainers.expected_gradcam import ExpectedGradCAM, ExpectedGradCAMPlusPlus, GuidedExpectedGradCAM
from lit_xai.explainers.expected_gradients import ConvergenceDiagnostics
from lit_xai.explainers.gradcam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from lit_xai.explainers.guided import GuidedBackprop, GuidedGradCAM
from lit_xai.explainers.integrated_gradients import ExpectedGradients, IntegratedGradients
from lit_xai.explainers.noise_scale import optimal_noise_scale
from lit_xai.explainers.occlusion import Occlusion
from lit_xai.explainers.polycam import PolyCAM, find_polycam_layers
from lit_xai.explainers.random_saliency import RandomSaliency
from lit_xai.explainers.rise import RISE
from lit_xai.explainers.saliency import InputXGradient, Saliency
from lit_xai.explainers.score_cam import AblationCAM, ScoreCAM
from lit_xai.explainers.smooth_gradcam import SmoothGradCAMPlusPlus
from lit_xai.explainers.smoothgrad import SmoothGrad, SmoothGradSquared, VarGrad
from lit_xai.explainers.spectral_lens import ArgLens, SpectralLens
from lit_xai.explainers.spectral_residual import SpectralResidualSaliency

__all__ = [
    "AblationCAM",
    "ArgLens",
    "BankBaselines",
    "BaselineSource",
    "CenterSaliency",
    "ConvergenceDiagnostics",
    "DataBaselines",
    "ExpectedGradCAM",
    "ExpectedGradCAMPlusPlus",
    "ExpectedGradients",
    "Explainer",
    "GaussianBaselines",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientCAM",
    "GuidedBackprop",
    "GuidedExpectedGradCAM",
    "GuidedGradCAM",
    "HiResCAM",
    "InputXGradient",
    "IntegratedGradients",
    "LayerCAM",
    "LayerExplainer",
    "Occlusion",
    "PolyCAM",
    "RISE",
    "RandomSaliency",
    "Saliency",
    "ScoreCAM",
    "SmoothGrad",
    "SmoothGradCAMPlusPlus",
    "SmoothGradSquared",
    "SpectralLens",
    "SpectralResidualSaliency",
    "VarGrad",
    "XGradCAM",
    "ZeroBaseline",
    "find_polycam_layers",
    "optimal_noise_scale",
]
