"""Methods that read a vision transformer's own anatomy (`vit.py`): Attention Rollout and LeGrad
(`attention.py`), and the target logit decomposed over layers, heads and tokens (`head_decomposition.py`).
Layer methods (CAMs) explain transformer tokens through `lit_xai.explainers.tokens`."""

from lit_xai.explainers.transformers.attention import AttentionRollout, LeGrad
from lit_xai.explainers.transformers.head_decomposition import HeadDecomposition, head_localisation

__all__ = ["AttentionRollout", "HeadDecomposition", "LeGrad", "head_localisation"]
