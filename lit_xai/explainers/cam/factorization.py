"""Deep Feature Factorization (Collins et al., "Deep Feature Factorization For Concept Discovery", ECCV
2018; pytorch-grad-cam's `DeepFeatureFactorization`): a non-negative matrix factorisation of a layer's
activations into concepts (channel vectors) and, per image, where each concept is (concept maps)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.explainers.base import check_inputs, gradients_enabled
from lit_xai.explainers.layers import captured_output, get_layer, resolve_target_layer
from lit_xai.explainers.upsample import UpsampleMode, check_upsample, upsample
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import model_outputs, unwrap_module


def random_nmf_init(matrix: Tensor, components: int, seed: int) -> tuple[Tensor, Tensor]:
    """scikit-learn's `init="random"` scheme with a torch generator: |N(0, 1)| * sqrt(mean(X) / k) for W
    (n, k) and H (k, m). (scikit-learn draws from numpy's RandomState; the parity test feeds it these.)"""
    generator = torch.Generator().manual_seed(seed)
    scale = (matrix.mean() / components).sqrt()
    h = torch.randn(components, matrix.shape[1], generator=generator, dtype=torch.float64).to(matrix) * scale
    w = torch.randn(matrix.shape[0], components, generator=generator, dtype=torch.float64).to(matrix) * scale
    return w.abs(), h.abs()


def nmf(matrix: Tensor, components: int, seed: int = 0, max_iter: int = 200, tol: float = 1e-4) -> tuple[Tensor, Tensor]:
    """X (n, m) >= 0 ~ W H, W (n, k) >= 0, H (k, m) >= 0, minimising the Frobenius error by scikit-learn's
    coordinate descent (`non_negative_factorization(solver="cd")`, the NMF pytorch-grad-cam runs) from
    `random_nmf_init(X, k, seed)`: alternate sweeps over W and H until the summed violation falls to `tol`
    times the first iteration's, at most `max_iter` iterations (scikit-learn warns when it stops there).
    float64, on the CPU (scikit-learn's compiled loops; an activation matrix is small), returned on X's device."""
    from sklearn.decomposition import non_negative_factorization

    device = matrix.device
    matrix = matrix.detach().double().cpu()
    w, h = random_nmf_init(matrix, components, seed)
    w_fit, h_fit, _ = non_negative_factorization(
        matrix.numpy(), W=w.numpy().copy(), H=h.numpy().copy(), n_components=components, init="custom", solver="cd",
        beta_loss="frobenius", tol=tol, max_iter=max_iter, shuffle=False,
    )
    return torch.from_numpy(w_fit).to(device), torch.from_numpy(h_fit).to(device)


@dataclasses.dataclass
class FeatureFactorization:
    """What `deep_feature_factorization` returns.

    concepts: `(K, components)` channel vectors of the concepts (W plus each channel's offset).
    maps: `(B, components, *spatial)` where each concept is in each image, min-max normalised per map to
        [0, 1] and upsampled to the inputs' size (pytorch-grad-cam's `scale_cam_image`).
    scores: `(components, outputs)` the head applied to each concept vector (None without a head).
    """

    concepts: Tensor
    maps: Tensor
    scores: Optional[Tensor]


def deep_feature_factorization(
    model: nn.Module,
    inputs: Tensor,
    target_layer: str | None = None,
    components: int = 16,
    head: Union[str, Callable[[Tensor], Tensor], None] = None,
    seed: int = 0,
    max_iter: int = 200,
    tol: float = 1e-4,
    upsample_mode: UpsampleMode = "bilinear",
) -> FeatureFactorization:
    """Deep Feature Factorization of the target layer's activations A `(B, K, *s)` over the whole batch:

        X = A as (K, B * prod(s)) (channels as rows), offset_k = min_j X_kj, X - offset = W H (NMF),
        concepts = W + offset (K, components), maps = H reshaped (B, components, *s),

    the NMF as scikit-learn's coordinate descent with a random start seeded by `seed` (`nmf`). Each map
    is min-max normalised and upsampled to the inputs' size; with a `head` (a dotted module path such as
    "fc", or a callable `(components, K) -> (components, outputs)`), `scores` holds the head's outputs for
    each concept vector (pytorch-grad-cam's `computation_on_concepts`: which classes a concept speaks for).
    The model is left as found; the pass runs without gradients.
    """
    check_inputs(inputs)
    components = check_positive_int(components, "components")
    model = unwrap_module(model)
    layer_name = resolve_target_layer(model, target_layer)
    upsample_mode = check_upsample(upsample_mode)
    if isinstance(head, str):
        head_module = get_layer(model, head)
        head_fn: Optional[Callable[[Tensor], Tensor]] = head_module
    elif head is None or callable(head):
        head_fn = head
    else:
        raise ValueError(f"head must be a dotted module path (e.g. 'fc'), a callable or None, got {head!r}")
    with preserved_model_state(model), gradients_enabled(), torch.no_grad():
        with captured_output(get_layer(model, layer_name), layer_name, tuple(inputs.shape)) as captured:
            model_outputs(model, inputs)
        if captured.error is not None:
            raise captured.error
        if not captured.found:
            raise ValueError(f"target layer {layer_name!r} did not run in the forward pass")
        activations = captured.found[0][0].detach().double()
        batch, channels, size = activations.shape[0], activations.shape[1], tuple(activations.shape[2:])
        matrix = activations.nan_to_num(0.0).transpose(0, 1).reshape(channels, -1)
        offset = matrix.amin(dim=1, keepdim=True)
        w, h = nmf(matrix - offset, components, seed, max_iter, tol)
        concepts = w + offset
        maps = h.reshape(components, batch, *size).transpose(0, 1)
        flat = maps.flatten(2)
        low, high = flat.amin(2, keepdim=True), flat.amax(2, keepdim=True)
        maps = ((flat - low) / (high - low + 1e-7)).view_as(maps).float()
        maps = upsample(maps.flatten(0, 1), tuple(inputs.shape[2:]), upsample_mode).view(batch, components, *inputs.shape[2:])
        scores = None
        if head_fn is not None:
            vectors = concepts.T.to(inputs.dtype)
            scores = head_fn(vectors).detach().float()
    return FeatureFactorization(concepts.float(), maps, scores)
