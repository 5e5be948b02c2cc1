"""The CAM family: a layer's activations weighted into a map at the layer, then upsampled.

A gradient CAM is a gradient source (`lit_xai.explainers.gradients`, `expected_gradients`) times a
weighting rule (`weighting.py`); the score-based CAMs weight channels by extra forward passes
(`scoring.py`); the projection CAMs by principal components (`projections.py`). `base.py` holds the
skeleton every layer method shares (`LayerExplainer`, `GradientCAM`).
"""

from lit_xai.explainers.cam.base import GradientCAM, LayerExplainer
from lit_xai.explainers.cam.class_activation_map import CAM
from lit_xai.explainers.cam.eigen_cam import KPCA_CAM, EigenCAM, EigenGradCAM
from lit_xai.explainers.cam.factorization import FeatureFactorization, deep_feature_factorization
from lit_xai.explainers.cam.expected_gradcam import ExpectedGradCAM, ExpectedGradCAMPlusPlus, GuidedExpectedGradCAM
from lit_xai.explainers.cam.fem import FEM
from lit_xai.explainers.cam.finer_cam import FinerCAM
from lit_xai.explainers.cam.fullgrad import FullGrad
from lit_xai.explainers.cam.gradcam import GradCAM, GradCAMElementWise, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from lit_xai.explainers.cam.guided import GuidedBackprop, GuidedGradCAM
from lit_xai.explainers.cam.polycam import PolyCAM, find_polycam_layers
from lit_xai.explainers.cam.score_cam import AblationCAM, ScoreCAM
from lit_xai.explainers.cam.score_cam_variants import ISCAM, SSCAM
from lit_xai.explainers.cam.shapley_cam import ShapleyCAM
from lit_xai.explainers.cam.smooth_gradcam import SmoothGradCAMPlusPlus

__all__ = [
    "CAM", "FEM", "ISCAM", "KPCA_CAM", "SSCAM", "AblationCAM", "EigenCAM", "EigenGradCAM", "ExpectedGradCAM",
    "ExpectedGradCAMPlusPlus", "FinerCAM", "FullGrad", "GradCAM", "GradCAMElementWise", "GradCAMPlusPlus",
    "GradientCAM", "GuidedBackprop", "GuidedExpectedGradCAM", "GuidedGradCAM", "HiResCAM", "LayerCAM",
    "LayerExplainer", "PolyCAM", "ScoreCAM", "ShapleyCAM", "SmoothGradCAMPlusPlus", "XGradCAM", "find_polycam_layers",
    "FeatureFactorization", "deep_feature_factorization",
]
