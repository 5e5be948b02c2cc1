"""LightningModules that `lit-xai fit/test` trains and explains."""

from lit_xai.models.backbones import BACKBONES, build_backbone
from lit_xai.models.classifier import ImageClassifier
from lit_xai.models.rul_networks import ARCHITECTURES, CNNRecurrentNetwork
from lit_xai.models.rul_regressor import RULRegressor
from lit_xai.models.torchvision_backbones import TORCHVISION_BACKBONES, WeightsUnavailableError, resolve_weights

__all__ = [
    "ARCHITECTURES", "BACKBONES", "TORCHVISION_BACKBONES", "CNNRecurrentNetwork", "ImageClassifier", "RULRegressor",
    "WeightsUnavailableError", "build_backbone", "resolve_weights",
]
