"""Faithfulness metrics as torchmetrics Metrics (DESIGN.md, "Conventions")."""

from lit_xai.metrics.axiomatic import Completeness, NonSensitivity
from lit_xai.metrics.batch_relative import Consistency, Sufficiency
from lit_xai.metrics.complexity import Complexity, EffectiveComplexity, Sparseness
from lit_xai.metrics.confidence import AverageDrop, AverageDropInDeletion, IncreaseInConfidence
from lit_xai.metrics.decoy import DecoyMass
from lit_xai.metrics.efficient_mprt import EfficientMPRT
from lit_xai.metrics.faithfulness import (
    IROF,
    FaithfulnessEstimate,
    Monotonicity,
    MonotonicityCorrelation,
    PixelFlipping,
    RegionPerturbation,
    Selectivity,
    SensitivityN,
)
from lit_xai.metrics.faithfulness_correlation import FaithfulnessCorrelation
from lit_xai.metrics.focus import Focus
from lit_xai.metrics.infidelity import Infidelity
from lit_xai.metrics.input_invariance import InputInvariance
from lit_xai.metrics.localisation import EnergyPointingGame, LocalisationMetric, PointingGame, WeakLocalization
from lit_xai.metrics.perturbation import Deletion, Insertion, InsertionDeletion, PerturbationCurveMetric
from lit_xai.metrics.random_logit import RandomLogit
from lit_xai.metrics.randomization import ModelRandomizationSimilarity, spearman_correlation
from lit_xai.metrics.relevance_localisation import (
    AttributionLocalisation,
    LocalisationAUC,
    RelevanceMassAccuracy,
    RelevanceRankAccuracy,
    TopKIntersection,
)
from lit_xai.metrics.road import ROAD, ROADCombined
from lit_xai.metrics.robustness import (
    AvgSensitivity,
    Continuity,
    LocalLipschitzEstimate,
    RelativeInputStability,
    RelativeOutputStability,
    RelativeRepresentationStability,
)
from lit_xai.metrics.rul import NASAScore
from lit_xai.metrics.sensitivity import MaxSensitivity
from lit_xai.metrics.smooth_mprt import SmoothMPRT
from lit_xai.metrics.substrates import gaussian_blur

__all__ = [
    "AttributionLocalisation",
    "AverageDrop",
    "AverageDropInDeletion",
    "AvgSensitivity",
    "Completeness",
    "Complexity",
    "DecoyMass",
    "Consistency",
    "Continuity",
    "Deletion",
    "EffectiveComplexity",
    "EfficientMPRT",
    "EnergyPointingGame",
    "FaithfulnessCorrelation",
    "FaithfulnessEstimate",
    "Focus",
    "IROF",
    "IncreaseInConfidence",
    "Infidelity",
    "InputInvariance",
    "Insertion",
    "InsertionDeletion",
    "LocalLipschitzEstimate",
    "LocalisationAUC",
    "LocalisationMetric",
    "MaxSensitivity",
    "ModelRandomizationSimilarity",
    "Monotonicity",
    "MonotonicityCorrelation",
    "NASAScore",
    "NonSensitivity",
    "PerturbationCurveMetric",
    "PixelFlipping",
    "PointingGame",
    "ROAD",
    "ROADCombined",
    "RandomLogit",
    "RegionPerturbation",
    "RelativeInputStability",
    "RelativeOutputStability",
    "RelativeRepresentationStability",
    "RelevanceMassAccuracy",
    "RelevanceRankAccuracy",
    "Selectivity",
    "SensitivityN",
    "SmoothMPRT",
    "Sparseness",
    "Sufficiency",
    "TopKIntersection",
    "WeakLocalization",
    "gaussian_blur",
    "spearman_correlation",
]
