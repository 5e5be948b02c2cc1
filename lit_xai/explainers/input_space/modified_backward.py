"""Modified backward passes of activations for DeepLIFT and Deconvolution, intercepted per call.

captum changes an activation's backward pass with hooks on `nn.ReLU` (etc.) modules, and keeps the
module's last input and output on the module: a module called twice in one forward pass (torchvision's
ResNet blocks call their one `relu` twice), an in-place activation, or a functional call (`F.relu`,
`torch.sigmoid`, `x.relu()` inside `forward`) then fails or silently keeps the plain gradient.

Here the rule is applied to every activation *call*, however it is made: inside `activation_rules(rule)`
a `torch.overrides.TorchFunctionMode` sees each call of the functions below (modules call them too), runs
the out-of-place function and hands its input and output to `rule`, which returns a tensor of the same
value whose backward pass is the rule's. A module reused within a block gets its own node per call; in-place
calls (`inplace=True`, `relu_`) write the result back into their argument as they would. Nothing is
registered on the model (no hooks, no attributes), and the mode ends with the block, also on error.

Elementwise activations: ReLU, ReLU6, LeakyReLU, ELU, SELU, CELU, GELU, SiLU, Mish, Softplus, Sigmoid,
Tanh, Hardtanh (and the `torch.*` / `Tensor.*` / in-place spellings). Max pooling (1-D, 2-D) is handed
to the rule's `max_pool`, softmax (`nn.Softmax`, `F.softmax`, `torch.softmax`, `Tensor.softmax`) to its
`softmax`. Everything else keeps its plain gradient (linear operations: convolutions,
BatchNorm in eval mode, sums, pooling by averages, reshapes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

# out-of-place function of each spelling; in-place spellings write back into their first argument
OUT_OF_PLACE: dict[Callable[..., Any], Callable[..., Any]] = {
    F.relu: F.relu, torch.relu: torch.relu, Tensor.relu: torch.relu,
    F.relu6: F.relu6, F.leaky_relu: F.leaky_relu, F.elu: F.elu, F.selu: F.selu, F.celu: F.celu,
    F.gelu: F.gelu, F.silu: F.silu, F.mish: F.mish, F.softplus: F.softplus, F.hardtanh: F.hardtanh,
    torch.sigmoid: torch.sigmoid, Tensor.sigmoid: torch.sigmoid, F.sigmoid: torch.sigmoid,
    torch.tanh: torch.tanh, Tensor.tanh: torch.tanh, F.tanh: torch.tanh,
}
IN_PLACE: dict[Callable[..., Any], Callable[..., Any]] = {
    torch.relu_: torch.relu, Tensor.relu_: torch.relu, F.relu_: torch.relu, F.leaky_relu_: F.leaky_relu,
    F.elu_: F.elu, F.hardtanh_: F.hardtanh, Tensor.sigmoid_: torch.sigmoid, Tensor.tanh_: torch.tanh,
    torch.sigmoid_: torch.sigmoid, torch.tanh_: torch.tanh,
}
RELUS = frozenset({F.relu, torch.relu, Tensor.relu, torch.relu_, Tensor.relu_, F.relu_})
MAX_POOLS = {F.max_pool1d: F.max_pool1d, F.max_pool2d: F.max_pool2d}
SOFTMAXES = frozenset({F.softmax, torch.softmax, Tensor.softmax})
INTERCEPTED = frozenset(OUT_OF_PLACE) | frozenset(IN_PLACE) | frozenset(MAX_POOLS) | SOFTMAXES


class ActivationRule:
    """What replaces an activation's backward pass. `activation(func, x, y)` gets the out-of-place
    function, its input and its output (with the plain graph) and returns a tensor equal to `y`;
    `max_pool(x, y, indices)` the same for max pooling, with the flat argmax indices. `applies(func)` says
    which elementwise functions the rule takes (the others keep their plain gradient)."""

    def applies(self, func: Callable[..., Any]) -> bool:
        return True

    def activation(self, func: Callable[..., Any], x: Tensor, y: Tensor) -> Tensor:
        return y

    def replace(self, func: Callable[..., Any], x: Tensor) -> Tensor | None:
        """The activation's output with the rule's backward pass, computed by the rule itself (None: compute
        `func(x)` and hand it to `activation`)."""
        return None

    def max_pool(self, x: Tensor, y: Tensor, indices: Tensor) -> Tensor | None:
        """None: keep the plain gradient."""
        return None

    def softmax(self, x: Tensor, y: Tensor, dim: int) -> Tensor | None:
        """Softmax over `dim` (`y = softmax(x, dim)`); None: keep the plain gradient."""
        return None


def first_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    if args:
        return args[0], args[1:], kwargs
    kwargs = dict(kwargs)
    return kwargs.pop("input", kwargs.pop("self", None)), (), kwargs


class ActivationRuleMode(TorchFunctionMode):
    """The TorchFunctionMode of `activation_rules` (see the module docstring)."""

    def __init__(self, rule: ActivationRule) -> None:
        super().__init__()
        self.rule = rule

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func not in INTERCEPTED:  # every other operation, as fast as the mode allows
            return func(*args, **kwargs)
        if (func in OUT_OF_PLACE or func in IN_PLACE) and self.rule.applies(func):
            x, rest, kw = first_argument(args, kwargs)
            if isinstance(x, Tensor) and x.is_floating_point():
                in_place = func in IN_PLACE or bool(kw.get("inplace", False))
                plain = IN_PLACE.get(func) or OUT_OF_PLACE[func]
                if "inplace" in kw:
                    kw = {**kw, "inplace": False}
                source = x.clone() if in_place else x
                result = self.rule.replace(plain, source)
                if result is None:
                    result = self.rule.activation(plain, source, plain(source, *rest, **kw))
                if in_place:
                    return x.copy_(result)
                return result
        if func in MAX_POOLS and not kwargs.get("return_indices", False) and not (len(args) > 6 and args[6]):
            x, rest, kw = first_argument(args, kwargs)
            if isinstance(x, Tensor) and x.is_floating_point():
                y, indices = MAX_POOLS[func](x, *rest, **{**kw, "return_indices": True})
                replaced = self.rule.max_pool(x, y, indices)
                return y if replaced is None else replaced
        if func in SOFTMAXES:
            x, rest, kw = first_argument(args, kwargs)
            dim = rest[0] if rest else kw.get("dim")
            if isinstance(x, Tensor) and x.is_floating_point() and isinstance(dim, int) and kw.get("dtype") is None and len(rest) < 3:
                y = torch.softmax(x, dim)
                replaced = self.rule.softmax(x, y, dim)
                return y if replaced is None else replaced
        return func(*args, **kwargs)


@contextmanager
def activation_rules(rule: ActivationRule) -> Iterator[None]:
    """Inside the block, every activation call (module or functional) backpropagates `rule`."""
    with ActivationRuleMode(rule):
        yield


class MaxPoolRescale(torch.autograd.Function):
    """Max pooling's output `y` (identity in the forward pass); backward: captum's DeepLIFT rule for max
    pooling on the 2n rows `[x; x']` (see `RescaleRule`)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, indices: Tensor, rows: int, eps: float) -> Tensor:
        ctx.save_for_backward(x, y, indices)
        ctx.rows, ctx.eps = rows, eps
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        x, y, indices = ctx.saved_tensors
        n = ctx.rows
        delta_in = x[:n] - x[n:]
        plain = torch.cat([delta_in, delta_in]).abs() < ctx.eps
        crossed = torch.maximum(y[:n], y[n:])
        delta_out = torch.cat([crossed - y[n:], y[:n] - crossed])
        spread = unpooled(grad_output * delta_out, indices, x)
        spread = spread[:n] + spread[n:]
        safe = torch.where(plain[:n], torch.ones_like(delta_in), delta_in)
        grad = torch.where(plain, unpooled(grad_output, indices, x), torch.cat([spread / safe, spread / safe]))
        return grad, None, None, None, None


def rescale_ratios(x: Tensor, y: Tensor, rows: int, eps: float) -> tuple[Tensor, Tensor]:
    """For a function y = f(x) on the 2n rows `[inputs; references]`: where |x - x'| < eps (`plain`, there
    the plain gradient applies) and the Rescale multipliers (y - y') / (x - x') elsewhere, each repeated
    for both halves (the shape of `x`)."""
    delta_in, delta_out = x[:rows] - x[rows:], y[:rows] - y[rows:]
    plain = delta_in.abs() < eps
    ratio = delta_out / torch.where(plain, torch.ones_like(delta_in), delta_in)
    return torch.cat([plain, plain]), torch.cat([ratio, ratio])


class SoftmaxRescale(torch.autograd.Function):
    """Softmax's output `y` over `dim` (identity in the forward pass); backward: captum's DeepLIFT rule for
    softmax on the 2n rows `[x; x']`, normalised per sample (see `RescaleRule`)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, rows: int, eps: float, dim: int) -> Tensor:
        ctx.save_for_backward(x, y)
        ctx.rows, ctx.eps, ctx.dim = rows, eps, dim
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        x, y = ctx.saved_tensors
        n, dim = ctx.rows, ctx.dim
        plain, ratio = rescale_ratios(x, y, n, ctx.eps)
        gradient = y * (grad_output - (grad_output * y).sum(dim, keepdim=True))  # softmax's own backward
        unnormalised = torch.where(plain, gradient, grad_output * ratio)
        pair_mean = (unnormalised[:n].sum(dim, keepdim=True) + unnormalised[n:].sum(dim, keepdim=True)) / (2 * x.shape[dim])
        return unnormalised - torch.cat([pair_mean, pair_mean]), None, None, None, None


def unpooled(values: Tensor, indices: Tensor, like: Tensor) -> Tensor:
    """`values` `(N, C, *out)` added at max pooling's flat argmax `indices` into zeros shaped like `like`
    (the transpose of reading `like` at the argmax)."""
    flat = torch.zeros_like(like).flatten(2)
    return flat.scatter_add_(2, indices.flatten(2), values.flatten(2)).view(like.shape)


class RescaleRule(ActivationRule):
    """DeepLIFT's Rescale rule on a batch whose first `rows` rows are the inputs and the next `rows` their
    references (the baselines run through the same pass, and, as in captum, the score is the sum of both
    halves' target scores). For an elementwise activation y = f(z) on both halves:

        m = (f(z) - f(z')) / (z - z'),   where |z - z'| >= eps;   f'(z) (the plain gradient) elsewhere.

    For max pooling (captum's rule): with y = maxpool(z), y' = maxpool(z'), P_z, P_z' the argmax maps and
    g, g' the incoming gradients of the two halves, both halves get

        [P_z^T (g * (max(y, y') - y')) + P_z'^T (g' * (y - max(y, y')))]_i / (z_i - z'_i)   where |z_i - z'_i| >= eps,

    and their plain gradient elsewhere (captum unpools by assignment, which drops all but one of the
    gradients sent to an input that wins several overlapping windows; here they are summed).

    For softmax over dimension d (captum's rule, the normalisation of Shrikumar et al. Sec. 3.6): the
    elementwise Rescale multiplier (softmax's own gradient where |z - z'| < eps), minus its mean

        m_i = g_i (y_i - y'_i) / (z_i - z'_i),   m_i <- m_i - mean(m over d, over the sample's two rows).

    captum takes that mean over the whole batch of both halves, so a sample's attribution depends on the
    other samples in its batch; here it is over each sample's own input and reference rows (per position of
    the other dimensions), which is captum's value when it is called one sample at a time.
    A tensor whose leading dimension is not 2 * rows (a sequence-first tensor) keeps the plain gradient.
    """

    def __init__(self, rows: int, eps: float) -> None:
        self.rows, self.eps = rows, eps

    def halves(self, x: Tensor) -> bool:
        return x.ndim > 0 and x.shape[0] == 2 * self.rows

    def activation(self, func: Callable[..., Any], x: Tensor, y: Tensor) -> Tensor:
        if not self.halves(x):
            return y
        with torch.no_grad():
            plain, ratio = rescale_ratios(x, y, self.rows, self.eps)
            fallback = bool(plain.any())
        rescaled = y.detach() + (x - x.detach()) * ratio  # value y, gradient ratio * incoming
        return torch.where(plain, y, rescaled) if fallback else rescaled

    def softmax(self, x: Tensor, y: Tensor, dim: int) -> Tensor | None:
        if not self.halves(x) or dim % x.ndim == 0:
            return None
        return SoftmaxRescale.apply(x, y, self.rows, self.eps, dim % x.ndim)

    def max_pool(self, x: Tensor, y: Tensor, indices: Tensor) -> Tensor | None:
        if not self.halves(x) or x.ndim < 3:
            return None
        return MaxPoolRescale.apply(x, y, indices, self.rows, self.eps)


class ReluOfGradient(torch.autograd.Function):
    """ReLU in the forward pass; backward: `ReLU(grad_out)` whatever the input was (Deconvolution)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        return grad_output.clamp(min=0)


class DeconvolutionRule(ActivationRule):
    """Zeiler & Fergus' deconvnet: a ReLU passes back ReLU of the incoming gradient, whatever its input
    was (the forward pass's switches are ignored); every other operation keeps its plain gradient."""

    def applies(self, func: Callable[..., Any]) -> bool:
        return func in RELUS

    def replace(self, func: Callable[..., Any], x: Tensor) -> Tensor | None:
        return ReluOfGradient.apply(x)
