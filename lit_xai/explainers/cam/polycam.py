"""Poly-CAM: score-weighted CAMs of several layers, fused from the deepest to the shallowest.

Englebert, Cornu and De Vleeschouwer, "Poly-CAM: High resolution class activation map for convolutional
neural networks", arXiv 2204.13359 (2022); Machine Vision and Applications 35 (2024). Official code:
github.com/aenglebert/polycam (`polycam/core.py`, `polycam/polycam.py`, `polycam/utils.py`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lit_xai.chunking import check_internal_batch_size
from lit_xai.explainers.base import Explainer
from lit_xai.explainers.cam.scoring import MaskBuilder, masked_target_scores, normalised_masks, percentile_masks
from lit_xai.explainers.cam.weighting import weighted_channel_sum
from lit_xai.explainers.gradients import forward_with_layers
from lit_xai.explainers.upsample import UpsampleMode, check_upsample, upsample
from lit_xai.targets import model_outputs, resolve_targets, target_probabilities

VARIANTS = ("plus", "minus", "plusminus")
MASKS: dict[str, MaskBuilder] = {"percentile": percentile_masks, "minmax": normalised_masks}
LNORM_EPS = 1e-12
"""Floor of the local mean LNorm divides by (the official code's `torch.maximum(norm, 1e-12)`)."""


def _spatial_size(output: object, inputs: Tensor) -> tuple[int, ...] | None:
    """The spatial size of a `(B, K, *spatial)` output with more than one position, else None."""
    if not isinstance(output, Tensor) or output.ndim != inputs.ndim or output.shape[0] != inputs.shape[0]:
        return None
    size = tuple(output.shape[2:])
    return size if math.prod(size) > 1 else None


def find_polycam_layers(model: nn.Module, inputs: Tensor) -> list[str]:
    """The layers Poly-CAM fuses, shallow to deep: the last module of each spatial stage.

    One forward pass of `inputs` (no gradients) records, in the order their forward passes finish, the
    output of every submodule. Outputs shaped `(B, K, *spatial)` with more than one spatial position are
    "spatial"; the others (Flatten, Linear, global pooling, squeeze-and-excitation gates) are ignored.
    Consecutive spatial outputs of one size form a stage, and each stage contributes its last module, so
    a layer is chosen wherever the next module changes the spatial size (the official `find_layer_list`
    rule; the input itself is never a candidate). Because a container finishes after its children,
    ResNet's stages are named by their blocks ("layer1") rather than by the blocks' last ReLU.

    Where this differs from the official code:

    * Outputs with a single spatial position are skipped (the official code stops at the first one), so
      a squeeze-and-excitation gate inside a network does not end the search early.
    * The deepest stage is closed by the end of the spatial part of the network, where the official code
      stops at the first non-spatial output without taking the stage before it: a Conv1d stack followed
      by Flatten + Linear, or a net ending in a functional mean, keeps its deepest features.
    * The deepest spatial stage is skipped when none of its modules has parameters of its own: it only
      re-pools the stage before it. So VGG's trailing 7x7 stage (max-pool, avgpool) at 224 px is left out,
      as officially. A pooling-only stage that is followed by another spatial stage is kept, as officially:
      at input sizes other than 224 VGG's adaptive avgpool changes the size of the last max-pool's output
      (e.g. 8x8 -> 7x7 at 256 px), and the stage that output closes is named by its last module,
      "features" (the container, which outputs the pooled map), as the official code names it.
    * A module that runs more than once per forward pass (a shared `nn.ReLU`) cannot be captured by
      name: the stage's last module that runs once is taken instead (e.g. the conv before a shared ReLU).

    Raises a ValueError when the model has no spatial layer, or a stage has no module that runs once.
    """
    records: list[tuple[str, nn.Module, tuple[int, ...] | None]] = []

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: object, output: object) -> None:
            records.append((name, module, _spatial_size(output, inputs)))

        return hook

    handles = []
    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(make_hook(name)))
        with torch.no_grad():
            model_outputs(model, inputs)
    finally:
        for handle in handles:
            handle.remove()

    calls = Counter(name for name, _, _ in records)
    stages: list[list[tuple[str, nn.Module]]] = []
    previous: tuple[int, ...] | None = None
    for name, module, size in records:
        if size is None:
            continue
        if size != previous:
            stages.append([])
            previous = size
        stages[-1].append((name, module))
    if not stages:
        raise ValueError(
            f"{type(model).__name__} has no layer whose output is (B, K, *spatial) with more than one spatial position "
            f"for inputs of shape {tuple(inputs.shape)}; Poly-CAM needs convolutional layers (pass target_layers explicitly)"
        )
    chosen = []
    for index, stage in enumerate(stages):
        pooling_only = not any(next(module.parameters(recurse=False), None) is not None for _, module in stage)
        if pooling_only and index == len(stages) - 1:
            continue  # the deepest stage only re-pools the stage before it
        once = [name for name, _ in stage if calls[name] == 1]
        if not once:
            raise ValueError(
                f"no module of the spatial stage ending at {stage[-1][0]!r} runs exactly once per forward pass; "
                "pass target_layers explicitly"
            )
        chosen.append(once[-1])
    if not chosen:
        raise ValueError(
            f"the only spatial stage of {type(model).__name__} only pools (no module with parameters); "
            "pass target_layers explicitly"
        )
    return chosen


def local_normalisation(cam: Tensor, size: tuple[int, ...]) -> Tensor:
    """LNorm: `cam / max(up(down(cam, size)), 1e-12)` (bilinear / linear both ways, align_corners=False).

    `size` is the deeper layer's resolution, so every region of `cam` that one deeper position covers
    gets a local mean of about 1 (with a 2x size ratio, `down` is exactly the 2x2 mean).
    """
    local_mean = upsample(upsample(cam, size, "bilinear"), tuple(cam.shape[1:]), "bilinear")
    return cam / local_mean.clamp_min(LNORM_EPS)


class PolyCAM(Explainer):
    """Poly-CAM (Englebert, Cornu & De Vleeschouwer, "Poly-CAM: High resolution class activation map for
    convolutional neural networks", arXiv 2204.13359, 2022; official code github.com/aenglebert/polycam).

    A score-weighted CAM at each of L layers (shallow l = 1 to deep l = L), fused from the deepest:

        M_k^l    = up(clip((A_k^l - p_0.1) / max(p_99.9, 1e-12), 0, 1))     masks="percentile" (default)
        M_k^l    = (up'(A_k^l) - min) / (max - min + 1e-8)                   masks="minmax"
        s(z)     = softmax(f(z))_c                              (a one-output regressor: f(z) itself)
        plus:      w_k^l = s(x * M_k^l)                                          (PCAM+)
        minus:     w_k^l = ReLU(s(x) - s(x * (1 - M_k^l)))                       (PCAM-)
        plusminus: w_k^l = ReLU(s(x * M_k^l) + s(x) - s(x * (1 - M_k^l)))        (PCAM+/-, the default)
        C^l      = ReLU(sum_k w_k^l A_k^l)                                        at layer l's resolution
        P^L      = C^L
        P^l      = ReLU(LNorm(C^l, size^{l+1}) * up(P^{l+1}, size^l)),     l = L-1, ..., 1
        LNorm(C, s) = C / max(up(down(C, s)), 1e-12)                      (bilinear, align_corners=False)

    and the map `(B, *spatial)`, float32, >= 0, raw, is `up(P^1)` at input resolution (`upsample`; "none" returns P^1 at the shallowest
    layer's resolution). LNorm gives each region that one deeper position covers a local mean of ~1, so
    the deeper map sets the magnitude and the shallower one only redistributes it at finer resolution.

    Masks (`masks`):

    * "percentile" (default), the authors' code (`normalize` then `F.interpolate` in `polycam/polycam.py`):
      each channel is scaled at layer resolution by its own 0.1st and 99.9th percentiles (over its
      positions, linear interpolation between order statistics as numpy.percentile), clipped to [0, 1],
      then upsampled to the input size (bilinear / linear, align_corners=False): `scoring.percentile_masks`.
      The divisor is p_99.9, not p_99.9 - p_0.1, as published. With these masks the map equals the
      authors' PCAM output (after their final percentile normalisation) to float round-off.
    * "minmax": Score-CAM's masks (Wang et al. 2020; pytorch-grad-cam): the channel is upsampled first
      (up': bilinear / linear, align_corners=True) and then min-max normalised exactly
      (`scoring.normalised_masks`). The paper's text describes the masks only as normalised activations;
      these were lit-xai's masks before; the maps differ from the authors' by up to 0.1 - 0.2 (max abs on
      [0, 1]-scaled maps).

    Either way a constant channel gets the mask 0, so its inverse mask is 1 (as the authors' code gives).

    Choices, with their source:

    * Layers (`target_layers=None`): the last module of each spatial stage, found by one hooked forward
      pass (`find_polycam_layers`: the official `find_layer_list` rule, with the differences listed there);
      for a ResNet `["relu", "layer1", "layer2", "layer3", "layer4"]`. An explicit list is used as given
      and must be ordered as the forward pass runs it.
    * Score: the softmax probability of the target, as the official code (`softmax_sigmoid` of the output),
      not the raw logit used by the other explainers here. PCAM+ weights are used unnormalised (no
      softmax over channels as in Score-CAM), so a logit would make the map depend on the logits' free
      additive constant (adding c to every logit leaves the prediction unchanged but adds c * sum_k A_k
      to C^l), and PCAM+/- adds a score to a score difference, which is meaningful on the bounded
      probability scale. For a one-output regressor the raw prediction is used (a sigmoid of a regression
      output, as the official code would apply, saturates), as the metrics' convention does.
    * Weights: PCAM+ keeps the scores as they are (probabilities, so >= 0 for classifiers), PCAM- and
      PCAM+/- take the ReLU of the weight, as in the official `get_weights`.
    * Fusion and LNorm: as the official `compute_cams` / `local_relevance_normalization` (bilinear
      resampling, align_corners=False, floor 1e-12, ReLU after each product). Time series use linear
      resampling in the same places.

    Deviations from the official code: the map is returned raw instead of percentile-normalised to
    [0, 1] (their picture: the map of `upsample="none"` scaled as a percentile mask, then upsampled); targets are per sample and
    whole batches are explained at once; layers are found on the actual inputs (the official class finds
    them once, on a random 224 x 224 input, unless given a list; its `find_layer_list(model, input_shape)`
    on the actual size gives what `find_polycam_layers` gives on VGG and ResNet), without switching the
    model to eval mode.

    Cost: one forward pass per (sample, channel) of every chosen layer (two for "plusminus"), without
    gradients, in batches of `internal_batch_size`.
    """

    def __init__(
        self,
        variant: str = "plusminus",
        target_layers: list[str] | None = None,
        upsample: UpsampleMode = "bilinear",
        internal_batch_size: int | None = None,
        masks: str = "percentile",
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS} (PCAM+, PCAM-, PCAM+/-), got {variant!r}")
        if masks not in MASKS:
            raise ValueError(
                f"masks must be one of {tuple(MASKS)} ('percentile': the authors' code; 'minmax': Score-CAM's), got {masks!r}"
            )
        self.variant = variant
        self.masks = masks
        self.target_layers = self._check_layer_names(target_layers)
        self.upsample = check_upsample(upsample)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    @staticmethod
    def _check_layer_names(target_layers: Sequence[str] | None) -> list[str] | None:
        if target_layers is None:
            return None
        if isinstance(target_layers, str) or not isinstance(target_layers, Sequence) or not target_layers:
            raise ValueError(
                f"target_layers must be None or a non-empty list of dotted module paths ordered shallow to deep, "
                f"e.g. ['layer1', 'layer2', 'layer3', 'layer4'], got {target_layers!r}"
            )
        names = list(target_layers)
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"target_layers must hold non-empty strings, got {names!r}")
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        if duplicates:
            raise ValueError(f"target_layers names {duplicates} more than once; give each layer once")
        return names

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        with torch.no_grad():
            names = self.target_layers if self.target_layers is not None else find_polycam_layers(model, inputs)
            outputs, activations = forward_with_layers(model, names, inputs)
            targets = resolve_targets(outputs, targets)
            baseline = target_probabilities(outputs, targets).to(inputs.dtype)
            fused: Tensor | None = None
            for layer_activations in reversed(activations):
                weights = self.channel_weights(model, inputs, layer_activations, targets, baseline)
                cam = torch.relu(weighted_channel_sum(weights, layer_activations))
                if fused is None:
                    fused = cam
                else:
                    size = tuple(cam.shape[1:])
                    fused = torch.relu(local_normalisation(cam, tuple(fused.shape[1:])) * upsample(fused, size, "bilinear"))
        assert fused is not None
        return upsample(fused, tuple(inputs.shape[2:]), self.upsample, model, inputs, targets)

    def channel_weights(
        self, model: nn.Module, inputs: Tensor, activations: Tensor, targets: Tensor | None, baseline: Tensor
    ) -> Tensor:
        """`(B, K)` weights of one layer's channels for the variant and masks (see the class docstring)."""

        def scores(inverse: bool) -> Tensor:
            return masked_target_scores(
                model, inputs, activations, targets, self.internal_batch_size, inverse=inverse, score=target_probabilities,
                masks=MASKS[self.masks],
            )

        weights = scores(inverse=False) if self.variant != "minus" else activations.new_zeros(activations.shape[:2])
        if self.variant in ("minus", "plusminus"):
            weights = torch.relu(weights + baseline.unsqueeze(1) - scores(inverse=True))
        return weights
