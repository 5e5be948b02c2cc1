"""Expected gradients at a layer (and at the input) along straight paths from drawn baselines.

For an input x, baselines x'_d and interpolation factors a_d (d = 1..K*M, in K groups of M draws):

    path point     p_d = x'_d + a_d (x - x'_d)
    layer term     (A(x) - A(x'_d)) * dy^c/dA (p_d)       the "double forward pass": x - x' carried to layer l
    input term     (x - x'_d) * dy^c/dx (p_d)             (expected gradients, Erion et al. 2021)

averaged over each group's M draws. All path points (and the baselines, whose activations are needed)
go through the model as batches of `internal_batch_size`; the activations and outputs of a fixed bank
of baselines are computed once and cached until the model's parameters or buffers change.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lit_xai.explainers.baselines import BankBaselines, BaselineSource
from lit_xai.explainers.gradients import forward_with_activations
from lit_xai.explainers.seeding import per_sample_normal, per_sample_uniform
from lit_xai.targets import resolve_targets, select_scores

ALPHAS = ("uniform", "linear")


@dataclass
class ConvergenceDiagnostics:
    """Completeness check of the layer attributions, per sample `(B,)`.

    `delta = |sum(layer attributions) - (y(x) - E[y(x')])|` and `relative_delta = delta / |y(x) - E[y(x')]|`.
    Exact completeness holds when the layer is linear in the input (the path stays straight at the
    layer); deeper layers keep a residual. `draws` is how many draws per sample were used.
    """

    delta: Tensor
    relative_delta: Tensor
    scores: Tensor
    baseline_scores: Tensor
    draws: int


@dataclass
class ExpectedGradientsResult:
    activations: Tensor  # A(x): (B, K, *s)
    layer_terms: Tensor  # per group: (B, G, K, *s)
    input_terms: Tensor | None  # per group: (B, G, C, *S)
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
        self.value: tuple[Tensor, Tensor] | None = None

    def get(self, model: nn.Module, layer_name: str, bank: Tensor, internal_batch_size: int) -> tuple[Tensor, Tensor]:
        key = (id(model), layer_name, bank.data_ptr(), tuple(bank.shape), bank._version, bank.device, bank.dtype, model_fingerprint(model))
        if self.key != key or self.value is None:
            outputs, activations = [], []
            with torch.no_grad():
                for start in range(0, bank.shape[0], internal_batch_size):
                    out, act = forward_with_activations(model, layer_name, bank[start : start + internal_batch_size])
                    outputs.append(out)
                    activations.append(act)
            self.key, self.value = key, (torch.cat(activations), torch.cat(outputs))
        return self.value


def interpolation_factors(inputs: Tensor, draws: int, groups: int, alphas: str, seed: int) -> Tensor:
    """`(B, groups * draws)`: U(0, 1) per draw ("uniform") or s / M, s = 1..M, in every group ("linear")."""
    if alphas == "uniform":
        return per_sample_uniform(inputs, (groups * draws,), seed).to(inputs.dtype)
    grid = torch.arange(1, draws + 1, dtype=inputs.dtype, device=inputs.device) / draws
    return grid.repeat(groups).expand(inputs.shape[0], -1)


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
    internal_batch_size: int,
    input_terms: bool = False,
    cache: BankActivationCache | None = None,
    tolerance: float | None = None,
) -> ExpectedGradientsResult:
    """Group-wise means of the layer (and optionally input) terms; see the module docstring."""
    batch = inputs.shape[0]
    with torch.no_grad():
        outputs, activations = forward_with_activations(model, layer_name, inputs)
    targets = resolve_targets(outputs, targets)
    scores = select_scores(outputs, targets).detach()

    total = groups * draws
    baselines, bank_indices = source.draw(inputs, total, seed)
    if noise_std > 0:
        baselines = baselines + noise_std * per_sample_normal(inputs, total, seed + 1)
        bank_indices = None
    factors = interpolation_factors(inputs, draws, groups, alphas, seed + 2)
    cached = None
    if bank_indices is not None and cache is not None and isinstance(source, BankBaselines):
        cached = cache.get(model, layer_name, source.bank_on(inputs.device, inputs.dtype), internal_batch_size)

    layer_sums = activations.new_zeros((batch * groups, *activations.shape[1:]))
    input_sums = inputs.new_zeros((batch * groups, *inputs.shape[1:])) if input_terms else None
    baseline_score_sums = scores.new_zeros(batch * groups)
    used_groups = groups
    for group in range(groups):
        pairs = torch.arange(batch * draws, device=inputs.device)
        sample, draw = pairs // draws, group * draws + pairs % draws
        for start in range(0, len(pairs), internal_batch_size):
            b, d = sample[start : start + internal_batch_size], draw[start : start + internal_batch_size]
            slot = b * groups + group
            base = baselines[b, d]
            path = (base + factors[b, d].view(-1, *(1,) * (inputs.ndim - 1)) * (inputs[b] - base)).requires_grad_(True)
            count = len(b)
            if cached is None:
                out, acts = forward_with_activations(model, layer_name, torch.cat([path, base]))
                base_acts, base_out = acts[count:].detach(), out[count:].detach()
            else:
                out, acts = forward_with_activations(model, layer_name, path)
                base_acts, base_out = cached[0][bank_indices[b, d]], cached[1][bank_indices[b, d]]
            path_scores = select_scores(out[:count], None if targets is None else targets[b])
            wrt = [acts] + ([path] if input_terms else [])
            grads = torch.autograd.grad(path_scores.sum(), wrt)
            layer_sums.index_add_(0, slot, (activations[b] - base_acts) * grads[0][:count])
            if input_sums is not None:
                input_sums.index_add_(0, slot, (inputs[b] - base) * grads[1])
            baseline_score_sums.index_add_(0, slot, select_scores(base_out, None if targets is None else targets[b]))
        if tolerance is not None and group + 1 < groups:
            delta = convergence(layer_sums, baseline_score_sums, scores, batch, groups, draws, group + 1).delta
            if bool((delta <= tolerance).all()):
                used_groups = group + 1
                break

    diagnostics = convergence(layer_sums, baseline_score_sums, scores, batch, groups, draws, used_groups)
    layer_means = (layer_sums / draws).view(batch, groups, *activations.shape[1:])[:, :used_groups]
    input_means = None if input_sums is None else (input_sums / draws).view(batch, groups, *inputs.shape[1:])[:, :used_groups]
    return ExpectedGradientsResult(activations, layer_means, input_means, targets, diagnostics)


def convergence(
    layer_sums: Tensor, baseline_score_sums: Tensor, scores: Tensor, batch: int, groups: int, draws: int, used_groups: int
) -> ConvergenceDiagnostics:
    """Diagnostics over the first `used_groups` groups (sums hold each group's totals over M draws)."""
    used = used_groups * draws
    attribution = layer_sums.view(batch, groups, -1)[:, :used_groups].sum(dim=(1, 2)) / used
    baseline = baseline_score_sums.view(batch, groups)[:, :used_groups].sum(dim=1) / used
    gap = scores - baseline
    delta = (attribution - gap).abs()
    return ConvergenceDiagnostics(delta, delta / gap.abs().clamp_min(1e-12), scores, baseline, used)
