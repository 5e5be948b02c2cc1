"""Lightning callbacks that explain and score a model during validation and test."""

from lit_xai.callbacks.explainer_callback import ExplainerCallback

__all__ = ["ExplainerCallback"]
