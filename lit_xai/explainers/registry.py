"""The methods an ExplainerCallback runs when none are configured: every registered method that applies."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torchvision.models import VisionTransformer

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.baselines.center_saliency import CenterSaliency
from lit_xai.explainers.baselines.random_saliency import RandomSaliency
from lit_xai.explainers.baselines.spectral_residual import SpectralResidualSaliency
from lit_xai.explainers.cam.class_activation_map import CAM
from lit_xai.explainers.cam.eigen_cam import KPCA_CAM, EigenCAM, EigenGradCAM
from lit_xai.explainers.cam.expected_gradcam import ExpectedGradCAM, ExpectedGradCAMPlusPlus, GuidedExpectedGradCAM
from lit_xai.explainers.cam.fem import FEM
from lit_xai.explainers.cam.finer_cam import FinerCAM
from lit_xai.explainers.cam.fullgrad import FullGrad
from lit_xai.explainers.cam.gradcam import GradCAM, GradCAMElementWise, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from lit_xai.explainers.cam.guided import GuidedBackprop, GuidedGradCAM
from lit_xai.explainers.cam.polycam import PolyCAM
from lit_xai.explainers.cam.score_cam import AblationCAM, ScoreCAM
from lit_xai.explainers.cam.score_cam_variants import ISCAM, SSCAM
from lit_xai.explainers.cam.shapley_cam import ShapleyCAM
from lit_xai.explainers.cam.smooth_gradcam import SmoothGradCAMPlusPlus
from lit_xai.explainers.input_space.deeplift import Deconvolution, DeepLift, DeepLiftShap, GradientShap
from lit_xai.explainers.input_space.integrated_gradients import ExpectedGradients, IntegratedGradients
from lit_xai.explainers.input_space.noise_tunnel import NoiseTunnel
from lit_xai.explainers.input_space.saliency import InputXGradient, Saliency
from lit_xai.explainers.input_space.smoothgrad import SmoothGrad, SmoothGradSquared, VarGrad
from lit_xai.explainers.input_space.spectral_lens import ArgLens, SpectralLens
from lit_xai.explainers.layers import SPATIAL_CONVS
from lit_xai.explainers.transformers.vit import attention_parts
from lit_xai.explainers.lrp.backward import lrp_applies
from lit_xai.explainers.lrp.explainers import LRP
from lit_xai.explainers.perturbation.coalitions import FeatureAblation, ShapleyValueSampling
from lit_xai.explainers.perturbation.occlusion import Occlusion
from lit_xai.explainers.perturbation.rise import RISE
from lit_xai.explainers.perturbation.surrogates import KernelShap, Lime
from lit_xai.explainers.resolution.hyper_expected_gradcam import HyperExpectedGradCAM
from lit_xai.explainers.resolution.jitter_cam import JitterCAM
from lit_xai.explainers.resolution.mass_preserving import MassPreservingUpsampler
from lit_xai.explainers.transformers.attention import AttentionRollout, LeGrad
from lit_xai.explainers.transformers.head_decomposition import HeadDecomposition


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


def is_vit(model: nn.Module) -> bool:
    """The model holds one vision transformer the attention methods read (torchvision, timm, Hugging Face)."""
    try:
        attention_parts(model, "registry")
    except ValueError:
        return False
    return True


def is_torchvision_vit(model: nn.Module) -> bool:
    """Head decomposition reads torchvision's ViT only."""
    return sum(isinstance(m, VisionTransformer) for m in model.modules()) == 1


def always(model: nn.Module) -> bool:
    return True


def has_gap_head(model: nn.Module) -> bool:
    """Global average pooling (an adaptive average pooling to one position) and a linear layer reading as many
    features as the last convolution makes channels: CAM's head (a two-layer MLP head, as mobilenet_v3's, is not)."""
    pools = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
    gap = any(isinstance(m, pools) and m.output_size in (1, (1,), (1, 1)) for m in model.modules())
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, SPATIAL_CONVS)]
    if not (has_conv(model) and gap and linears):
        return False
    return not convs or linears[-1].in_features == convs[-1].out_channels


def has_classes(model: nn.Module) -> bool:
    """A classifier: its last linear layer has at least 2 outputs (Finer-CAM contrasts classes)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return has_conv(model) and bool(linears) and linears[-1].out_features >= 2

SPECTRAL_SCALES = (0.25, 0.5, 0.75, 1.0)

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
    "cam": (CAM, has_gap_head),
    "gradcam_elementwise": (GradCAMElementWise, has_conv),
    "eigencam": (EigenCAM, has_conv),
    "eigengradcam": (EigenGradCAM, has_conv),
    "kpca_cam": (KPCA_CAM, has_conv),
    "fem": (FEM, has_conv),
    "shapleycam": (ShapleyCAM, has_conv),
    "finercam": (FinerCAM, has_classes),
    "fullgrad": (FullGrad, has_conv),
    "sscam": (lambda: SSCAM(samples=4), has_conv),  # 35 draws (the default) = 35 x Score-CAM's passes per round
    "iscam": (lambda: ISCAM(samples=4), has_conv),
    "jitter_cam": (JitterCAM, has_conv2d),
    "gradcam_mass_preserving": (mass_preserving_gradcam, has_conv),
    "hyper_expected_gradcam": (HyperExpectedGradCAM, has_conv2d),
    "guided_backprop": (GuidedBackprop, has_relu),
    "guided_gradcam": (GuidedGradCAM, lambda model: has_conv(model) and has_relu(model)),
    "saliency": (Saliency, always),
    "input_x_gradient": (InputXGradient, always),
    "integrated_gradients": (lambda: IntegratedGradients(steps=16), always),
    "expected_gradients": (lambda: ExpectedGradients(draws=16), always),
    "smoothgrad": (lambda: SmoothGrad(samples=16), always),
    "smoothgrad_sq": (lambda: SmoothGradSquared(samples=16), always),
    "vargrad": (lambda: VarGrad(samples=16), always),
    "spectral_lens": (lambda: SpectralLens(scales=SPECTRAL_SCALES, samples=4), always),
    "arglens": (lambda: ArgLens(scales=SPECTRAL_SCALES, samples=4), always),
    "rise": (lambda: RISE(masks=500), always),
    "occlusion": (lambda: Occlusion(window=16, stride=8), always),
    "deeplift": (DeepLift, always),
    "deeplift_shap": (DeepLiftShap, always),  # every baseline of the bank: 2 x bank size rows per sample
    "gradient_shap": (lambda: GradientShap(samples=16), always),
    "deconvolution": (Deconvolution, has_relu),
    "noise_tunnel_deeplift": (lambda: NoiseTunnel(DeepLift(), samples=8), always),
    "feature_ablation": (FeatureAblation, always),
    "shapley_value_sampling": (lambda: ShapleyValueSampling(samples=2), always),
    "kernel_shap": (lambda: KernelShap(samples=64), always),
    "lime": (lambda: Lime(samples=64), always),
    "lrp": (LRP, lrp_applies),
    "attention_rollout": (AttentionRollout, is_vit),
    "legrad": (LeGrad, is_vit),
    "head_decomposition": (HeadDecomposition, is_torchvision_vit),
    "random": (RandomSaliency, always),
    "center": (CenterSaliency, always),
    "spectral_residual": (SpectralResidualSaliency, always),
}
"""name -> (factory with default hyper-parameters, whether it applies to a model)."""


def default_explainers(model: nn.Module) -> dict[str, Explainer]:
    """A fresh instance of every registered method that applies to `model`, keyed by its registry name."""
    return {name: factory() for name, (factory, applies) in REGISTRY.items() if applies(model)}
