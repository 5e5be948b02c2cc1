"""Segments (features) of inputs: the groups of input elements that perturbation methods switch on and off.

Feature ablation, Shapley value sampling, KernelSHAP, LIME (captum's `feature_mask`) and the region-based
metrics (IROF, region perturbation) all perturb whole segments. `segments(inputs, features)` is the one
place that turns a description of them into integer ids:

* `"patches"` (default): a regular grid. `patch_size` is an int (every spatial axis) or one per axis;
  `None` cuts every axis into `DEFAULT_PATCHES` patches (`ceil(n / DEFAULT_PATCHES)` elements each, the
  last one cut by the border). For a series `(B, C, T)` the patches are windows of cycles.
* `"slic"`: SLIC superpixels (Achanta et al., "SLIC Superpixels Compared to State-of-the-Art Superpixel
  Methods", TPAMI 2012) from scikit-image (an optional dependency: `pip install scikit-image`), computed
  per image on the channel-last pixels with scikit-image's defaults (`n_segments=100`, `compactness=10`,
  `sigma=0`, `start_label=0`, as quantus' IROF calls it). Images only.
* an integer tensor: `(B, *spatial)`, `(B, C, *spatial)`, or one sample's `(*spatial)` / `(C, *spatial)`
  for every sample, used as given after checks (non-negative integers of a matching shape).

`by` says how channels take part:

* `"space"` (default): a segment is a set of positions, all channels together; ids `(B, *spatial)`.
  For C-MAPSS series these are windows of cycles.
* `"channel"`: a segment is one channel, all positions (C-MAPSS: one sensor); ids `(B, C, *spatial)`.
* `"both"`: a segment is one channel within one spatial segment, id = c * S + s with S the spatial
  segments' count (C-MAPSS: one sensor within one window of cycles); ids `(B, C, *spatial)`.

A given tensor with a channel axis is already per channel and only works with `by="space"` (its ids are
kept). Whatever the source, each sample's ids are renumbered to 0 .. n_b - 1 in increasing order of the
original ids, every id in use (captum's convention for `feature_mask`), so `segment_counts(ids)` is each
sample's number of segments, `ids.flatten(1).amax(1) + 1`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor

Features = Union[str, Tensor]
PatchSize = Union[int, Sequence[int], None]
FEATURES = ("patches", "slic")
BY = ("space", "channel", "both")
DEFAULT_PATCHES = 8


def check_features(features: object) -> Features:
    """`"patches"`, `"slic"` or an integer tensor (checked against the inputs later, in `segments`)."""
    if isinstance(features, Tensor):
        if features.is_floating_point() or features.is_complex() or features.dtype == torch.bool:
            raise ValueError(f"a features tensor must hold integer segment ids, got dtype {features.dtype}; convert with .long()")
        return features
    if features not in FEATURES:
        raise ValueError(
            f"features must be one of {FEATURES} or an integer tensor of segment ids (B, *spatial), got {features!r}"
        )
    return features  # type: ignore[return-value]


def patch_sizes(patch_size: PatchSize, size: tuple[int, ...]) -> tuple[int, ...]:
    """The patch length per spatial axis (`None`: `ceil(n / DEFAULT_PATCHES)`)."""
    if patch_size is None:
        return tuple(max(1, math.ceil(n / DEFAULT_PATCHES)) for n in size)
    values = (patch_size,) * len(size) if isinstance(patch_size, int) and not isinstance(patch_size, bool) else tuple(patch_size)  # type: ignore[arg-type]
    if len(values) != len(size) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"patch_size must be a positive int or one positive int per spatial axis {size}, got {patch_size!r}")
    return values


def patch_grid(size: tuple[int, ...], patch_size: PatchSize, device: torch.device) -> Tensor:
    """Row-major patch ids `(*size)`: position i lies in patch floor(i / p) along each axis."""
    sizes = patch_sizes(patch_size, size)
    ids = torch.zeros((), dtype=torch.long, device=device)
    for axis, (n, p) in enumerate(zip(size, sizes)):
        cells = math.ceil(n / p)
        index = torch.arange(n, device=device) // p
        ids = ids.unsqueeze(-1) * cells + index.view(*(1,) * axis, n)
    return ids


def slic_segments(inputs: Tensor, n_segments: int, compactness: float, sigma: float) -> Tensor:
    """SLIC superpixel ids `(B, H, W)` of images `(B, C, H, W)` (scikit-image, per image, channel-last)."""
    try:
        from skimage.segmentation import slic
    except ImportError as error:
        raise ImportError(
            'features="slic" needs scikit-image: pip install scikit-image (or use features="patches", or pass your own '
            "integer segment tensor)"
        ) from error
    if inputs.ndim != 4:
        raise ValueError(f'features="slic" segments images (B, C, H, W), got inputs of shape {tuple(inputs.shape)}; use "patches" for series')
    images = inputs.detach().to("cpu", torch.float64).movedim(1, -1).numpy()
    labels = [
        torch.from_numpy(
            slic(image, n_segments=n_segments, compactness=compactness, sigma=sigma, start_label=0, channel_axis=-1).astype("int64")
        )
        for image in images
    ]
    return torch.stack(labels).to(inputs.device)


def given_segments(features: Tensor, inputs: Tensor) -> Tensor:
    """A user's id tensor, checked and expanded to `(B, *spatial)` or `(B, C, *spatial)`."""
    batch, channels, size = inputs.shape[0], inputs.shape[1], tuple(inputs.shape[2:])
    shape = tuple(features.shape)
    accepted = {size: "(*spatial)", (channels, *size): "(C, *spatial)", (batch, *size): "(B, *spatial)", (batch, channels, *size): "(B, C, *spatial)"}
    if shape not in accepted:
        raise ValueError(
            f"a features tensor must have shape (B, *spatial) = {(batch, *size)}, (B, C, *spatial) = {(batch, channels, *size)} "
            f"or one sample's (*spatial) / (C, *spatial), got {shape}"
        )
    if features.numel() and int(features.min()) < 0:
        raise ValueError(f"segment ids must be >= 0, got a minimum of {int(features.min())}")
    ids = features.to(device=inputs.device, dtype=torch.long)
    if shape in (size, (channels, *size)) and shape != (batch, *size):
        ids = ids.unsqueeze(0).expand(batch, *shape)
    return ids


def renumber(ids: Tensor) -> Tensor:
    """Each sample's ids mapped to 0 .. n_b - 1 in increasing order of the original ids (vectorised)."""
    batch = ids.shape[0]
    flat = ids.reshape(batch, -1)
    span = int(flat.max()) + 1 if flat.numel() else 1
    keyed = flat + torch.arange(batch, device=ids.device).unsqueeze(1) * span  # disjoint id ranges per sample
    unique, inverse = torch.unique(keyed, return_inverse=True)
    first = torch.searchsorted(unique, torch.arange(batch, device=ids.device) * span)  # each sample's first rank
    return (inverse - first.unsqueeze(1)).reshape(ids.shape)


def segments(
    inputs: Tensor,
    features: Features = "patches",
    *,
    patch_size: PatchSize = None,
    by: str = "space",
    n_segments: int = 100,
    compactness: float = 10.0,
    sigma: float = 0.0,
) -> Tensor:
    """Segment ids of channel-first `inputs` `(B, C, *spatial)` (see the module docstring): a long tensor
    `(B, *spatial)` for `by="space"`, `(B, C, *spatial)` for `by="channel"` / `"both"` or a per-channel
    features tensor, on the inputs' device, each sample's ids 0 .. n_b - 1 with every id in use.

    `patch_size` applies to `"patches"`; `n_segments`, `compactness`, `sigma` to `"slic"` (scikit-image's
    meaning). Callers move a channels-last layout to channel-first first (`lit_xai.targets.to_channels_first`).
    """
    if not isinstance(inputs, Tensor) or inputs.ndim not in (3, 4):
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be (B, C, H, W) images or (B, C, T) series, channel first, got {shape}")
    if by not in BY:
        raise ValueError(f"by must be one of {BY} (space: positions, all channels; channel: one segment per channel; both), got {by!r}")
    features = check_features(features)
    batch, channels, size = inputs.shape[0], inputs.shape[1], tuple(inputs.shape[2:])
    if isinstance(features, Tensor):
        ids = given_segments(features, inputs)
        if ids.ndim == inputs.ndim:
            if by != "space":
                raise ValueError(f'a per-channel features tensor (B, C, *spatial) already says how channels are segmented; use by="space", not {by!r}')
            return renumber(ids)
        spatial = ids
    elif features == "patches":
        spatial = patch_grid(size, patch_size, inputs.device).unsqueeze(0).expand(batch, *size)
    else:
        spatial = slic_segments(inputs, n_segments, compactness, sigma)
    if by == "space":
        return renumber(spatial)
    channel = torch.arange(channels, device=inputs.device).view(1, channels, *(1,) * len(size))
    if by == "channel":
        return channel.expand(batch, channels, *size).clone()
    spatial = renumber(spatial)
    counts = spatial.flatten(1).amax(1) + 1
    return channel * counts.view(batch, 1, *(1,) * len(size)) + spatial.unsqueeze(1)


def segment_counts(ids: Tensor) -> Tensor:
    """Each sample's number of segments `(B,)` for ids from `segments` (0 .. n_b - 1, all in use)."""
    return ids.flatten(1).amax(1) + 1
