"""Expected gradients at a layer (and at the input) along straight paths from drawn baselines.

For an input x, baselines x'_d and interpolation factors a_d (d = 1..K*M, in K groups of M draws):

    path point     p_d = x'_d + a_d (x - x'_d)
    layer term     (A(x) - A(x'_d)) * dy^c/dA (p_d)       the "double forward pass": x - x' carried to layer l
    input term     (x - x'_d) * dy^c/dx (p_d)             (expected gradients, Erion et al. 2021)

averaged over each group's M draws. Several layers can share one evaluation
(`expected_gradients_at_layers`): the same path points go through the model once per chunk, every
named layer's activations are captured in that forward pass, and one backward pass from the scores to
the shallowest of them gives every layer's gradients (the same draws and the same terms as one
evaluation per layer, to float rounding, at the cost of one evaluation at the shallowest layer). All path points (and the baselines, whose activations are needed)
go through the model in chunks of `internal_batch_size` (`lit_xai.chunking`; None: automatic); the activations and outputs of a fixed bank
of baselines are computed once and cached until the model's parameters or buffers change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lit_xai.chunking import index_chunks, pair_chunks
from lit_xai.explainers.gradients import forward_with_layers
from lit_xai.explainers.path_baselines import BaselineSource, pair_normal
from lit_xai.explainers.seeding import pair_generator, sample_seeds
from lit_xai.explainers.tokens import current_reshape
from lit_xai.targets import current_call, resolved_scores, select_scores

ALPHAS = ("uniform", "linear")


@dataclass
class ConvergenceDiagnostics:
    """Completeness check of the layer attributions, per sample `(B,)`.

    `delta = |sum(layer attributions) - (y(x) - E[y(x')])|` and `relative_delta = delta / |y(x) - E[y(x')]|`.
    Exact completeness holds when the layer is linear in the input (the path stays straight at the
    layer); deeper layers keep a residual. `draws` is the most draws any sample used.
    """

    delta: Tensor
    relative_delta: Tensor
    scores: Tensor
    baseline_scores: Tensor
    draws: int


@dataclass
class ExpectedGradientsResult:
    activations: Tensor  # A(x): (B, K, *s)
    layer_terms: Tensor  # per group: (B, G, K, *s); groups a sample did not use are zero
    input_terms: Tensor | None  # mean over every used draw: (B, C, *S)
    groups_used: Tensor  # (B,) groups each sample used (< G when it converged early)
    targets: Tensor | None
    diagnostics: ConvergenceDiagnostics


def model_fingerprint(model: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is modified in place (optimizer steps, BatchNorm statistics),
    replaced (`param.data = ...`, weight averaging), or a module changes mode."""
    tensors = (*model.parameters(), *model.buffers())
    return (
        tuple(t._version for t in tensors),
        tuple(t.data_ptr() for t in tensors),
        tuple(m.training for m in model.modules()),
    )


class BankActivationCache:
    """Layer activations and outputs of a fixed baseline bank, recomputed only when something changes."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.value: tuple[list[Tensor], Tensor] | None = None

    def get(
        self, model: nn.Module, layer_name: str | Sequence[str], bank: Tensor, internal_batch_size: int | None, batch_size: int
    ) -> tuple[Tensor | list[Tensor], Tensor]:
        """`(activations, outputs)` of the bank (a list of activations, one per layer, when `layer_name` is a
        list of names); `batch_size` (the caller's) sizes automatic chunks."""
        names = [layer_name] if isinstance(layer_name, str) else list(layer_name)
        key = (
            id(model), tuple(names), bank.data_ptr(), tuple(bank.shape), bank._version, bank.device, bank.dtype, model_fingerprint(model),
            current_reshape(),  # the layer's layout (a reshape= override) shapes the activations
        )
        if self.key != key or self.value is None:
            outputs, activations = [], []
            with torch.no_grad():
                for chunk in index_chunks(bank.shape[0], internal_batch_size, bank, batch_size):
                    out, acts = forward_with_layers(model, names, bank[chunk])
                    outputs.append(out)
                    activations.append(acts)
            self.key, self.value = key, ([torch.cat(layer) for layer in zip(*activations)], torch.cat(outputs))
        layers, outputs = self.value
        return (layers[0] if isinstance(layer_name, str) else layers), outputs


def interpolation_factors(inputs: Tensor, draws: int, groups: int, alphas: str, seeds: list[int]) -> Tensor:
    """`(B, groups * draws)`: U(0, 1) per draw ("uniform") or s / M, s = 1..M, in every group ("linear")."""
    if alphas == "uniform":
        factors = [torch.rand(groups * draws, generator=pair_generator(seed, -1, stream=2)) for seed in seeds]
        return torch.stack(factors).to(device=inputs.device, dtype=inputs.dtype)
    grid = torch.arange(1, draws + 1, dtype=inputs.dtype, device=inputs.device) / draws
    return grid.repeat(groups).expand(inputs.shape[0], -1)


def bank_indices(count: int, total: int, seeds: list[int], device: torch.device) -> Tensor:
    """`(B, total)` uniform indices into a bank of `count` baselines, seeded per sample."""
    return torch.stack([torch.randint(count, (total,), generator=pair_generator(seed, -1, stream=3)) for seed in seeds]).to(device)


def expected_gradients(
    model: nn.Module,
    layer_name: str,
    inputs: Tensor,
    targets: Tensor | None,
    source: BaselineSource,
    draws: int,
    groups: int,
    alphas: str,
    noise_std: float,
    seed: int,
    internal_batch_size: int | None,
    input_terms: bool = False,
    cache: BankActivationCache | None = None,
    tolerance: float | None = None,
) -> ExpectedGradientsResult:
    """Group-wise means of the layer terms (and the mean input term); see the module docstring.

    With `tolerance`, a sample stops after the first group count at which its convergence delta is
    <= tolerance; the others go on (so a sample's result never depends on the rest of the batch).
    """
    (result,) = expected_gradients_at_layers(
        model, [layer_name], inputs, targets, source, draws, groups, alphas, noise_std, seed, internal_batch_size,
        input_terms, cache, tolerance,
    )
    return result


def expected_gradients_at_layers(
    model: nn.Module,
    layer_names: Sequence[str],
    inputs: Tensor,
    targets: Tensor | None,
    source: BaselineSource,
    draws: int,
    groups: int,
    alphas: str,
    noise_std: float,
    seed: int,
    internal_batch_size: int | None,
    input_terms: bool = False,
    cache: BankActivationCache | None = None,
    tolerance: float | None = None,
) -> list[ExpectedGradientsResult]:
    """`expected_gradients` for several layers (named shallow to deep, as the forward pass runs them) from one
    evaluation: one forward pass per chunk of path points captures every layer, one backward pass from the
    scores to the shallowest layer gives every layer's gradients. Each layer's result is the one
    `expected_gradients` gives for it alone (same draws; equal to float rounding); the input terms (the
    same for every layer) are in each result. With `tolerance`, a sample stops once every layer's
    convergence delta is <= tolerance.
    """
    names = list(layer_names)
    if not names:
        raise ValueError("layer_names is empty: name at least one layer")
    if len(set(names)) != len(names):
        raise ValueError(f"layer_names must not repeat a layer, got {names}")
    batch = inputs.shape[0]
    dtype = inputs.dtype  # sums in the inputs' dtype, also when the model runs under autocast
    with torch.no_grad():
        outputs, activations = forward_with_layers(model, names, inputs)
    activations = [layer.to(dtype) for layer in activations]
    scores, targets = resolved_scores(outputs, targets)
    scores = scores.detach().to(dtype)

    seeds = sample_seeds(inputs, seed)
    factors = interpolation_factors(inputs, draws, groups, alphas, seeds)
    bank = source.bank(inputs)
    indices = bank_indices(bank.shape[0], groups * draws, seeds, inputs.device) if bank is not None else None
    graph = "input" if input_terms else "layer"  # the graph below the shallowest layer only where input terms need it
    cached = None
    # a bank's cached pass has no sample, so it cannot carry a sample's extra inputs (forward_args)
    if bank is not None and noise_std == 0 and cache is not None and not current_call().forward_args:
        cached = cache.get(model, names, bank, internal_batch_size, batch)

    layer_sums = [layer.new_zeros((batch * groups, *layer.shape[1:])) for layer in activations]
    input_sums = inputs.new_zeros(inputs.shape) if input_terms else None
    baseline_score_sums = scores.new_zeros(batch * groups)
    groups_used = torch.zeros(batch, dtype=torch.long, device=inputs.device)
    active = torch.ones(batch, dtype=torch.bool, device=inputs.device)
    for group in range(groups):
        members = active.nonzero().flatten()
        groups_used[members] += 1
        for member, step in pair_chunks(len(members), draws, internal_batch_size, inputs):
            b, d = members[member], group * draws + step
            drawn = indices[b, d] if indices is not None else None
            # gathers by index_select (contiguous rows copied whole) and in-place arithmetic: the same
            # values as `base + a * (x - base)` and `(A(x) - A(x')) * g`, with fewer passes over memory
            base = bank.index_select(0, drawn) if bank is not None else source.draw_pairs(inputs, b, d, seeds)  # type: ignore[arg-type]
            if noise_std > 0:
                base = base + noise_std * pair_normal(inputs, b, d, seeds, stream=4)
            difference = inputs.index_select(0, b).sub_(base)
            along = factors[b, d].view(-1, *(1,) * (inputs.ndim - 1))
            path = (difference * along if input_terms else difference.mul_(along)).add_(base).requires_grad_(input_terms)
            count = len(b)
            if cached is None:
                out, acts = forward_with_layers(model, names, torch.cat([path, base]), graph, torch.cat([b, b]))
                base_acts, base_out = [layer[count:].detach() for layer in acts], out[count:].detach()
            else:
                out, acts = forward_with_layers(model, names, path, graph, b)
                base_acts = [layer.index_select(0, drawn) for layer in cached[0]]  # type: ignore[arg-type]
                base_out = cached[1].index_select(0, drawn)  # type: ignore[arg-type]
            chunk_targets = None if targets is None else targets[b]
            path_scores = select_scores(out[:count], chunk_targets)
            grads = torch.autograd.grad(path_scores.sum(), acts + ([path] if input_terms else []), allow_unused=len(names) > 1)
            slot = b * groups + group
            for index, (sums, layer, base_layer) in enumerate(zip(layer_sums, activations, base_acts)):
                if grads[index] is None:
                    raise ValueError(f"the model's output does not depend on layer {names[index]!r}; choose a layer on the path to the output")
                sums.index_add_(0, slot, layer.index_select(0, b).sub_(base_layer.to(dtype)).mul_(grads[index][:count].to(dtype)))
            if input_sums is not None:
                input_sums.index_add_(0, b, difference.mul_(grads[-1].to(dtype)))
            baseline_score_sums.index_add_(0, slot, select_scores(base_out, chunk_targets).to(dtype))
        if tolerance is not None:
            unconverged = [convergence(sums, baseline_score_sums, scores, groups, draws, groups_used).delta > tolerance for sums in layer_sums]
            active &= torch.stack(unconverged).any(dim=0)
            if not bool(active.any()):
                break

    used_draws = (groups_used * draws).view(-1, *(1,) * (inputs.ndim - 1))
    input_means = None if input_sums is None else input_sums / used_draws
    return [
        ExpectedGradientsResult(
            layer, (sums / draws).view(batch, groups, *layer.shape[1:]), input_means, groups_used, targets,
            convergence(sums, baseline_score_sums, scores, groups, draws, groups_used),
        )
        for layer, sums in zip(activations, layer_sums)
    ]


def convergence(
    layer_sums: Tensor, baseline_score_sums: Tensor, scores: Tensor, groups: int, draws: int, groups_used: Tensor
) -> ConvergenceDiagnostics:
    """Diagnostics over the groups each sample used (sums hold each group's totals over M draws)."""
    batch = scores.shape[0]
    used = (groups_used * draws).to(scores.dtype)
    attribution = layer_sums.view(batch, groups, -1).sum(dim=(1, 2)) / used
    baseline = baseline_score_sums.view(batch, groups).sum(dim=1) / used
    gap = scores - baseline
    delta = (attribution - gap).abs()
    return ConvergenceDiagnostics(delta, delta / gap.abs().clamp_min(1e-12), scores, baseline, int(groups_used.max()) * draws)
