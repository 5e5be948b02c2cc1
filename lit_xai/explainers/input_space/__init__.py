"""Input-space gradient attributions `(B, C, *spatial)`, reduced over channels for metrics.

Plain gradients (Saliency, Input x Gradient), path methods (Integrated / Expected Gradients, over the
path baselines of `lit_xai.explainers.path_baselines`), and the noise family (SmoothGrad, SmoothGrad-Squared,
VarGrad, SpectralLens / ArgLens, with the noise scale of `noise_scale.py`), DeepLIFT and its SHAP
variants, GradientSHAP and Deconvolution (modified backward passes per activation call, `modified_backward.py`),
and NoiseTunnel around any explainer. The shared contract
(`InputSpaceExplainer`, `reduce=`) is `lit_xai.explainers.attributions`.
"""

from lit_xai.explainers.input_space.deeplift import Deconvolution, DeepLift, DeepLiftShap, GradientShap
from lit_xai.explainers.input_space.integrated_gradients import ExpectedGradients, IntegratedGradients
from lit_xai.explainers.input_space.noise_scale import optimal_noise_scale
from lit_xai.explainers.input_space.noise_tunnel import NoiseTunnel
from lit_xai.explainers.input_space.saliency import InputXGradient, Saliency
from lit_xai.explainers.input_space.smoothgrad import SmoothGrad, SmoothGradSquared, VarGrad
from lit_xai.explainers.input_space.spectral_lens import ArgLens, SpectralLens

__all__ = [
    "ArgLens", "Deconvolution", "DeepLift", "DeepLiftShap", "ExpectedGradients", "GradientShap", "NoiseTunnel", "InputXGradient", "IntegratedGradients", "Saliency", "SmoothGrad",
    "SmoothGradSquared", "SpectralLens", "VarGrad", "optimal_noise_scale",
]
