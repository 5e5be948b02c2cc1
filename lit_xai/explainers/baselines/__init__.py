"""Model-free reference maps that any method should beat (or that show a metric's blind spot): random,
centre bias, Jitter-CAM's 'Constant' map, spectral-residual saliency. (The path baselines x' of
Expected Grad-CAM and Integrated Gradients are `lit_xai.explainers.path_baselines`.)"""

from lit_xai.explainers.baselines.center_saliency import CenterSaliency
from lit_xai.explainers.baselines.constant_saliency import ConstantSaliency
from lit_xai.explainers.baselines.random_saliency import RandomSaliency
from lit_xai.explainers.baselines.spectral_residual import SpectralResidualSaliency

__all__ = ["CenterSaliency", "ConstantSaliency", "RandomSaliency", "SpectralResidualSaliency"]
