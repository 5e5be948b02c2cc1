"""DeepLIFT, DeepLIFT-SHAP, GradientSHAP and Deconvolution: modified or averaged input gradients.

DeepLIFT runs each chunk of inputs together with its references in one pass (`[x; x']`, 2n rows) under
`activation_rules(RescaleRule)`, so every activation call, module or functional, reused or in-place,
backpropagates its Rescale multiplier (`modified_backward.py`); the score is read from the inputs' rows.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, index_chunks, pair_chunks
from lit_xai.explainers.attributions import InputSpaceExplainer, clean_pass, expand_batch, input_gradients
from lit_xai.explainers.expected_gradients import bank_indices, interpolation_factors
from lit_xai.explainers.input_space.modified_backward import DeconvolutionRule, RescaleRule, activation_rules
from lit_xai.explainers.path_baselines import BaselineSource, as_baseline_source, pair_normal
from lit_xai.explainers.seeding import sample_seeds
from lit_xai.targets import Target, model_outputs, resolve_targets, resolved_scores, select_scores


def check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
        raise ValueError(f"eps must be a number > 0 (|x - x'| below it falls back to the plain gradient), got {eps!r}")
    return float(eps)


def rescale_multipliers(
    model: nn.Module, points: Tensor, references: Tensor, targets: Tensor | Target | None, samples: Tensor, eps: float
) -> Tensor:
    """DeepLIFT's multipliers m = d^DL y^c / d x `(n, C, *spatial)` of `points` against `references` (rows
    of the same samples, `samples`), in one pass over the 2n rows `[points; references]`; the score
    differentiated is the sum of the target scores of both halves, as in captum (the references' half only
    matters through max pooling's rule)."""
    n = points.shape[0]
    leaf = points.detach().requires_grad_(True)
    rows = torch.cat([leaf, references.detach().to(points.dtype)])
    with activation_rules(RescaleRule(n, eps)):
        outputs = model_outputs(model, rows, torch.cat([samples, samples]))
    resolved = resolve_targets(outputs[:n], targets)
    both = torch.cat([torch.arange(n, device=points.device)] * 2)
    scores = select_scores(outputs, None if resolved is None else resolved[both])  # both halves, as captum
    (gradients,) = torch.autograd.grad(scores.sum(), leaf, allow_unused=True)
    if gradients is None:
        raise ValueError(f"the output of {type(model).__name__} does not depend on its inputs; DeepLIFT needs a path from the inputs to the output")
    return gradients


class DeepLift(InputSpaceExplainer):
    """DeepLIFT with the Rescale rule (Shrikumar et al., "Learning Important Features Through Propagating
    Activation Differences", ICML 2017), captum's `DeepLift`:

        phi_i = (x_i - x'_i) * m_i,   m = the chain rule with each nonlinearity's derivative replaced by
        (f(z) - f(z')) / (z - z')  (its plain derivative where |z - z'| < eps),

    z, z' the nonlinearity's inputs for x and the baseline x'. Summation to delta: sum_i phi_i = y^c(x) - y^c(x')
    for networks of linear operations, elementwise activations and max pooling. Max pooling and softmax
    follow captum (softmax: the Rescale multipliers minus their mean over the softmax's dimension and the
    sample's input and reference rows; captum takes that mean over the whole batch, see `RescaleRule`).
    `multiply_by_inputs=False` returns m. Unlike captum's module hooks, the rule is applied per call, so a
    module used twice (torchvision ResNet blocks), in-place activations and functional activations all
    work (`modified_backward.py`).

    Args:
        baselines: x', a number or a tensor broadcastable to the inputs (one sample's shape or the batch's).
        multiply_by_inputs: multiply the multipliers by (x - x') (captum's default, True).
        eps: the |z - z'| below which the plain gradient is used (captum's 1e-10).
        internal_batch_size: inputs per pass (each pass carries them and their baselines).
        reduce: over channels, as every input-space method.
    """

    def __init__(
        self,
        baselines: Union[float, Tensor] = 0.0,
        multiply_by_inputs: bool = True,
        eps: float = 1e-10,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        if isinstance(baselines, bool) or not isinstance(baselines, (int, float, Tensor)):
            raise ValueError(f"baselines must be a number or a tensor broadcastable to the inputs, got {type(baselines).__name__}")
        self.baselines, self.multiply_by_inputs, self.eps = baselines, bool(multiply_by_inputs), check_eps(eps)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | Target | None) -> Tensor:
        baseline = expand_batch(self.baselines, inputs, "baselines")
        result = torch.empty_like(inputs)
        for sample in index_chunks(inputs.shape[0], self.internal_batch_size, inputs):
            chunk_targets = None if targets is None else targets[sample]
            multipliers = rescale_multipliers(model, inputs[sample], baseline[sample], chunk_targets, sample, self.eps)
            result[sample] = (inputs[sample] - baseline[sample]) * multipliers if self.multiply_by_inputs else multipliers
        return result


def baseline_bank(baselines: Union[BaselineSource, Tensor, None], inputs: Tensor, method: str) -> Tensor:
    """The bank `(N, *shape)` a SHAP method averages or draws over (None: one zero baseline)."""
    bank = as_baseline_source(baselines).bank(inputs)
    if bank is None:
        raise ValueError(
            f"{method} draws from a fixed bank of baselines (a tensor (N, *input_shape), DataBaselines, or None for the "
            f"callback's bank); {type(baselines).__name__} draws per pair"
        )
    return bank


class DeepLiftShap(InputSpaceExplainer):
    """DeepLIFT-SHAP (Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017;
    captum's `DeepLiftShap`): DeepLIFT averaged over every baseline of a bank,

        phi_i = (1 / N) sum_{n=1..N} (x_i - x'_n,i) * m_i(x, x'_n),

    so sum_i phi_i = y^c(x) - mean_n y^c(x'_n). `baselines`: a tensor `(N, *input_shape)`, `DataBaselines`,
    or None (zeros; the ExplainerCallback fills it with the datamodule's bank, as for Expected Gradients).
    The B x N (input, baseline) pairs go through the model in chunks of `internal_batch_size`.
    """

    def __init__(
        self,
        baselines: Union[BaselineSource, Tensor, None] = None,
        multiply_by_inputs: bool = True,
        eps: float = 1e-10,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        as_baseline_source(baselines)
        self.baselines, self.multiply_by_inputs, self.eps = baselines, bool(multiply_by_inputs), check_eps(eps)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | Target | None) -> Tensor:
        bank = baseline_bank(self.baselines, inputs, "DeepLiftShap")
        if targets is None:
            _, targets = clean_pass(model, inputs, targets)
        total = torch.zeros_like(inputs)
        for sample, index in pair_chunks(inputs.shape[0], bank.shape[0], self.internal_batch_size, inputs):
            references = bank[index]
            chunk_targets = None if targets is None else targets[sample]
            multipliers = rescale_multipliers(model, inputs[sample], references, chunk_targets, sample, self.eps)
            total.index_add_(0, sample, (inputs[sample] - references) * multipliers if self.multiply_by_inputs else multipliers)
        return total / bank.shape[0]


class GradientShap(InputSpaceExplainer):
    """GradientSHAP (Lundberg & Lee 2017; captum's `GradientShap`): expected gradients with Gaussian input noise,

        phi_i = (1 / S) sum_{s=1..S} (x~_s,i - x'_s,i) * d y^c / d x_i (x'_s + a_s (x~_s - x'_s)),
        x~_s = x + stdevs * e_s,  e_s ~ N(0, I),  x'_s drawn uniformly from the bank,  a_s ~ U(0, 1),

    `samples` draws per sample, seeded per sample (the bank indices and a_s as Expected Gradients draws them).
    `stdevs` is the noise's absolute standard deviation (captum's meaning; 0: no noise, captum's default).
    `multiply_by_inputs=False` returns the mean gradient. The B x S points go through the model in chunks.
    """

    def __init__(
        self,
        baselines: Union[BaselineSource, Tensor, None] = None,
        samples: int = 5,
        stdevs: float = 0.0,
        multiply_by_inputs: bool = True,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        as_baseline_source(baselines)
        if isinstance(stdevs, bool) or not isinstance(stdevs, (int, float)) or stdevs < 0:
            raise ValueError(f"stdevs must be a number >= 0 (the input noise's standard deviation), got {stdevs!r}")
        self.baselines, self.samples, self.stdevs = baselines, check_positive_int(samples, "samples"), float(stdevs)
        self.multiply_by_inputs, self.seed = bool(multiply_by_inputs), seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def draws(self, inputs: Tensor, bank_size: int) -> tuple[list[int], Tensor, Tensor]:
        """Per-sample seeds, bank indices `(B, S)` and path positions a `(B, S)` (noise is drawn per chunk)."""
        seeds = sample_seeds(inputs, self.seed)
        return seeds, bank_indices(bank_size, self.samples, seeds, inputs.device), interpolation_factors(inputs, self.samples, 1, "uniform", seeds)

    def noise(self, inputs: Tensor, sample: Tensor, draw: Tensor, seeds: list[int]) -> Tensor:
        """stdevs * e for the (sample, draw) pairs (zeros when stdevs = 0)."""
        if self.stdevs == 0:
            return torch.zeros_like(inputs[sample])
        return self.stdevs * pair_normal(inputs, sample, draw, seeds, stream=4)

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | Target | None) -> Tensor:
        bank = baseline_bank(self.baselines, inputs, "GradientShap")
        if targets is None:
            _, targets = clean_pass(model, inputs, targets)
        seeds, indices, alphas = self.draws(inputs, bank.shape[0])
        total = torch.zeros_like(inputs)
        view = (-1,) + (1,) * (inputs.ndim - 1)
        for sample, draw in pair_chunks(inputs.shape[0], self.samples, self.internal_batch_size, inputs):
            noisy = inputs[sample] + self.noise(inputs, sample, draw, seeds)
            base = bank[indices[sample, draw]]
            difference = noisy - base
            points = base + alphas[sample, draw].view(view) * difference
            gradients, _, _ = input_gradients(model, points, None if targets is None else targets[sample], sample)
            total.index_add_(0, sample, difference * gradients if self.multiply_by_inputs else gradients)
        return total / self.samples


class Deconvolution(InputSpaceExplainer):
    """Deconvolution (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014;
    captum's `Deconvolution`): the input gradient with every ReLU's backward pass replaced by the ReLU of the
    incoming gradient, `grad_in = max(grad_out, 0)` (the forward pass's switches ignored). Applied per ReLU
    call, module or functional (`modified_backward.py`); other operations keep their plain gradient."""

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | Target | None) -> Tensor:
        leaf = inputs.detach().requires_grad_(True)
        with activation_rules(DeconvolutionRule()):
            outputs = model_outputs(model, leaf)
        scores, _ = resolved_scores(outputs, targets)
        (gradients,) = torch.autograd.grad(scores.sum(), leaf, allow_unused=True)
        if gradients is None:
            raise ValueError(f"the output of {type(model).__name__} does not depend on its inputs; Deconvolution needs a path from the inputs to the output")
        return gradients
