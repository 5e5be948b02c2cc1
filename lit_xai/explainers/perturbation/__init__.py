"""Perturbation methods: the target score of the input under masks, with no gradient (RISE, Occlusion), and
segment methods over `lit_xai.segments` (Feature Ablation, Shapley Value Sampling, KernelSHAP, LIME)."""

from lit_xai.explainers.perturbation.coalitions import FeatureAblation, SegmentExplainer, ShapleyValueSampling
from lit_xai.explainers.perturbation.occlusion import Occlusion
from lit_xai.explainers.perturbation.rise import RISE
from lit_xai.explainers.perturbation.surrogates import KernelShap, Lime

__all__ = ["FeatureAblation", "KernelShap", "Lime", "Occlusion", "RISE", "SegmentExplainer", "ShapleyValueSampling"]
