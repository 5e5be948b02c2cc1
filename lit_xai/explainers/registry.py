"""The methods an ExplainerCallback runs when none are configured: every registered method that applies."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.center_saliency import CenterSaliency
from lit_xai.explainers.expected_gradcam import ExpectedGradCAM, ExpectedGradCAMPlusPlus, GuidedExpectedGradCAM
from lit_xai.explainers.gradcam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from lit_xai.explainers.guided import GuidedBackprop, GuidedGradCAM
from lit_xai.explainers.hyper_expected_gradcam import HyperExpectedGradCAM
from lit_xai.explainers.jitter_cam import JitterCAM
from lit_xai.explainers.layers import SPATIAL_CONVS
from lit_xai.explainers.mass_preserving import MassPreservingUpsampler
from lit_xai.explainers.polycam import PolyCAM
from lit_xai.explainers.random_saliency import RandomSaliency
from lit_xai.explainers.score_cam import AblationCAM, ScoreCAM
from lit_xai.explainers.smooth_gradcam import SmoothGradCAMPlusPlus
from lit_xai.explainers.spectral_residual import SpectralResidualSaliency


def has_conv(model: nn.Module) -> bool:
    return getattr(model, "default_target_layer", None) is not None or any(isinstance(m, SPATIAL_CONVS) for m in model.modules())


def has_conv2d(model: nn.Module) -> bool:
    """Image models (Jitter-CAM and Hyper Expected Grad-CAM explain images only)."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def mass_preserving_gradcam() -> GradCAM:
    """Grad-CAM upsampled by mass redistribution over early-layer activations."""
    return GradCAM(upsample=MassPreservingUpsampler())


def has_relu(model: nn.Module) -> bool:
    return any(isinstance(m, nn.ReLU) for m in model.modules())


def always(model: nn.Module) -> bool:
    return True


REGISTRY: dict[str, tuple[Callable[[], Explainer], Callable[[nn.Module], bool]]] = {
    "gradcam": (GradCAM, has_conv),
    "gradcam_pp": (GradCAMPlusPlus, has_conv),
    "xgradcam": (XGradCAM, has_conv),
    "hirescam": (HiResCAM, has_conv),
    "layercam": (LayerCAM, has_conv),
    "scorecam": (ScoreCAM, has_conv),
    "ablationcam": (AblationCAM, has_conv),
    "smooth_gradcam_pp": (SmoothGradCAMPlusPlus, has_conv),
    "polycam": (PolyCAM, has_conv),
    "expected_gradcam": (ExpectedGradCAM, has_conv),
    "expected_gradcam_pp": (ExpectedGradCAMPlusPlus, has_conv),
    "guided_expected_gradcam": (GuidedExpectedGradCAM, has_conv),
    "jitter_cam": (JitterCAM, has_conv2d),
    "gradcam_mass_preserving": (mass_preserving_gradcam, has_conv),
    "hyper_expected_gradcam": (HyperExpectedGradCAM, has_conv2d),
    "guided_backprop": (GuidedBackprop, has_relu),
    "guided_gradcam": (GuidedGradCAM, lambda model: has_conv(model) and has_relu(model)),
    "random": (RandomSaliency, always),
    "center": (CenterSaliency, always),
    "spectral_residual": (SpectralResidualSaliency, always),
}
"""name -> (factory with default hyper-parameters, whether it applies to a model)."""


def default_explainers(model: nn.Module) -> dict[str, Explainer]:
    """A fresh instance of every registered method that applies to `model`, keyed by its registry name."""
    return {name: factory() for name, (factory, applies) in REGISTRY.items() if applies(model)}
