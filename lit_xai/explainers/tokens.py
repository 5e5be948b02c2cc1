"""Seeing a layer's output as a conv feature map `(B, D, h, w)`, whatever its layout, and back.

Layer methods (CAMs) weigh channels `K` over positions `(h, w)`. Convolutional layers output that layout
already; transformers output tokens:

* ViT blocks: `(B, N + p, D)`, p = 1 prefix (class) token, N = h * w patch tokens;
* Swin stages: `(B, h, w, D)` (channels last).

`spatial_view` recognises the layout from the output's shape and the input's size, and returns a
`TokenView` that maps the output to `(B, D, h, w)` (`to_spatial`, prefix tokens dropped) and a spatial
tensor back to the output's layout (`to_output`, prefix tokens taken from the original output). A layer
hook returns `to_output(to_spatial(output))`, so everything downstream of the layer depends on the
spatial tensor and gradients with respect to it are the gradients with respect to the patch tokens,
rearranged: the same as applying pytorch-grad-cam's `reshape_transform` to activations and gradients.

How the layout is recognised, for inputs `(B, C, H, W)` and an output of shape:

* `(B, a, b, c)`: channels first (conv) when `(b, c)` is a strided grid of `(H, W)` (some integer
  stride s with b, c both the floors or both the ceilings of H / s, W / s); else channels last (Swin) when `(a, b)` is
  one; else channels first when `b <= H` and `c <= W` (unpadded convs); otherwise a ValueError.
* `(B, T, D)`: tokens. The grid comes from the token count: T - 1 tokens (a class token) when they form
  a strided grid of `(H, W)`, else T tokens; otherwise a ValueError.
* for series inputs `(B, C, T)`: `(B, K, t)` is channels first, as before.

Anything else, or a guess that is wrong for a model (register tokens, non-grid layouts), takes an
explicit `reshape=` callable on the explainer: `output -> (B, D, h, w)`, which must select and
rearrange entries of the output (like pytorch-grad-cam's `reshape_transform`). Its inverse is the
adjoint: `to_output(S) = O + R^T(S - R(O))`, which leaves the output's values unchanged, routes the
gradient as `R(dL/dO)` and, for a selection, writes an ablated `S` into the selected entries.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

Reshape = Callable[[Tensor], Tensor]
"""A user's `output -> (B, D, h, w)` layout transform (selection and rearrangement of entries)."""

_RESHAPE: contextvars.ContextVar[Optional[Reshape]] = contextvars.ContextVar("lit_xai_reshape", default=None)


@contextmanager
def reshape_override(reshape: Optional[Reshape]) -> Iterator[None]:
    """Inside the block, layer captures use `reshape` instead of guessing the layout (None: guess).

    Layer explainers enter it around their call with their own `reshape=` argument, so every internal
    forward pass (gradient sources, score passes, baseline banks) sees the same layout."""
    token = _RESHAPE.set(reshape)
    try:
        yield
    finally:
        _RESHAPE.reset(token)


def current_reshape() -> Optional[Reshape]:
    return _RESHAPE.get()


def check_reshape(reshape: object) -> Optional[Reshape]:
    if reshape is None or callable(reshape):
        return reshape  # type: ignore[return-value]
    raise ValueError(f"reshape must be None (guess the layout) or a callable output -> (B, D, h, w), got {reshape!r}")


def is_strided_grid(grid: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether `grid` is `size` divided by one integer stride s, both sides rounded down (unpadded
    patches) or both rounded up (padded ones)."""
    (h, w), (height, width) = grid, size
    if h < 1 or w < 1:
        return False
    for stride in range(1, max(height, width) + 1):
        if (h, w) in ((height // stride, width // stride), (-(-height // stride), -(-width // stride))):
            return True
    return False


def token_grid(tokens: int, size: tuple[int, int]) -> tuple[int, int] | None:
    """`(h, w)` with `h * w == tokens` forming a strided grid of `size`, or None (several: the one whose
    aspect ratio is closest to the input's)."""
    grids = [(h, tokens // h) for h in range(1, tokens + 1) if tokens % h == 0 and is_strided_grid((h, tokens // h), size)]
    if not grids:
        return None
    ratio = size[0] / size[1]
    return min(grids, key=lambda grid: abs(grid[0] / grid[1] - ratio))


@dataclass(frozen=True)
class TokenView:
    """How one layer's output maps to `(B, D, *spatial)`.

    kind: "channels_first" (conv; unchanged), "channels_last" (`(B, h, w, D)`), "tokens" (`(B, p + h*w, D)`)
    or "custom" (a user's `reshape`); prefix: tokens before the grid (class token); grid: `(h, w)`;
    output: the (detached) output it was found on, when a capture kept it.
    """

    kind: str
    prefix: int = 0
    grid: tuple[int, ...] = ()
    reshape: Optional[Reshape] = None
    output: Optional[Tensor] = None

    def to_spatial(self, output: Tensor) -> Tensor:
        if self.kind == "channels_first":
            return output
        if self.kind == "channels_last":
            return output.permute(0, 3, 1, 2)
        if self.kind == "tokens":
            batch, _, dim = output.shape
            return output[:, self.prefix :].reshape(batch, *self.grid, dim).permute(0, 3, 1, 2)
        assert self.reshape is not None
        return self.reshape(output)

    def to_output(self, spatial: Tensor, like: Tensor) -> Tensor:
        """The layer output whose spatial view is `spatial`; entries outside the view (prefix tokens) come
        from `like`, an output of the same layer for the same samples (detached)."""
        if self.kind == "channels_first":
            return spatial.clone()  # the next module may work in place (ReLU(inplace=True))
        if self.kind == "channels_last":
            return spatial.permute(0, 2, 3, 1).contiguous()
        if self.kind == "tokens":
            patches = spatial.permute(0, 2, 3, 1).reshape(spatial.shape[0], -1, spatial.shape[1])
            return torch.cat([like[:, : self.prefix].detach().to(patches.dtype), patches], dim=1)
        return adjoint_restore(self.to_spatial, spatial, like.detach())


def adjoint_restore(reshape: Reshape, spatial: Tensor, like: Tensor) -> Tensor:
    """`like + R^T(spatial - R(like))` for a linear `R` (see the module docstring)."""
    with torch.enable_grad():
        probe = like.detach().requires_grad_(True)
        projected = reshape(probe)
        if projected.shape != spatial.shape:
            raise ValueError(f"reshape gives {tuple(projected.shape)} for this layer, but the spatial tensor is {tuple(spatial.shape)}")
        (scattered,) = torch.autograd.grad(projected, probe, grad_outputs=spatial - projected.detach(), create_graph=spatial.requires_grad)
    return like + scattered


def spatial_view(output: Tensor, inputs_shape: tuple[int, ...], reshape: Optional[Reshape] = None, name: str = "") -> TokenView:
    """The `TokenView` of a layer output for inputs of shape `inputs_shape` (see the module docstring).

    Raises a ValueError naming the layer, its output shape and the fix when the layout is not understood."""
    layer = f"target layer {name!r}" if name else "the layer"
    batch = inputs_shape[0]
    if not isinstance(output, Tensor):
        raise TypeError(f"{layer} returns {type(output).__name__}, not a tensor; choose a layer that returns one")
    hint = (
        "pass reshape=<callable output -> (B, D, h, w)> to the explainer (e.g. pytorch-grad-cam's reshape_transform), "
        "or choose a convolutional layer or a transformer block"
    )
    if output.ndim < 2 or output.shape[0] != batch:
        raise ValueError(f"{layer} outputs shape {tuple(output.shape)}, which has no batch dimension of size {batch}; {hint}")
    if reshape is not None:
        view = TokenView("custom", reshape=reshape)
        spatial = reshape(output)
        if not isinstance(spatial, Tensor) or spatial.ndim != len(inputs_shape) or spatial.shape[0] != batch:
            shape = tuple(spatial.shape) if isinstance(spatial, Tensor) else type(spatial).__name__
            raise ValueError(
                f"reshape must map {layer}'s output {tuple(output.shape)} to (B, D, *spatial) like the inputs "
                f"{tuple(inputs_shape)}, got {shape}"
            )
        return view
    size = tuple(int(s) for s in inputs_shape[2:])
    if len(size) == 1:
        if output.ndim == 3:
            return TokenView("channels_first", grid=tuple(output.shape[2:]))
    elif output.ndim == 4:
        a, b, c = (int(s) for s in output.shape[1:])
        if is_strided_grid((b, c), size):  # type: ignore[arg-type]
            return TokenView("channels_first", grid=(b, c))
        if is_strided_grid((a, b), size):  # type: ignore[arg-type]
            return TokenView("channels_last", grid=(a, b))
        if b <= size[0] and c <= size[1]:
            return TokenView("channels_first", grid=(b, c))
    elif output.ndim == 3:
        tokens = int(output.shape[1])
        for prefix in (1, 0):
            grid = token_grid(tokens - prefix, size)  # type: ignore[arg-type]
            if grid is not None:
                return TokenView("tokens", prefix=prefix, grid=grid)
        raise ValueError(
            f"{layer} outputs {tokens} tokens {tuple(output.shape)}, and neither {tokens - 1} (with a class token) nor "
            f"{tokens} tokens form a patch grid of the {size[0]}x{size[1]} input; {hint}"
        )
    raise ValueError(
        f"{layer} outputs shape {tuple(output.shape)}, which is not (B, K, *spatial) like the inputs "
        f"{tuple(inputs_shape)} nor transformer tokens (B, N + 1, D) / (B, h, w, D) on a patch grid of the input; {hint}"
    )
