"""RandomLogit and Efficient MPRT: SSIM and histogram entropy against scikit-image / quantus, RandomLogit
against quantus with our other classes replayed, eMPRT's closed form for a model-free explainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_xai.explainers import InputXGradient
from lit_xai.metrics import EfficientMPRT, RandomLogit
from lit_xai.metrics.efficient_mprt import histogram_entropy
from lit_xai.metrics.ssim import structural_similarity
from tests.quantus_metrics.models import MODELS, batch, quantus_inputs, targets_of

quantus = pytest.importorskip("quantus")
skimage_metrics = pytest.importorskip("skimage.metrics")
QUIET = dict(disable_warnings=True, display_progressbar=False)
EXPLAINER = InputXGradient(reduce="sum")


def test_ssim_equals_scikit_image() -> None:
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(3, 9, 11, generator=generator), torch.randn(3, 9, 11, generator=generator)
    second[0] = first[0] * 0.7 + 0.1 * second[0]
    data_range = torch.stack([first, second], 1).flatten(2)
    data_range = data_range.amax(dim=(1, 2)) - data_range.amin(dim=(1, 2))
    ours = structural_similarity(first, second, data_range)
    reference = [
        skimage_metrics.structural_similarity(a.numpy().astype(np.float64), b.numpy().astype(np.float64), data_range=float(r))
        for a, b, r in zip(first, second, data_range)
    ]
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-10)
    assert ours[0] > 0.5 > abs(float(ours[1]))


def test_ssim_of_series_equals_scikit_image() -> None:
    first, second = torch.randn(2, 3, 40, generator=torch.Generator().manual_seed(2)).unbind(0)
    data_range = torch.stack([first, second], 1).flatten(1)
    data_range = data_range.amax(dim=1) - data_range.amin(dim=1)
    reference = [
        skimage_metrics.structural_similarity(a.double().numpy(), b.double().numpy(), data_range=float(r))
        for a, b, r in zip(first, second, data_range)
    ]
    np.testing.assert_allclose(structural_similarity(first, second, data_range).numpy(), reference, atol=1e-10)


def test_histogram_entropy_equals_quantus_discrete_entropy() -> None:
    maps = torch.randn(4, 6, 6, generator=torch.Generator().manual_seed(1))
    maps[1] = maps[1].round()  # repeated values on bin edges
    maps[2] = 3.0  # constant: one bin
    ours = histogram_entropy(maps, 100)
    reference = [quantus.functions.complexity_func.discrete_entropy(a=m.numpy(), x=m.numpy(), n_bins=100) for m in maps]
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-12)
    assert ours[2] == 0 and ours[0] > 2


@pytest.mark.parametrize("name", sorted(MODELS))
def test_random_logit_with_our_classes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model, (inputs, _) = MODELS[name](), batch(7)
    targets = targets_of(model, inputs)
    saliency = EXPLAINER(model, inputs, targets)
    metric = RandomLogit(explainer=EXPLAINER, win_size=5)
    metric.update(model, inputs, saliency)
    classes = model(inputs).shape[1]
    others = metric.other_classes(inputs, targets, classes)
    assert (others != targets).all()
    picks = (others - (others > targets).long()).numpy()  # the index among the other classes, as quantus draws it

    def ssim_2d(a: np.ndarray, b: np.ndarray, batched: bool = True, **kwargs: object) -> list[float]:
        out = []
        for aa, bb in zip(a, b):
            both = np.concatenate([aa, bb])
            out.append(skimage_metrics.structural_similarity(aa.reshape(6, 6), bb.reshape(6, 6), win_size=5, data_range=float(both.max() - both.min())))
        return out

    monkeypatch.setattr(np.random, "randint", lambda *args, **kwargs: picks)
    explain = lambda model, inputs, targets, **kw: EXPLAINER(model, torch.as_tensor(inputs), torch.as_tensor(targets)).unsqueeze(1).numpy()
    reference = quantus.RandomLogit(num_classes=classes, similarity_func=ssim_2d, normalise=False, **QUIET)(
        **quantus_inputs(model, inputs, saliency), explain_func=explain
    )
    np.testing.assert_allclose(metric.last_values.numpy(), np.asarray(reference, dtype=np.float64), atol=1e-5)
    told = RandomLogit(explainer=EXPLAINER, win_size=5, num_classes=classes)  # quantus' num_classes: no pass to count them
    told.update(model, inputs, saliency)
    assert torch.equal(told.last_values, metric.last_values)


def test_random_logit_num_classes_is_checked() -> None:
    model, (inputs, _) = MODELS["pooling_convnet"](), batch(7)
    with pytest.raises(ValueError, match="num_classes must be None"):
        RandomLogit(explainer=EXPLAINER, num_classes=1)
    metric = RandomLogit(explainer=EXPLAINER, win_size=5, num_classes=2)
    targets = torch.full((inputs.shape[0],), 2)
    with pytest.raises(ValueError, match="beyond num_classes=2"):
        metric.update(model, inputs, EXPLAINER(model, inputs, targets), targets)


def edges(model: torch.nn.Module, inputs: torch.Tensor, targets: object = None) -> torch.Tensor:
    """A model-free 'explainer': horizontal differences of the input."""
    return torch.nn.functional.pad((inputs[:, 0, :, 1:] - inputs[:, 0, :, :-1]).abs(), (0, 1))


def test_efficient_mprt() -> None:
    model, (inputs, _) = MODELS["pooling_convnet"](), batch(8)
    saliency = EXPLAINER(model, inputs)
    metric = EfficientMPRT(explainer=EXPLAINER)
    before, after = metric.entropies(model, inputs, saliency)
    random_maps = EXPLAINER(metric.randomised(model), inputs, targets_of(model, inputs))
    expected_after = [quantus.functions.complexity_func.discrete_entropy(a=m.numpy(), x=m.numpy(), n_bins=100) for m in random_maps]
    np.testing.assert_allclose(after.numpy(), expected_after, atol=1e-6)
    metric.update(model, inputs, saliency)
    assert torch.allclose(metric.last_values, (after - before) / before)
    assert torch.equal(model[0].weight, MODELS["pooling_convnet"]()[0].weight)  # the model itself is untouched
    blind = EfficientMPRT(explainer=edges)  # maps that ignore the model: no change at all
    blind.update(model, inputs, edges(model, inputs))
    assert torch.equal(blind.last_values, torch.zeros(4, dtype=torch.float64))


def test_smooth_mprt() -> None:
    """Both maps are means over the same seeded noisy copies; a model-free explainer correlates 1 with
    itself on the random model; a gradient method's value is the Spearman of the two smoothed maps."""
    from lit_xai.explainers.seeding import pair_generator, sample_seed
    from lit_xai.metrics import SmoothMPRT
    from lit_xai.metrics.randomization import spearman_correlation

    model, (inputs, _) = MODELS["pooling_convnet"](), batch(11, size=3)
    targets = targets_of(model, inputs)
    blind = SmoothMPRT(explainer=edges, nr_samples=3)
    blind.update(model, inputs, edges(model, inputs))
    assert torch.allclose(blind.last_values, torch.ones(3, dtype=torch.float64))
    metric = SmoothMPRT(explainer=EXPLAINER, nr_samples=4, internal_batch_size=5)
    metric.update(model, inputs, EXPLAINER(model, inputs))
    sigma = 0.1 * (inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1))

    def smoothed(net: torch.nn.Module) -> torch.Tensor:
        maps = []
        for x, s in zip(inputs, sigma):
            noisy = torch.stack([x + s * torch.randn(x.shape, generator=pair_generator(sample_seed(x, 0), d)) for d in range(4)])
            maps.append(EXPLAINER(net, noisy, targets[len(maps)].repeat(4)).mean(dim=0).flatten())
        return torch.stack(maps)

    expected = spearman_correlation(smoothed(model).abs(), smoothed(EfficientMPRT().randomised(model)).abs())
    assert torch.allclose(metric.last_values, expected, atol=1e-6)
    assert (metric.last_values < 0.9).all()


def test_model_copy_shares_the_trainer_it_does_not_copy() -> None:
    from lit_xai.metrics.efficient_mprt import model_copy

    model = MODELS["blind_mlp"]()
    model._trainer = {"a trainer": list(range(10))}  # what a LightningModule refers to outside itself
    copied = model_copy(model)
    assert copied._trainer is model._trainer and copied[1].weight is not model[1].weight
    assert torch.equal(copied[1].weight, model[1].weight)
