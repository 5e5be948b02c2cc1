"""Faithfulness metrics as torchmetrics Metrics (DESIGN.md, "Conventions")."""

from lit_xai.metrics.complexity import Complexity, Sparseness
from lit_xai.metrics.confidence import AverageDrop, AverageDropInDeletion, IncreaseInConfidence
from lit_xai.metrics.decoy import DecoyMass
from lit_xai.metrics.faithfulness_correlation import FaithfulnessCorrelation
from lit_xai.metrics.infidelity import Infidelity
from lit_xai.metrics.localisation import EnergyPointingGame, LocalisationMetric, PointingGame, WeakLocalization
from lit_xai.metrics.perturbation import Deletion, Insertion, InsertionDeletion, PerturbationCurveMetric
from lit_xai.metrics.randomization import ModelRandomizationSimilarity, spearman_correlation
from lit_xai.metrics.road import ROAD, ROADCombined
from lit_xai.metrics.rul import NASAScore
from lit_xai.metrics.sensitivity import MaxSensitivity
from lit_xai.metrics.substrates import gaussian_blur

__all__ = [
    "AverageDrop",
    "AverageDropInDeletion",
    "Complexity",
    "DecoyMass",
    "Deletion",
    "EnergyPointingGame",
    "FaithfulnessCorrelation",
    "IncreaseInConfidence",
    "Infidelity",
    "Insertion",
    "InsertionDeletion",
    "LocalisationMetric",
    "MaxSensitivity",
    "ModelRandomizationSimilarity",
    "NASAScore",
    "PerturbationCurveMetric",
    "PointingGame",
    "ROAD",
    "ROADCombined",
    "Sparseness",
    "WeakLocalization",
    "gaussian_blur",
    "spearman_correlation",
]
