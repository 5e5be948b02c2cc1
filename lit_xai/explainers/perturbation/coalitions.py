"""Segment-wise perturbation: the score of the input with some segments kept and the rest set to a baseline.

`SegmentExplainer` is the base of Feature Ablation, Shapley Value Sampling, KernelSHAP and LIME. It cuts
the inputs into segments (`lit_xai.segments.segments`: a patch grid by default, SLIC superpixels, a given id
tensor; C-MAPSS series by cycle window, by sensor or both with `by=`), and evaluates coalitions: for a row
(sample b, kept-segment mask z over b's segments) the model sees

    x_z = x where z[segment(i)] else baseline,

one pass per coalition, the coalitions of all samples going through the model in chunks of
`internal_batch_size` without gradients (`lit_xai.chunking.index_chunks`). A method returns one value per
segment, and every element of a segment gets its segment's value (all channels when segments are spatial).
Random coalitions and permutations are drawn per sample (`lit_xai.explainers.seeding`), so a sample's
result never depends on its batch, the chunks or the process.
"""

from __future__ import annotations

import abc
from typing import Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, index_chunks
from lit_xai.explainers.attributions import InputSpaceExplainer, clean_pass, expand_batch
from lit_xai.explainers.seeding import pair_generator, sample_seeds
from lit_xai.segments import BY, Features, PatchSize, check_features, segment_counts, segments
from lit_xai.targets import Target, model_outputs, select_scores


class SegmentExplainer(InputSpaceExplainer):
    """Base of the segment methods (see the module docstring).

    Args:
        features: "patches" (default), "slic", or an integer tensor of segment ids `(B, *spatial)`
            (`lit_xai.segments`).   patch_size: the patches' size (None: 8 patches per axis).
        by: "space" (segments of positions, all channels), "channel" (one segment per channel: a C-MAPSS
            sensor) or "both" (a channel within a spatial segment).
        baseline: what a removed segment is set to: a number or a tensor broadcastable to the inputs.
        internal_batch_size: coalitions per pass.   reduce: over channels, as every input-space method.
    """

    def __init__(
        self,
        features: Features = "patches",
        patch_size: PatchSize = None,
        by: str = "space",
        baseline: Union[float, Tensor] = 0.0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        self.features = check_features(features)
        if by not in BY:
            raise ValueError(f"by must be one of {BY}, got {by!r}")
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
            raise ValueError(f"baseline must be a number or a tensor broadcastable to the inputs, got {type(baseline).__name__}")
        self.patch_size, self.by, self.baseline = patch_size, by, baseline
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def segment_ids(self, inputs: Tensor) -> Tensor:
        return segments(inputs, self.features, patch_size=self.patch_size, by=self.by)

    def coalition_scores(
        self, model: nn.Module, inputs: Tensor, ids: Tensor, rows: Tensor, kept: Tensor, targets: Tensor | Target | None
    ) -> Tensor:
        """Target scores `(P,)` of the coalitions `kept` `(P, segments)` (bool) of the samples `rows` `(P,)`."""
        baseline = expand_batch(self.baseline, inputs, "baseline")
        channel_axis = ids.ndim == inputs.ndim
        scores = inputs.new_empty(rows.shape[0])
        with torch.no_grad():
            for chunk in index_chunks(rows.shape[0], self.internal_batch_size, inputs):
                sample = rows[chunk]
                segment = ids[sample]
                keep = kept[chunk].gather(1, segment.flatten(1)).view(segment.shape)
                if not channel_axis:
                    keep = keep.unsqueeze(1)
                perturbed = torch.where(keep, inputs[sample], baseline[sample])
                outputs = model_outputs(model, perturbed, sample)
                scores[chunk] = select_scores(outputs, None if targets is None else targets[sample]).to(scores.dtype)
        return scores

    def spread(self, values: Tensor, ids: Tensor, inputs: Tensor) -> Tensor:
        """Each element's segment value `(B, C, *spatial)` from per-segment values `(B, segments)`."""
        mapped = values.gather(1, ids.flatten(1)).view(ids.shape).to(inputs.dtype)
        return mapped.expand(inputs.shape) if mapped.ndim == inputs.ndim else mapped.unsqueeze(1).expand(inputs.shape)

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | Target | None) -> Tensor:
        ids = self.segment_ids(inputs)
        counts = segment_counts(ids)
        full, targets = clean_pass(model, inputs, targets)
        return self.spread(self.segment_values(model, inputs, ids, counts, full, targets), ids, inputs)

    @abc.abstractmethod
    def segment_values(
        self, model: nn.Module, inputs: Tensor, ids: Tensor, counts: Tensor, full: Tensor, targets: Tensor | Target | None
    ) -> Tensor:
        """One value per segment `(B, max segments)` (segments a sample lacks: 0); `full` = y^c(x) `(B,)`."""


class FeatureAblation(SegmentExplainer):
    """Feature Ablation (captum's `FeatureAblation` with a feature mask): each segment's value is the drop
    of the target score (the raw logit) when that segment alone is set to the baseline,

        phi_j = y^c(x) - y^c(x with segment j set to the baseline),

    one pass per segment (B x segments coalitions). See `SegmentExplainer` for the arguments.
    """

    def segment_values(self, model: nn.Module, inputs: Tensor, ids: Tensor, counts: Tensor, full: Tensor, targets: Tensor | Target | None) -> Tensor:
        width = int(counts.max())
        rows = torch.repeat_interleave(torch.arange(inputs.shape[0], device=inputs.device), counts)
        dropped = torch.cat([torch.arange(int(n), device=inputs.device) for n in counts])
        kept = torch.ones(rows.shape[0], width, dtype=torch.bool, device=inputs.device)
        kept[torch.arange(rows.shape[0], device=inputs.device), dropped] = False
        scores = self.coalition_scores(model, inputs, ids, rows, kept, targets)
        values = inputs.new_zeros(inputs.shape[0], width)
        values[rows, dropped] = full[rows].to(values.dtype) - scores
        return values


def sample_permutations(inputs: Tensor, counts: Tensor, samples: int, seed: int) -> list[Tensor]:
    """Per sample b, `samples` uniform permutations `(samples, counts[b])` of its segments, seeded per sample."""
    permutations = []
    for own_seed, n in zip(sample_seeds(inputs, seed), counts.tolist()):
        generator = pair_generator(own_seed, -1, stream=5)
        permutations.append(torch.stack([torch.randperm(n, generator=generator) for _ in range(samples)]))
    return permutations


class ShapleyValueSampling(SegmentExplainer):
    """Shapley Value Sampling (Castro et al., "Polynomial calculation of the Shapley value based on
    sampling", Computers & Operations Research 2009; captum's `ShapleyValueSampling`): segments are added,
    one at a time, to the all-baseline input in the order of a random permutation, and each segment's value
    is its mean marginal contribution over `samples` permutations,

        phi_j = (1 / S) sum_{s=1..S} [y^c(x_{P_s,j} + j) - y^c(x_{P_s,j})],

    P_s,j the segments before j in permutation s (1 + S x segments passes per sample). Permutations are
    drawn per sample (`seed`); `permutations(inputs)` returns them. Exact for models additive over segments.
    """

    def __init__(
        self,
        features: Features = "patches",
        patch_size: PatchSize = None,
        by: str = "space",
        baseline: Union[float, Tensor] = 0.0,
        samples: int = 25,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(features, patch_size, by, baseline, internal_batch_size, reduce)
        self.samples, self.seed = check_positive_int(samples, "samples"), seed

    def permutations(self, inputs: Tensor) -> list[Tensor]:
        """Each sample's permutations `(samples, segments)` (inputs channel-first, as the explainer sees them)."""
        return sample_permutations(inputs, segment_counts(self.segment_ids(inputs)), self.samples, self.seed)

    def segment_values(self, model: nn.Module, inputs: Tensor, ids: Tensor, counts: Tensor, full: Tensor, targets: Tensor | Target | None) -> Tensor:
        device, width = inputs.device, int(counts.max())
        permutations = sample_permutations(inputs, counts, self.samples, self.seed)
        rows, kept = [], []
        for b, permutation in enumerate(permutations):
            n = permutation.shape[1]
            rank = torch.empty_like(permutation)
            rank.scatter_(1, permutation, torch.arange(n).expand_as(permutation))
            # coalition k of permutation s keeps the segments of rank <= k; one empty coalition first
            prefixes = rank.unsqueeze(1) <= torch.arange(n).view(1, n, 1)  # (S, n steps, n segments)
            masks = torch.zeros(1 + self.samples * n, width, dtype=torch.bool)
            masks[1:, :n] = prefixes.reshape(-1, n)
            kept.append(masks)
            rows.append(torch.full((masks.shape[0],), b, dtype=torch.long))
        scores = self.coalition_scores(model, inputs, ids, torch.cat(rows).to(device), torch.cat(kept).to(device), targets)
        values = inputs.new_zeros(inputs.shape[0], width)
        start = 0
        for b, permutation in enumerate(permutations):
            n = permutation.shape[1]
            chunk = scores[start : start + 1 + self.samples * n]
            start += chunk.shape[0]
            steps = chunk[1:].view(self.samples, n)
            previous = torch.cat([chunk[:1].expand(self.samples, 1), steps[:, :-1]], dim=1)
            gains = (steps - previous).to(values.dtype)
            values[b].index_add_(0, permutation.flatten().to(device), gains.flatten())
        return values / self.samples
