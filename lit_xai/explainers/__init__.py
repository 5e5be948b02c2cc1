"""Explanation methods: `explainer(model, inputs, targets=None) -> (B, *spatial)` saliency (DESIGN.md).

One sub-package per family over a small shared core:

| where | what |
| --- | --- |
| `base.py`, `layers.py`, `tokens.py`, `upsample.py`, `seeding.py` | the contract, target layers, token layouts, upsampling, per-sample randomness |
| `gradients.py`, `expected_gradients.py`, `path_baselines.py`, `attributions.py` | gradient sources (plain, expected along paths from baselines), input-space attributions |
| `cam/` | the CAM family (gradient, score-based and projection CAMs, Expected Grad-CAM, guided variants) |
| `input_space/` | Saliency, Input x Gradient, Integrated / Expected Gradients, the SmoothGrad family, SpectralLens, DeepLIFT (+ SHAP), GradientSHAP, Deconvolution, NoiseTunnel |
| `perturbation/` | RISE, Occlusion, Feature Ablation, Shapley Value Sampling, KernelSHAP, LIME (over `lit_xai.segments`) |
| `lrp/` | LRP rules, composites, the modified backward pass, `LRP` / `LayerLRP` |
| `transformers/` | ViT anatomy, Attention Rollout, LeGrad, head decomposition |
| `resolution/` | Jitter-CAM, mass-preserving upsampling, Hyper Expected Grad-CAM |
| `baselines/` | random, centre, constant and spectral-residual maps |
| `registry.py` | the methods the callback runs when none are configured |

Every public name is importable from here.
"""

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.baselines import CenterSaliency, ConstantSaliency, RandomSaliency, SpectralResidualSaliency
from lit_xai.explainers.cam import (
    CAM,
    FEM,
    ISCAM,
    KPCA_CAM,
    SSCAM,
    AblationCAM,
    EigenCAM,
    EigenGradCAM,
    ExpectedGradCAM,
    ExpectedGradCAMPlusPlus,
    FinerCAM,
    FullGrad,
    GradCAM,
    GradCAMElementWise,
    GradCAMPlusPlus,
    GradientCAM,
    GuidedBackprop,
    GuidedExpectedGradCAM,
    GuidedGradCAM,
    HiResCAM,
    LayerCAM,
    LayerExplainer,
    PolyCAM,
    ScoreCAM,
    ShapleyCAM,
    SmoothGradCAMPlusPlus,
    XGradCAM,
    deep_feature_factorization,
    find_polycam_layers,
)
from lit_xai.explainers.expected_gradients import ConvergenceDiagnostics
from lit_xai.explainers.input_space import (
    ArgLens,
    Deconvolution,
    DeepLift,
    DeepLiftShap,
    ExpectedGradients,
    GradientShap,
    NoiseTunnel,
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    SmoothGradSquared,
    SpectralLens,
    VarGrad,
    optimal_noise_scale,
)
from lit_xai.explainers.lrp import LRP, LayerLRP
from lit_xai.explainers.path_baselines import BankBaselines, BaselineSource, DataBaselines, GaussianBaselines, ZeroBaseline
from lit_xai.explainers.perturbation import RISE, FeatureAblation, KernelShap, Lime, Occlusion, ShapleyValueSampling
from lit_xai.explainers.resolution import HyperExpectedGradCAM, JitterCAM, MassPreservingUpsampler
from lit_xai.explainers.transformers import AttentionRollout, HeadDecomposition, LeGrad, head_localisation

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
    "Deconvolution",
    "DeepLift",
    "DeepLiftShap",
    "EigenCAM",
    "EigenGradCAM",
    "ExpectedGradCAM",
    "ExpectedGradCAMPlusPlus",
    "ExpectedGradients",
    "Explainer",
    "FEM",
    "FeatureAblation",
    "FinerCAM",
    "FullGrad",
    "GaussianBaselines",
    "GradCAM",
    "GradCAMElementWise",
    "GradCAMPlusPlus",
    "GradientCAM",
    "GradientShap",
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
    "KernelShap",
    "LRP",
    "LayerCAM",
    "LayerExplainer",
    "LayerLRP",
    "LeGrad",
    "Lime",
    "MassPreservingUpsampler",
    "NoiseTunnel",
    "Occlusion",
    "PolyCAM",
    "RISE",
    "RandomSaliency",
    "SSCAM",
    "Saliency",
    "ScoreCAM",
    "ShapleyCAM",
    "ShapleyValueSampling",
    "SmoothGrad",
    "SmoothGradCAMPlusPlus",
    "SmoothGradSquared",
    "SpectralLens",
    "SpectralResidualSaliency",
    "VarGrad",
    "XGradCAM",
    "ZeroBaseline",
    "deep_feature_factorization",
    "find_polycam_layers",
    "head_localisation",
    "optimal_noise_scale",
]
