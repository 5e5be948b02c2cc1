"""Faithfulness metrics as torchmetrics Metrics (DESIGN.md, "Conventions")."""

from lit_xai.metrics.confidence import AverageDrop, AverageDropInDeletion, IncreaseInConfidence
from lit_xai.metrics.perturbation import Deletion, Insertion, InsertionDeletion, PerturbationCurveMetric
from lit_xai.metrics.substrates import gaussian_blur

__all__ = [
    "AverageDrop",
    "AverageDropInDeletion",
    "Deletion",
    "IncreaseInConfidence",
    "Insertion",
    "InsertionDeletion",
    "PerturbationCurveMetric",
    "gaussian_blur",
]
