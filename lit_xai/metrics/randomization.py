"""Model parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018),
as a torchmetrics Metric.

An explanation that depends on what the model learned must change when the learned weights are
destroyed. The cascading test re-initialises the layers of a copy of the model one after the other from
the output side down to the input, explains the same inputs (and the same target classes) after each
step, and compares every map with the trained model's map. A method whose maps stay similar while the
model becomes random (e.g. an edge detector, or a model-free baseline) fails the sanity check: lower
similarity is better.
"""

from __future__ import annotations

import copy
import difflib
import math
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, Optional

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from lit_xai.checks import check_int
from lit_xai.chunking import retry_out_of_memory
from lit_xai.explainers.base import check_inputs
from lit_xai.metrics.common import explain_rows, metric_layout
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import ForwardArgs, TargetsLike, check_targets, model_call, model_outputs, resolve_targets, unwrap_module

Similarity = Literal["spearman", "spearman_abs", "pearson"]
SIMILARITIES = ("spearman", "spearman_abs", "pearson")
ExplainerFn = Callable[[nn.Module, Tensor, Optional[Tensor]], Tensor]


# ----------------------------------------------------------------------------------------------------------
# Correlations, per row


def average_ranks(values: Tensor) -> Tensor:
    """Ranks 1..N of each row of `(B, N)` values (ascending), tied values sharing the mean of their ranks
    (e.g. `[10, 20, 20, 5] -> [2, 3.5, 3.5, 1]`); float64."""
    batch, n = values.shape
    order = values.argsort(dim=1, stable=True)
    ordered = values.gather(1, order)
    position = torch.arange(n, device=values.device).expand(batch, n)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = torch.ones_like(ordered, dtype=torch.bool)
    ends[:, :-1] = starts[:, 1:]
    first = torch.where(starts, position, 0).cummax(dim=1).values
    last = torch.where(ends, position, n).flip(1).cummin(dim=1).values.flip(1)
    mean_rank = (first + last).double() / 2 + 1
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def pearson_correlation(first: Tensor, second: Tensor) -> Tensor:
    """Pearson correlation of the rows of two `(B, N)` tensors, `(B,)` float64.

        r = sum (a - mean a)(b - mean b) / sqrt(sum (a - mean a)^2 sum (b - mean b)^2)

    A constant row has no correlation: r = 1 when both rows are constant (the two maps rank nothing
    differently), r = 0 when only one is.
    """
    a, b = first.double(), second.double()
    a = a - a[:, :1]  # exact zeros for a constant row
    b = b - b[:, :1]
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    var_a, var_b = a.square().sum(dim=1), b.square().sum(dim=1)
    flat_a, flat_b = var_a == 0, var_b == 0
    r = (a * b).sum(dim=1) / (var_a * var_b).sqrt().clamp(min=torch.finfo(torch.float64).tiny)
    r = torch.where(flat_a | flat_b, torch.where(flat_a & flat_b, 1.0, 0.0), r)
    return r.clamp(-1.0, 1.0)


def spearman_correlation(first: Tensor, second: Tensor) -> Tensor:
    """Spearman rank correlation of the rows of two `(B, N)` tensors: the Pearson correlation of their
    average ranks (ties share the mean rank), `(B,)` float64; constant rows as in `pearson_correlation`."""
    return pearson_correlation(average_ranks(first), average_ranks(second))


def map_similarity(first: Tensor, second: Tensor, similarity: Similarity) -> Tensor:
    """Per-sample similarity of two batches of maps `(B, ...)` (flattened after the batch axis)."""
    a, b = first.flatten(1), second.flatten(1)
    if similarity == "spearman":
        return spearman_correlation(a, b)
    if similarity == "spearman_abs":
        return spearman_correlation(a.abs(), b.abs())
    return pearson_correlation(a, b)


# ----------------------------------------------------------------------------------------------------------
# Layers and their re-initialisation


def has_own_parameters(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


@contextmanager
def recorded_call_order(model: nn.Module) -> Iterator[list[str]]:
    """Names of the modules with parameters of their own, in the order of their first call during the
    forward passes run inside the block (hooks removed on exit)."""
    order: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if has_own_parameters(module):
            def hook(module: nn.Module, args: object, output: object, name: str = name) -> None:
                if name not in order:
                    order.append(name)
            handles.append(module.register_forward_hook(hook))
    try:
        yield order
    finally:
        for handle in handles:
            handle.remove()


def layer_seed(seed: int, name: str) -> int:
    """The seed of one layer's re-initialisation: depends on `seed` and the layer's name only."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (1 << 63)


@torch.no_grad()
def reinitialize(layer: nn.Module, seed: int) -> None:
    """Re-initialise every parameter of `layer` (and its submodules) from a fixed seed.

    Modules with parameters of their own use their `reset_parameters()` (PyTorch's default
    initialisation; BatchNorm also resets its running statistics); parameters of modules without it get
    N(0, 1 / fan_in), fan_in = numel / size(0) (1 for vectors and scalars). The global random state is
    restored afterwards.
    """
    cuda = sorted({p.device.index or 0 for p in layer.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        for module in layer.modules():
            if not has_own_parameters(module):
                continue
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                continue
            for param in module.parameters(recurse=False):
                fan_in = param.numel() // param.shape[0] if param.ndim >= 2 else 1
                param.normal_(0.0, 1.0 / math.sqrt(max(fan_in, 1)))


# ----------------------------------------------------------------------------------------------------------
# The metric


class ModelRandomizationSimilarity(Metric):
    """Cascading model parameter randomisation (Adebayo et al., "Sanity Checks for Saliency Maps",
    NeurIPS 2018): similarity between the trained model's maps and the maps of a copy whose layers are
    re-initialised from the output side down.

    `update(model, inputs, targets=None)`: inputs `(B, C, *spatial)`; targets class indices `(B,)`
    (default: the trained model's argmax). Both models explain the same targets. Step k (k = 1..n)
    explains with the layers `cascade[:k]` re-initialised (cumulative: after the last step, every layer
    in the cascade is random), and

        s_k = mean over images of sim(E(f, x), E(f_k, x)),

    sim = Spearman rank correlation of the two maps (ranks with average ties, then Pearson; the paper's
    main measure), "spearman_abs" the same on absolute values (the paper reports both), or "pearson".
    Two constant maps count as 1, one constant map as 0.

    `layers`: names for `model.get_submodule`, the cascade in the order given (give them output side
    first); each step re-initialises every parameter under that name (see `reinitialize`). Default:
    every module with parameters of its own, ordered by its first call in the forward pass, last called
    first (for a plain CNN: head, last conv, ..., first conv). `layer_names` holds the cascade of the
    last update. Each layer's random weights depend on `seed` and its name only, so they are the same at
    every update and on every process.

    `compute()` returns the similarity after the last step (the fully randomised cascade), `curve()` the
    similarity after each step `(n,)`. Lower is better. The model itself is never modified: a deep copy
    is randomised (memory: one extra copy of the model during `update`).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        explainer: ExplainerFn,
        layers: list[str] | None = None,
        seed: int = 0,
        similarity: Similarity = "spearman",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(explainer):
            raise TypeError(f"explainer must be callable as explainer(model, inputs, targets), got {type(explainer).__name__}")
        if layers is not None:
            if isinstance(layers, str) or not all(isinstance(name, str) and name for name in layers) or not layers:
                raise ValueError(f"layers must be a non-empty list of module names (output side first) or None, got {layers!r}")
            if len(set(layers)) != len(layers):
                raise ValueError(f"layers must not repeat a name, got {layers!r}")
        check_int(seed, "seed")
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        self.explainer = explainer
        self.layers = None if layers is None else list(layers)
        self.seed = seed
        self.similarity = similarity
        self.layer_names: list[str] | None = self.layers
        steps = 0 if layers is None else len(layers)
        self.add_state("similarity_sum", torch.zeros(steps, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def cascade(self, model: nn.Module, called: list[str]) -> list[str]:
        """The layers to re-initialise, output side first."""
        if self.layers is None:
            if not called:
                raise ValueError(f"{type(model).__name__} called no module with parameters in its forward pass: nothing to randomise")
            return called[::-1]
        names = [name for name, _ in model.named_modules() if name]
        for name in self.layers:
            try:
                layer = model.get_submodule(name)
            except AttributeError:
                close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
                raise ValueError(
                    f"layer {name!r} is not a submodule of {type(model).__name__}"
                    + (f"; close matches: {', '.join(close)}" if close else f"; its layers include {', '.join(names[-5:])}")
                ) from None
            if next(layer.parameters(), None) is None:
                raise ValueError(f"layer {name!r} of {type(model).__name__} has no parameters to re-initialise")
        return list(self.layers)

    @retry_out_of_memory  # halves the chunks and runs again on out of memory (lit_xai.chunking)
    def update(self, model: nn.Module, inputs: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        model = unwrap_module(model)
        inputs, channel_dim = metric_layout(self, inputs, None)
        check_inputs(inputs)
        targets = check_targets(targets, inputs.shape[0], inputs.device)
        call = model_call(inputs.shape[0], forward_args, getattr(self, "output", None), getattr(self, "scoring", None), channel_dim, inputs.device)
        with call, preserved_model_state(model):
            with torch.no_grad(), recorded_call_order(model) as called:
                outputs = model_outputs(model, inputs)
            targets = resolve_targets(outputs, targets)
            names = self.cascade(model, called)
            original = explain_rows(self.explainer, model, inputs, targets, None)
            with torch.inference_mode(False), torch.no_grad():
                randomized = copy.deepcopy(model)  # normal (not inference) tensors, whatever the caller's mode
            similarities = []
            for name in names:
                with torch.inference_mode(False):
                    reinitialize(randomized.get_submodule(name), layer_seed(self.seed, name))
                maps = explain_rows(self.explainer, randomized, inputs, targets, None)
                similarities.append(map_similarity(original, maps, self.similarity))
            del randomized
        steps = torch.stack(similarities, dim=1).sum(dim=0)
        if self.similarity_sum.numel() == 0:
            self.similarity_sum = torch.zeros(len(names), dtype=torch.float64, device=self.similarity_sum.device)
        elif self.similarity_sum.numel() != len(names):
            raise ValueError(
                f"this update's cascade has {len(names)} steps but earlier updates had {self.similarity_sum.numel()}; "
                "use one model architecture per metric (or reset() it)"
            )
        self.layer_names = names
        # states replaced, not changed in place (see PerImageMean.add_values: CPU ddp_spawn shares them)
        self.similarity_sum = self.similarity_sum + steps.to(self.similarity_sum.device)
        self.count = self.count + inputs.shape[0]

    def compute(self) -> Tensor:
        """Mean similarity after the last cascade step (every listed layer random)."""
        if self.count == 0 or self.similarity_sum.numel() == 0:
            return torch.tensor(math.nan)
        return (self.similarity_sum[-1] / self.count).float()

    def curve(self) -> Tensor:
        """Mean similarity after each cascade step `(n_steps,)`, synchronised across processes."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            return (self.similarity_sum / self.count.clamp(min=1)).float()
