"""Robustness metrics of quantus 0.6 that re-run the explainer (`ReexplainingMetric`)."""

from lit_xai.metrics.robustness.base import AdditiveNoiseMetric, ReexplainingMetric
from lit_xai.metrics.robustness.continuity import Continuity
from lit_xai.metrics.robustness.relative_stability import (
    RelativeInputStability,
    RelativeOutputStability,
    RelativeRepresentationStability,
)
from lit_xai.metrics.robustness.sensitivity import (
    AvgSensitivity,
    LocalLipschitzEstimate,
)

__all__ = [
    "AvgSensitivity",
    "Continuity",
    "LocalLipschitzEstimate",
    "AdditiveNoiseMetric",
    "ReexplainingMetric",
    "RelativeInputStability",
    "RelativeOutputStability",
    "RelativeRepresentationStability",
]
