"""LightningModules that `lit-xai fit/test` trains and explains."""

from lit_xai.models.backbones import build_backbone
from lit_xai.models.classifier import ImageClassifier

__all__ = ["ImageClassifier", "build_backbone"]
