"""Feature Ablation, Shapley Value Sampling, KernelSHAP, LIME over segments: captum parity fed the same
draws, exact Shapley values (additive model, all coalitions), per-sample seeding."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import Tensor, nn

from lit_xai.explainers.perturbation.coalitions import FeatureAblation, ShapleyValueSampling
from lit_xai.explainers.perturbation.surrogates import KernelShap, Lime
from lit_xai.segments import segments
from tests.explainers.attribution_parity.models import residual_net, series_net

captum_attr = pytest.importorskip("captum.attr")
shapley_module = pytest.importorskip("captum.attr._core.shapley_value")
linear_models = pytest.importorskip("captum._utils.models.linear_model")


def images(n: int = 3, seed: int = 1) -> Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def series(n: int = 3, seed: int = 2) -> Tensor:
    return torch.randn(n, 3, 12, generator=torch.Generator().manual_seed(seed))


# (model, inputs, targets, segment options, captum feature mask from our ids)
CASES = [
    (residual_net, images, torch.tensor([0, 3, 1]), {"patch_size": 2}, lambda ids: ids.unsqueeze(1)),
    (series_net, series, torch.tensor([2, 0, 1]), {"patch_size": 4, "by": "both"}, lambda ids: ids),
]
IDS = ["residual_net", "series_net_sensor_x_window"]


@pytest.mark.parametrize(("make_model", "make_inputs", "targets", "options", "mask"), CASES, ids=IDS)
def test_feature_ablation_matches_captum(make_model, make_inputs, targets, options, mask) -> None:  # type: ignore[no-untyped-def]
    model, inputs = make_model(), make_inputs()
    explainer = FeatureAblation(baseline=0.5, reduce="none", internal_batch_size=5, **options)
    ids = explainer.segment_ids(inputs)
    reference = captum_attr.FeatureAblation(model).attribute(inputs, baselines=0.5, target=targets, feature_mask=mask(ids))
    torch.testing.assert_close(explainer(model, inputs, targets), reference, atol=1e-5, rtol=1e-5)


def test_feature_ablation_with_per_sample_segments_matches_captum() -> None:
    model, inputs, targets = residual_net(), images(), torch.tensor([1, 1, 2])
    given = torch.randint(0, 5, (3, 8, 8), generator=torch.Generator().manual_seed(0))
    given[1] = torch.where(given[1] > 2, 2, given[1])  # 3 segments for sample 1, 5 for the others
    reference = captum_attr.FeatureAblation(model).attribute(inputs, target=targets, feature_mask=given.unsqueeze(1))
    torch.testing.assert_close(FeatureAblation(features=given, reduce="none")(model, inputs, targets), reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("make_model", "make_inputs", "targets", "options", "mask"), CASES, ids=IDS)
def test_shapley_value_sampling_matches_captum_fed_the_same_permutations(make_model, make_inputs, targets, options, mask, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, inputs, targets = make_model(), make_inputs(2), targets[:2]  # captum runs one coalition a pass
    explainer = ShapleyValueSampling(samples=3, seed=4, reduce="none", internal_batch_size=7, **options)
    ours = explainer(model, inputs, targets)
    ids, permutations = explainer.segment_ids(inputs), explainer.permutations(inputs)
    rows = []
    for i in range(inputs.shape[0]):
        monkeypatch.setattr(shapley_module, "_perm_generator", lambda n, s, p=permutations[i]: iter(p.tolist()))
        rows.append(captum_attr.ShapleyValueSampling(model).attribute(inputs[i : i + 1], target=targets[i : i + 1], feature_mask=mask(ids[i : i + 1]), n_samples=3))
    torch.testing.assert_close(ours, torch.cat(rows), atol=1e-5, rtol=1e-5)


def replay(coalitions: Tensor):  # type: ignore[no-untyped-def]
    """A captum perturb_func yielding our coalitions, in order."""

    def perturb(original, **kwargs):  # type: ignore[no-untyped-def]
        for row in coalitions:
            yield row.long().unsqueeze(0)

    return perturb


@pytest.mark.parametrize(("make_model", "make_inputs", "targets", "options", "mask"), CASES, ids=IDS)
def test_kernel_shap_matches_captum_fed_the_same_coalitions(make_model, make_inputs, targets, options, mask) -> None:  # type: ignore[no-untyped-def]
    model, inputs, targets = make_model(), make_inputs(2), targets[:2]  # captum runs one coalition a pass
    explainer = KernelShap(samples=24, seed=2, reduce="none", **options)
    ours = explainer(model, inputs, targets)
    ids, coalitions = explainer.segment_ids(inputs), explainer.coalitions(inputs)
    assert coalitions[0][0].all() and not coalitions[0][1].any()  # the two ends first, as captum
    rows = []
    for i in range(inputs.shape[0]):
        reference = captum_attr.KernelShap(model)
        reference.perturb_func = replay(coalitions[i])
        rows.append(reference.attribute(inputs[i : i + 1], target=targets[i : i + 1], feature_mask=mask(ids[i : i + 1]), n_samples=24))
    torch.testing.assert_close(ours, torch.cat(rows), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("make_model", "make_inputs", "targets", "options", "mask"), CASES, ids=IDS)
def test_lime_matches_captum_fed_the_same_coalitions(make_model, make_inputs, targets, options, mask) -> None:  # type: ignore[no-untyped-def]
    model, inputs, targets = make_model(), make_inputs(2), targets[:2]  # captum runs one coalition a pass
    explainer = Lime(samples=24, seed=5, baseline=0.25, reduce="none", **options)
    ours = explainer(model, inputs, targets)
    ids, coalitions = explainer.segment_ids(inputs), explainer.coalitions(inputs)
    rows = []
    for i in range(inputs.shape[0]):
        reference = captum_attr.Lime(model, interpretable_model=linear_models.SkLearnLinearRegression(), perturb_func=replay(coalitions[i]))
        rows.append(reference.attribute(inputs[i : i + 1], baselines=0.25, target=targets[i : i + 1], feature_mask=mask(ids[i : i + 1]), n_samples=24))
    torch.testing.assert_close(ours, torch.cat(rows), atol=1e-5, rtol=1e-4)


class SegmentSums(nn.Module):
    """Additive over the four 4 x 4 patches of an 8 x 8 image: y_k = sum_j w_kj * sum(x in patch j)."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, 1.0, -1.0]]))

    def forward(self, x: Tensor) -> Tensor:
        sums = nn.functional.avg_pool2d(x.sum(1, keepdim=True), 4).flatten(1) * 16  # (B, 4) patch sums
        return sums @ self.weights.T


def test_additive_model_gets_each_segments_contribution_exactly() -> None:
    model, inputs = SegmentSums().eval(), images(2)
    contributions = (nn.functional.avg_pool2d(inputs.sum(1, keepdim=True), 4).flatten(1) * 16) * model.weights[0].detach()
    expected = contributions.view(2, 2, 2).repeat_interleave(4, 1).repeat_interleave(4, 2).unsqueeze(1).expand(2, 3, 8, 8)
    targets = torch.zeros(2, dtype=torch.long)
    for explainer in (
        FeatureAblation(patch_size=4, reduce="none"),
        ShapleyValueSampling(patch_size=4, samples=3, reduce="none"),
        KernelShap(patch_size=4, samples=16, reduce="none"),
    ):
        torch.testing.assert_close(explainer(model, inputs, targets), expected, atol=1e-4, rtol=1e-4)


def exact_shapley(model: nn.Module, x: Tensor, ids: Tensor, target: int) -> Tensor:
    """Brute force: phi_j = sum_{S not containing j} |S|! (M - |S| - 1)! / M! (v(S + j) - v(S))."""
    count = int(ids.max()) + 1
    values = {}
    for size in range(count + 1):
        for subset in itertools.combinations(range(count), size):
            keep = torch.isin(ids, torch.tensor(subset, dtype=torch.long))
            with torch.no_grad():
                values[subset] = model(torch.where(keep, x, 0.0).unsqueeze(0))[0, target].item()
    phi = torch.zeros(count, dtype=torch.float64)
    for j in range(count):
        others = [k for k in range(count) if k != j]
        for size in range(count):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(count - size - 1) / math.factorial(count)
                phi[j] += weight * (values[tuple(sorted(subset + (j,)))] - values[subset])
    return phi


def test_kernel_shap_with_every_coalition_is_the_exact_shapley_value() -> None:
    model, inputs, targets = residual_net(), images(2), torch.tensor([1, 2])
    ours = KernelShap(patch_size=4, samples=16, reduce="none")(model, inputs, targets)
    ids = segments(inputs, patch_size=4)
    for i in range(2):
        phi = exact_shapley(model, inputs[i], ids[i].unsqueeze(0), int(targets[i]))
        torch.testing.assert_close(ours[i, 0], phi.float()[ids[i]], atol=1e-4, rtol=1e-4)
        with torch.no_grad():
            gap = model(inputs[i : i + 1])[0, targets[i]] - model(torch.zeros_like(inputs[i : i + 1]))[0, targets[i]]
        torch.testing.assert_close(phi.sum().float(), gap, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", [ShapleyValueSampling, KernelShap, Lime])
def test_draws_are_per_sample(method) -> None:  # type: ignore[no-untyped-def]
    model, inputs, targets = residual_net(), images(3), torch.tensor([0, 1, 2])
    together = method(patch_size=4, samples=5, seed=1, reduce="none")(model, inputs, targets)
    alone = method(patch_size=4, samples=5, seed=1, reduce="none", internal_batch_size=2)(model, inputs[2:], targets[2:])
    torch.testing.assert_close(alone, together[2:])


def test_errors_say_what_was_wrong() -> None:
    with pytest.raises(ValueError, match="features must be one of"):
        FeatureAblation(features="grid")
    with pytest.raises(ValueError, match="by must be one of"):
        KernelShap(by="sensor")
    with pytest.raises(ValueError, match="regressor"):
        Lime(regressor="ridge")
    with pytest.raises(ValueError, match="kernel_width"):
        Lime(kernel_width=0)


@pytest.mark.parametrize(("make_model", "make_inputs", "targets", "options", "mask"), CASES, ids=IDS)
def test_lime_lasso_matches_captum_with_a_converged_scikit_learn_lasso(make_model, make_inputs, targets, options, mask) -> None:  # type: ignore[no-untyped-def]
    model, inputs, targets = make_model(), make_inputs(2), targets[:2]
    explainer = Lime(samples=24, seed=5, regressor="lasso", alpha=0.002, reduce="none", **options)
    ours = explainer(model, inputs, targets)
    ids, coalitions = explainer.segment_ids(inputs), explainer.coalitions(inputs)
    rows = []
    for i in range(inputs.shape[0]):
        lasso = linear_models.SkLearnLasso(alpha=0.002, tol=1e-12, max_iter=100000)
        reference = captum_attr.Lime(model, interpretable_model=lasso, perturb_func=replay(coalitions[i]))
        rows.append(reference.attribute(inputs[i : i + 1], target=targets[i : i + 1], feature_mask=mask(ids[i : i + 1]), n_samples=24))
    torch.testing.assert_close(ours, torch.cat(rows), atol=1e-5, rtol=1e-4)
    assert (ours == 0).any() and (ours != 0).any()  # the penalty zeroes some segments, not all
