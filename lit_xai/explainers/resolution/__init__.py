"""Higher-resolution CAMs: Jitter-CAM (jittered crops), mass-preserving upsampling (redistribution over
early-layer activations) and Hyper Expected Grad-CAM (Expected Grad-CAM across layers and neighbourhoods)."""

from lit_xai.explainers.resolution.hyper_expected_gradcam import HyperExpectedGradCAM
from lit_xai.explainers.resolution.jitter_cam import JitterCAM
from lit_xai.explainers.resolution.mass_preserving import MassPreservingUpsampler

__all__ = ["HyperExpectedGradCAM", "JitterCAM", "MassPreservingUpsampler"]
