"""Layer-wise Relevance Propagation, as zennit separates it: rules (`rules.py`: what a layer's backward does
to relevance), composites (`composites.py`: which layer gets which rule), the modified backward pass
(`backward.py`) and the explainers (`explainers.py`: `LRP` at the input, `LayerLRP` at a layer)."""

from lit_xai.explainers.lrp.explainers import LRP, LayerLRP

__all__ = ["LRP", "LayerLRP"]
