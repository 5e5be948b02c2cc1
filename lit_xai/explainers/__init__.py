"""Explanation methods: `explainer(model, inputs, targets=None) -> (B, *spatial)` saliency (DESIGN.md)."""

from lit_xai.explainers.attention import AttentionRollout, LeGrad
from lit_xai.explainers.base import Explainer
from lit_xai.explainers.baselines import BankBaselines, BaselineSource, DataBaselines, GaussianBaselines, ZeroBaseline
from lit_xai.explainers.cam import GradientCAM, LayerExplainer
from lit_xai.explainers.center_saliency import CenterSaliency
from lit_xai.explainers.constant_saliency import ConstantSaliency
from lit_xai.explainers.class_activation_map import CAM
from lit_xai.explainers.eigen_cam import KPCA_CAM, EigenCAM, EigenGradCAM
from lit_xai.explainers.expected_gradcam import ExpectedGradCAM, ExpectedGradCAMPlusPlus, GuidedExpectedGradCAM
from lit_xai.explainers.expected_gradients import ConvergenceDiagnostics
from lit_xai.explainers.fem import FEM
from lit_xai.explainers.finer_cam import FinerCAM
from lit_xai.explainers.fullgrad import FullGrad
from lit_xai.explainers.gradcam import GradCAM, GradCAMElementWise, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from lit_xai.explainers.guided import GuidedBackprop, GuidedGradCAM
from lit_xai.explainers.head_decomposition import HeadDecomposition, head_localisation
from lit_xai.explainers.hyper_expected_gradcam import HyperExpectedGradCAM
from lit_xai.explainers.integrated_gradients import ExpectedGradients, IntegratedGradients
from lit_xai.explainers.jitter_cam import JitterCAM
from lit_xai.explainers.lrp import LRP, LayerLRP
from lit_xai.explainers.mass_preserving import MassPreservingUpsampler
from lit_xai.explainers.noise_scale import optimal_noise_scale
from lit_xai.explainers.occlusion import Occlusion
from lit_xai.explainers.polycam import PolyCAM, find_polycam_layers
from lit_xai.explainers.random_saliency import RandomSaliency
from lit_xai.explainers.rise import RISE
from lit_xai.explainers.saliency import InputXGradient, Saliency
from lit_xai.explainers.score_cam import AblationCAM, ScoreCAM
from lit_xai.explainers.score_cam_variants import ISCAM, SSCAM
from lit_xai.explainers.shapley_cam import ShapleyCAM
from lit_xai.explainers.smooth_gradcam import SmoothGradCAMPlusPlus
from lit_xai.explainers.smoothgrad import SmoothGrad, SmoothGradSquared, VarGrad
from lit_xai.explainers.spectral_lens import ArgLens, SpectralLens
from lit_xai.explainers.spectral_residual import SpectralResidualSaliency

__all__ = [
    "AblationCAM",
    "ArgLens",
    "AttentionRollout",
    "BankBaselines",
    "BaselineSource",
    "CAM",
    "CenterSaliency",
    "ConstantSaliency",
    "ConvergenceDiagnostics",
    "DataBaselines",
    "EigenCAM",
    "EigenGradCAM",
    "ExpectedGradCAM",
    "ExpectedGradCAMPlusPlus",
    "ExpectedGradients",
    "Explainer",
    "FEM",
    "FinerCAM",
    "FullGrad",
    "GaussianBaselines",
    "GradCAM",
    "GradCAMElementWise",
    "GradCAMPlusPlus",
    "GradientCAM",
    "GuidedBackprop",
    "GuidedExpectedGradCAM",
    "GuidedGradCAM",
    "HeadDecomposition",
    "HiResCAM",
    "HyperExpectedGradCAM",
    "ISCAM",
    "InputXGradient",
    "IntegratedGradients",
    "JitterCAM",
    "KPCA_CAM",
    "LRP",
    "LayerCAM",
    "LayerExplainer",
    "LayerLRP",
    "LeGrad",
    "MassPreservingUpsampler",
    "Occlusion",
    "PolyCAM",
    "RISE",
    "RandomSaliency",
    "SSCAM",
    "Saliency",
    "ScoreCAM",
    "ShapleyCAM",
    "SmoothGrad",
    "SmoothGradCAMPlusPlus",
    "SmoothGradSquared",
    "SpectralLens",
    "SpectralResidualSaliency",
    "VarGrad",
    "XGradCAM",
    "ZeroBaseline",
    "find_polycam_layers",
    "head_localisation",
    "optimal_noise_scale",
]
