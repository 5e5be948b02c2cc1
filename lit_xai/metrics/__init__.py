"""Faithfulness metrics as torchmetrics Metrics (DESIGN.md, "Conventions")."""

from lit_xai.metrics.perturbation import Deletion, Insertion, PerturbationCurveMetric
from lit_xai.metrics.substrates import gaussian_blur

__all__ = ["Deletion", "Insertion", "PerturbationCurveMetric", "gaussian_blur"]
