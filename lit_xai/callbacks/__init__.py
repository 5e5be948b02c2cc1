"""Lightning callbacks that explain and score a model during validation and test."""

from lit_xai.callbacks.batches import XaiBatch
from lit_xai.callbacks.explainer_callback import ExplainerCallback
from lit_xai.callbacks.process_group import ProcessGroupTeardown

__all__ = ["ExplainerCallback", "ProcessGroupTeardown", "XaiBatch"]
