"""LRP rules as gradient modifiers: what a linear layer's backward pass does to the relevance it receives.

Relevance is what flows backward. A layer with input `x` and output `y` receives the relevance `R` of
its outputs as the "gradient" and hands `R_in` to its input. Every rule is a small autograd graph whose
ordinary backward pass maps `R` to `R_in`; the layer's forward hook returns a tensor with the value of `y`
whose gradient flows into that graph (`combine`), so one forward pass and one backward pass give the
relevance of every layer (the "gradient trick"). The pieces:

* `relay(x, m, a)`: value `m` (a modified input: `x`, `x+`, `x-`, a bound, ones), backward `g -> a * g`,
  i.e. the `a_j` factor of `R_j = a_j sum_k w_jk R_k / z_k` applied on the input side;
* the layer's operation on a relayed input with (modified) weights: its backward is the transpose `W^T`;
* `combine(y, (z_i, c_i), ...)`: backward `g -> g * c_i` into each `z_i`, e.g. `c = 1 / s(z)`, the
  normalisation on the output side. Contributions to one graph are summed before it runs, so each
  transpose runs once per layer.

Cost per layer, in layer-sized operations (one forward call of the layer = 1, its transpose = 1): the
model's own forward pass (1) is needed anyway. `zero` / `epsilon` reuse it: + 1 transpose = 2.
`z_plus` on `x >= 0` (every layer after a ReLU): + `W+ x` + its transpose = 3. `alpha_beta` and `gamma`
reuse the layer's own pass for their second denominator (`z- = y - z+`, `z- = (2 + g) y - z+`), so
they compute one modified forward, but their backward needs two different weight matrices applied to two
different signals (`W+^T` and `W^T`): 4; `gamma` skips `W^T` (3) where no relevance reaches the units
with `y < 0`. `flat`'s denominators and transpose run on one channel (about 1 + 0). On inputs of both
signs (the first layer) `z_plus` / `alpha_beta` / `gamma` stack `[x+, x-]` into one call of twice the
input channels; `z_box` stacks `[x - h, l - h]` likewise. The weights the rules derive (merged with
BatchNorm, clamped, stacked) are kept between calls (`DerivedWeights`).

With `W`, `b` the layer's weights and bias (a following BatchNorm merged in), `W+ = max(W, 0)`,
`W- = min(W, 0)`, `x+ = max(x, 0)`, `x- = min(x, 0)`, `s(z) = z + eps * sign(z)` (sign(0) = +1), the rules
are zennit's (Anders et al., "Software for Dataset-wide XAI", 2021), which follow Montavon et al.,
"Layer-Wise Relevance Propagation: An Overview" (2019):

| rule | R_in |
| --- | --- |
| `zero` (LRP-0) | `x * W^T (R / z)`, `z = Wx + b`; nothing flows through a unit with `z = 0` |
| `epsilon` | `x * W^T (R / s_eps(z))` |
| `gamma` | `x+ (W + g W+)^T u+ + x- (W + g W-)^T u+ + x+ (W + g W-)^T u- + x- (W + g W+)^T u-`, `u+ = 1[z > 0] R / s(z+)`, `u- = 1[z < 0] R / s(z-)`, `z+ = (W + g W+) x+ + (W + g W-) x- + b + g b+`, `z- = (W + g W-) x+ + (W + g W+) x- + b + g b-` |
| `alpha_beta` | `alpha (x+ W+^T + x- W-^T)(R / s(z+)) - beta (x+ W-^T + x- W+^T)(R / s(z-))`, `z+ = W+ x+ + W- x- + b+`, `z- = W- x+ + W+ x- + b-` |
| `z_plus` | `alpha_beta` with alpha = 1, beta = 0 |
| `flat` | `1^T (R / s(1 1))`: every input of a unit's receptive field gets an equal share |
| `w_square` | `(W^2)^T (R / s(W^2 1 + b^2))` |
| `z_box` | `x W^T u - l W+^T u - h W-^T u`, `u = R / s(Wx - W+ l - W- h)`, `l <= x <= h` the input's bounds |

`alpha_beta` and `z_plus` conserve `alpha - beta` (= 1) times the relevance of the units they see, less
what the biases and stabilisers absorb; the others conserve it up to the bias and stabiliser shares.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

T = TypeVar("T")

RULES = ("zero", "epsilon", "gamma", "alpha_beta", "z_plus", "flat", "w_square", "z_box")


class _Substitute(torch.autograd.Function):
    """Value of `y`, gradient routed to `t` (which has `y`'s shape): the layer's output carries the rule."""

    @staticmethod
    def forward(ctx: Any, y: Tensor, t: Tensor) -> Tensor:
        ctx.mark_dirty(y)  # returned as it is (no copy): `y` is a detached alias of the layer's output
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, grad


class _Relay(torch.autograd.Function):
    """Value `value` (a modified copy of `x`, or one channel of it), backward `g -> g * scale` into `x` (`g`
    when scale is None; copied to every channel of `x` when `value` has one)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, value: Tensor, scale: Tensor | None) -> Tensor:
        ctx.has_scale = scale is not None
        ctx.shape = x.shape
        if scale is not None:
            ctx.save_for_backward(scale)
        return value.view_as(value)  # only ever read by the rule's own layer call, never modified in place

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        if ctx.has_scale:
            (scale,) = ctx.saved_tensors
            grad = grad * scale
        if grad.shape != ctx.shape:
            grad = grad.expand(ctx.shape).contiguous()
        return grad, None, None


class _Relevance(torch.autograd.Function):
    """Value `value`; backward `g -> g * c_i` into each source `i` (autograd then runs each source's own graph
    once: what reaches sources that share a graph is summed first). An optional source gets no gradient
    (None, so its graph is skipped) when `g * c_i` is zero everywhere."""

    @staticmethod
    def forward(ctx: Any, value: Tensor, coefficients: tuple[tuple[Tensor, bool], ...], *sources: Tensor) -> Tensor:
        ctx.coefficients = coefficients
        ctx.mark_dirty(value)  # returned as it is (no copy): `value` is a detached alias of the layer's output
        return value

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        grads: list[Tensor | None] = []
        for (coefficient, optional), needed in zip(ctx.coefficients, ctx.needs_input_grad[2:]):
            part = grad * coefficient if needed else None
            grads.append(None if part is None or (optional and not bool(part.any())) else part)
        return (None, None, *grads)


def substitute(y: Tensor, t: Tensor) -> Tensor:
    """A tensor equal to `y` whose gradient flows into `t` instead of `y`'s own graph."""
    if not t.requires_grad:
        return y
    return _Substitute.apply(y.detach(), t)


def relay(x: Tensor, value: Tensor, scale: Tensor | None) -> Tensor:
    """`value` in the forward pass, `g * scale` into `x` in the backward pass (`g` when scale is None)."""
    value = value.detach()
    if not x.requires_grad:
        return value
    return _Relay.apply(x, value, None if scale is None else scale.detach())


def stabilize(z: Tensor, epsilon: float) -> Tensor:
    """`z + epsilon * sign(z)` with sign(0) = +1 (zennit's stabiliser): never zero for epsilon > 0."""
    return torch.where(z >= 0, z.new_full((), epsilon), z.new_full((), -epsilon)).add_(z)


def safe_reciprocal(z: Tensor) -> Tensor:
    """`1 / z`, and 0 where `z = 0` (LRP-0: no relevance flows through a unit without pre-activation)."""
    zero = z == 0
    return torch.where(zero, torch.zeros_like(z), 1.0 / torch.where(zero, torch.ones_like(z), z))


def combine(y: Tensor, *terms: tuple[Tensor, Tensor] | tuple[Tensor, Tensor, bool]) -> Tensor:
    """A tensor with `y`'s value whose gradient `g` flows as `g * coefficient` into the `source` of each term
    `(source, coefficient[, optional])`; coefficients are constants of the backward pass (detached)."""
    live = [term for term in terms if term[0].requires_grad]
    if not live:
        return y
    coefficients = tuple((term[1].detach(), len(term) > 2 and bool(term[2])) for term in live)  # type: ignore[misc]
    return _Relevance.apply(y.detach(), coefficients, *(term[0] for term in live))


@dataclass(frozen=True)
class RuleSettings:
    """Hyper-parameters shared by the rules of one explainer."""

    epsilon: float = 1e-6
    gamma: float = 0.25
    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: float = 1e-6
    low: Any = None
    high: Any = None


class DerivedWeights:
    """The weights each rule derives from a layer's (merged, clamped, ...) kept from one call to the next.

    Deriving them reads and writes every weight of the model a few times, which at a small batch costs a
    sizeable share of a forward pass. An entry is rebuilt when any tensor it comes from (the layer's and its
    BatchNorm's registered parameters and buffers) is another object, has moved to other memory, dtype or
    device, or was modified in place (its version counter: optimiser steps, `load_state_dict`, `copy_`
    under `no_grad`). Edits through `tensor.data` bypass the version counter and are not seen; weights
    computed on access (parametrizations) are never cached. Entries go with their module (weak keys); a
    copy or pickle of the explainer starts empty.
    """

    def __init__(self) -> None:
        self._entries: weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[tuple[Any, ...], list[Tensor], Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def __deepcopy__(self, memo: dict[int, Any]) -> DerivedWeights:
        return DerivedWeights()

    def get(self, layer: AffineLayer, kind: str, build: Callable[[], T]) -> T:
        sources = layer.sources()
        if sources is None:
            return build()
        key = (getattr(layer.batch_norm, "eps", None), *((id(t), t.data_ptr(), t._version, t.dtype, t.device, t.shape) for t in sources))
        entries = self._entries.setdefault(layer.module, {})
        entry = entries.get(kind)
        if entry is not None and entry[0] == key:
            return entry[2]  # type: ignore[no-any-return]
        value = build()
        entries[kind] = (key, sources, value)  # holding the sources keeps their ids and memory from being reused
        return value


class AffineLayer:
    """A Conv1d / Conv2d / Linear, with the BatchNorm that follows it merged in when there is one.

    Merging (what canonizers do): with `s = gamma / sqrt(running_var + eps)`, the pair computes
    `W' x + b'` with `W' = s * W` (per output channel) and `b' = (b - running_mean) * s + beta`. The
    merged parameters are computed here, detached; the modules are never modified. What the rules derive
    from them goes through `derived` (kept in `cache` across calls when there is one).
    """

    def __init__(
        self,
        name: str,
        module: nn.Module,
        batch_norm: nn.Module | None = None,
        batch_norm_name: str | None = None,
        cache: DerivedWeights | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.batch_norm = batch_norm
        self.batch_norm_name = batch_norm_name
        self.cache = cache

    def sources(self) -> list[Tensor] | None:
        """The tensors the merged parameters come from, or None when one is not a registered parameter or
        buffer of its module (e.g. computed by a parametrization), so that nothing derived may be kept."""
        found = []
        for module, names in ((self.module, ("weight", "bias")), (self.batch_norm, ("weight", "bias", "running_mean", "running_var"))):
            if module is None:
                continue
            for name in names:
                tensor = getattr(module, name, None)
                if tensor is None:
                    continue
                registered = module._parameters.get(name, None) if name in module._parameters else module._buffers.get(name, None)
                if registered is not tensor:
                    return None
                found.append(tensor)
        return found

    def derived(self, kind: str, build: Callable[[], T]) -> T:
        """`build()` (weights derived for a rule, named `kind` with any setting they depend on), kept in the cache."""
        return build() if self.cache is None else self.cache.get(self, kind, build)

    @property
    def end(self) -> nn.Module:
        """The module whose output is the (merged) layer's output."""
        return self.module if self.batch_norm is None else self.batch_norm

    def parameters(self) -> tuple[Tensor, Tensor | None]:
        weight = self.module.weight.detach()
        bias = None if self.module.bias is None else self.module.bias.detach()
        norm = self.batch_norm
        if norm is None:
            return weight, bias
        scale = (norm.running_var.detach() + norm.eps).rsqrt()
        if norm.weight is not None:
            scale = scale * norm.weight.detach()
        shift = -norm.running_mean.detach() if bias is None else bias - norm.running_mean.detach()
        merged_bias = shift * scale
        if norm.bias is not None:
            merged_bias = merged_bias + norm.bias.detach()
        return weight * scale.view(-1, *([1] * (weight.ndim - 1))), merged_bias

    def apply(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """The layer's operation (stride, padding, dilation, groups, padding mode) with other parameters."""
        if isinstance(self.module, nn.Linear):
            return F.linear(x, weight, bias)
        return self.module._conv_forward(x, weight, bias)

    @property
    def channel_axis(self) -> int:
        return -1 if isinstance(self.module, nn.Linear) else 1

    @property
    def groups(self) -> int:
        return int(getattr(self.module, "groups", 1))

    def in_channels(self, x: Tensor) -> int:
        return x.shape[self.channel_axis]

    def single_shape(self, x: Tensor) -> tuple[int, ...]:
        """`x`'s shape with one channel (features for a Linear)."""
        return (*x.shape[:-1], 1) if isinstance(self.module, nn.Linear) else (x.shape[0], 1, *x.shape[2:])

    def apply_single(self, x: Tensor) -> Tensor:
        """The operation with one input and one output channel and an all-ones kernel, no bias (groups = 1)."""
        ones = x.new_ones((1, 1, *self.module.weight.shape[2:]))
        if isinstance(self.module, nn.Linear):
            return F.linear(x, ones, None)
        return self.module._conv_forward(x, ones, None)


def _pos(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clamp(max=0)


def _two_sided(
    layer: AffineLayer,
    x: Tensor,
    relayed: Tensor | None,
    w_on_pos: Tensor,
    w_on_neg: Callable[[], Tensor],
    bias: Tensor | None,
    kind: str,
) -> Tensor:
    """`w_on_pos x+ + w_on_neg x- + bias`, relayed to `x`. When x >= 0 (e.g. after a ReLU) one layer call on
    `x` (on `relayed`, the relayed input the layer itself ran on, when there is one). Otherwise one call on
    `[x+, x-]` stacked along the channels with the weights `[w_on_pos, w_on_neg]` (`kind` names that stack
    among the layer's derived weights): one transpose in the backward pass instead of two, the same
    arithmetic (two calls for a grouped convolution)."""
    detached = x.detach()
    if bool(detached.amin() >= 0):
        return layer.apply(relayed if relayed is not None else relay(x, detached, detached), w_on_pos, bias)
    positive, negative = detached.clamp(min=0), detached.clamp(max=0)
    if layer.groups != 1:
        return layer.apply(relay(x, positive, positive), w_on_pos, bias) + layer.apply(relay(x, negative, negative), w_on_neg(), None)
    stacked = layer.derived(f"{kind}:stacked", lambda: torch.cat([w_on_pos, w_on_neg()], dim=1))
    parts = torch.cat([relay(x, positive, positive), relay(x, negative, negative)], dim=layer.channel_axis)
    return layer.apply(parts, stacked, bias)


def _positive(layer: AffineLayer) -> tuple[Tensor, Tensor | None]:
    """`W+`, `b+` of the (merged) layer."""

    def build() -> tuple[Tensor, Tensor | None]:
        weight, bias = layer.parameters()
        return weight.clamp(min=0), _pos(bias)

    return layer.derived("positive", build)


def _negative(layer: AffineLayer) -> Tensor:
    """`W-` of the (merged) layer."""
    return layer.derived("negative", lambda: layer.parameters()[0].clamp(max=0))


def inverse(z: Tensor, epsilon: float) -> Tensor:
    """`1 / s(z)`, the stabilised denominator's reciprocal (a constant of the backward pass)."""
    return stabilize(z.detach(), epsilon).reciprocal_()


def zero_rule(layer: AffineLayer, x: Tensor, relayed: Tensor | None, y: Tensor, settings: RuleSettings) -> Tensor:
    return combine(y, (y, safe_reciprocal(y.detach())))


def epsilon_rule(layer: AffineLayer, x: Tensor, relayed: Tensor | None, y: Tensor, settings: RuleSettings) -> Tensor:
    return combine(y, (y, inverse(y, settings.epsilon)))


def z_plus_rule(layer: AffineLayer, x: Tensor, relayed: Tensor | None, y: Tensor, settings: RuleSettings) -> Tensor:
    positive, positive_bias = _positive(layer)
    z = _two_sided(layer, x, relayed, positive, lambda: _negative(layer), positive_bias, "positive|negative")
    return combine(y, (z, inverse(z, settings.stabilizer)))


def alpha_beta_rule(layer: AffineLayer, x: Tensor, relayed: Tensor | None, y: Tensor, settings: RuleSettings) -> Tensor:
    """`z+ = W+ x+ + W- x- + b+` is computed; `z- = W- x+ + W+ x- + b- = y - z+` (the two sum to the layer's
    output), and so is its backward: `y`'s own graph (`W^T`) minus `z+`'s."""
    positive, positive_bias = _positive(layer)
    z_pos = _two_sided(layer, x, relayed, positive, lambda: _negative(layer), positive_bias, "positive|negative")
    up = settings.alpha * inverse(z_pos, settings.stabilizer)
    if settings.beta == 0:
        return combine(y, (z_pos, up))
    down = settings.beta * inverse(y.detach() - z_pos.detach(), settings.stabilizer)
    return combine(y, (z_pos, up + down), (y, -down))


def gamma_rule(layer: AffineLayer, x: Tensor, relayed: Tensor | None, y: Tensor, settings: RuleSettings) -> Tensor:
    """`z+ = (W + g W+) x+ + (W + g W-) x- + b + g b+` is computed; `z- = (2 + g) y - z+` (the two sum to
    `(2 + g) y`), and so is its backward. Where no relevance reaches the units with `y < 0` (e.g. all of them
    feed a ReLU and the layer above multiplies by its input), `y`'s graph is skipped in the backward pass."""
    g = settings.gamma

    def build_up() -> tuple[Tensor, Tensor | None]:
        weight, bias = layer.parameters()
        return weight + g * weight.clamp(min=0), None if bias is None else bias + g * bias.clamp(min=0)

    def build_down() -> Tensor:
        weight = layer.parameters()[0]
        return weight + g * weight.clamp(max=0)

    up_weight, up_bias = layer.derived(f"gamma_up:{g!r}", build_up)
    down = lambda: layer.derived(f"gamma_down:{g!r}", build_down)  # noqa: E731
    z_pos = _two_sided(layer, x, relayed, up_weight, down, up_bias, f"gamma_up|gamma_down:{g!r}")
    out = y.detach()
    up = torch.where(out > 0, inverse(z_pos, settings.stabilizer), 0.0)
    down = torch.where(out < 0, inverse((2.0 + g) * out - z_pos.detach(), settings.stabilizer), 0.0)
    return combine(y, (z_pos, up - down), (y, (2.0 + g) * down, True))


def flat_rule(layer: AffineLayer, x: Tensor, relayed: Tensor | None, y: Tensor, settings: RuleSettings) -> Tensor:
    """`z_k` counts the inputs in unit k's receptive field, the same for every input channel: one input and
    one output channel of the layer's operation give it (`counts`), and the backward pass sums the
    relevance over the output channels before that one-channel transpose, then copies it to every input
    channel. A grouped convolution runs the layer with all-ones weights instead."""
    if layer.groups != 1:
        z = layer.apply(relay(x, torch.ones_like(x.detach()), None), torch.ones_like(layer.module.weight.detach()), None)
        return combine(y, (z, inverse(z, settings.stabilizer)))
    counts = layer.apply_single(relay(x, x.detach().new_ones(layer.single_shape(x)), None))
    return combine(y, (counts.expand_as(y), inverse(layer.in_channels(x) * counts, settings.stabilizer)))


def w_square_rule(layer: AffineLayer, x: Tensor, relayed: Tensor | None, y: Tensor, settings: RuleSettings) -> Tensor:
    def build() -> tuple[Tensor, Tensor | None]:
        weight, bias = layer.parameters()
        return weight**2, None if bias is None else bias**2

    square, square_bias = layer.derived("square", build)
    z = layer.apply(relay(x, torch.ones_like(x.detach()), None), square, square_bias)
    return combine(y, (z, inverse(z, settings.stabilizer)))


def input_bound(bound: Any, x: Tensor, lowest: bool) -> Tensor:
    """`low` / `high` as a tensor broadcast to `x`. None: each sample's per-channel minimum (maximum) over
    its positions (over its features for a `(B, F)` input); a float: everywhere; a list: one value per
    channel; a tensor: `x.ndim` dimensions (or 0), broadcastable to `x`."""
    x = x.detach()
    if bound is None:
        dims = tuple(range(2, x.ndim)) if x.ndim > 2 else (1,)
        value = x.amin(dim=dims, keepdim=True) if lowest else x.amax(dim=dims, keepdim=True)
    elif isinstance(bound, (int, float)):
        value = torch.full((), float(bound), dtype=x.dtype, device=x.device)
    elif isinstance(bound, (list, tuple)):
        if len(bound) != x.shape[1]:
            raise ValueError(f"z_box bounds need one value per input channel ({x.shape[1]}), got {len(bound)}")
        value = torch.tensor([float(v) for v in bound], dtype=x.dtype, device=x.device).view(1, -1, *([1] * (x.ndim - 2)))
    elif isinstance(bound, Tensor):
        value = bound.detach().to(dtype=x.dtype, device=x.device)
        if value.ndim not in (0, x.ndim):
            raise ValueError(
                f"a z_box bound tensor must have {x.ndim} dimensions like the layer input {tuple(x.shape)} "
                f"(e.g. shape (1, C, 1, 1)) or be a scalar, got shape {tuple(value.shape)}"
            )
    else:
        raise ValueError(f"z_box bounds must be None, a float, a list of floats per channel or a tensor, got {bound!r}")
    try:
        return value.expand_as(x)
    except RuntimeError:
        raise ValueError(f"z_box bound of shape {tuple(value.shape)} does not broadcast to the layer input {tuple(x.shape)}") from None


def z_box_rule(layer: AffineLayer, x: Tensor, relayed: Tensor | None, y: Tensor, settings: RuleSettings) -> Tensor:
    """`z = W x - W+ l - W- h = W (x - h) - W+ (l - h)` (the biases cancel), and the backward
    `(x - h) W^T u - (l - h) W+^T u` equals `x W^T u - l W+^T u - h W-^T u`: one layer call on twice the
    input channels and one transpose instead of three of each (two for a grouped convolution)."""
    low, high = input_bound(settings.low, x, True), input_bound(settings.high, x, False)
    shifted, span = x.detach() - high, low - high
    if layer.groups != 1:
        weight = layer.derived("merged", lambda: layer.parameters()[0])
        first = layer.apply(relay(x, shifted, shifted), weight, None)
        second = layer.apply(relay(x, span, span), _positive(layer)[0], None)
        scale = inverse(first.detach() - second.detach(), settings.stabilizer)
        return combine(y, (first, scale), (second, -scale))
    # one call on [x - h, l - h] stacked along the channels with the weights [W, -W+]
    stacked = layer.derived("z_box:stacked", lambda: torch.cat([layer.parameters()[0], -_positive(layer)[0]], dim=1))
    z = layer.apply(torch.cat([relay(x, shifted, shifted), relay(x, span, span)], dim=layer.channel_axis), stacked, None)
    return combine(y, (z, inverse(z, settings.stabilizer)))


Rule = Callable[[AffineLayer, Tensor, "Tensor | None", Tensor, RuleSettings], Tensor]

RULE_FUNCTIONS: dict[str, Rule] = {
    "zero": zero_rule,
    "epsilon": epsilon_rule,
    "gamma": gamma_rule,
    "alpha_beta": alpha_beta_rule,
    "z_plus": z_plus_rule,
    "flat": flat_rule,
    "w_square": w_square_rule,
    "z_box": z_box_rule,
}
"""Each rule maps (layer, its input `x`, the relayed input the layer itself ran on or None, the layer's output
`y`, settings) to a tensor with `y`'s value whose gradient is the rule's backward."""

RECORDS_OUTPUT = ("zero", "epsilon", "alpha_beta", "gamma")
"""Rules that use the layer's own forward pass as part of their graph: the layer runs on its relayed input
`relay(x, x, x)` (the others run it on `x` detached and build their own graph)."""
