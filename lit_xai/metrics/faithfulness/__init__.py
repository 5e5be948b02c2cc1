"""Faithfulness metrics that walk features in order of attribution (quantus 0.6's family), over
`lit_xai.metrics.faithfulness.steps`."""

from lit_xai.metrics.faithfulness.faithfulness_estimate import FaithfulnessEstimate
from lit_xai.metrics.faithfulness.monotonicity import (
    Monotonicity,
    MonotonicityCorrelation,
)
from lit_xai.metrics.faithfulness.pixel_flipping import PixelFlipping, Selectivity
from lit_xai.metrics.faithfulness.regions import IROF, RegionPerturbation
from lit_xai.metrics.faithfulness.sensitivity_n import SensitivityN

__all__ = ["IROF", "FaithfulnessEstimate", "Monotonicity", "MonotonicityCorrelation", "PixelFlipping", "RegionPerturbation", "Selectivity", "SensitivityN"]
