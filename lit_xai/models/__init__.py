"""LightningModules that `lit-xai fit/test` trains and explains."""

from lit_xai.models.backbones import BACKBONES, build_backbone
from lit_xai.models.classifier import ImageClassifier
from lit_xai.models.torchvision_backbones import TORCHVISION_BACKBONES, WeightsUnavailableError, resolve_weights

__all__ = ["BACKBONES", "TORCHVISION_BACKBONES", "ImageClassifier", "WeightsUnavailableError", "build_backbone", "resolve_weights"]
