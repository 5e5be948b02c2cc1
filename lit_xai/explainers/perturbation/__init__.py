"""Perturbation methods: the target score of the input under masks, with no gradient (RISE, Occlusion)."""

from lit_xai.explainers.perturbation.occlusion import Occlusion
from lit_xai.explainers.perturbation.rise import RISE

__all__ = ["Occlusion", "RISE"]
