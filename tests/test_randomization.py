"""ModelRandomizationSimilarity: rank correlations against scipy, seeded re-initialisation, weight-independent
methods stay at 1, Grad-CAM drops along the cascade on a trained CNN, and the model is left untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from lit_xai.explainers import CenterSaliency, GradCAM, RandomSaliency, SpectralResidualSaliency
from lit_xai.metrics.randomization import (
    ModelRandomizationSimilarity,
    average_ranks,
    layer_seed,
    pearson_correlation,
    reinitialize,
    spearman_correlation,
)
from tests.shapes_helpers import single_thread, trained_shapes_classifier

CASCADE = ["net.head.2", "net.block3.0", "net.block2.0", "net.block1.0"]


def validation_batch(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = trained_shapes_classifier().data.dataset("val")
    return dataset.images[:n], dataset.labels[:n]


# ----------------------------------------------------------------------------------------------------------
# Correlations


def test_average_ranks_and_correlations_match_scipy() -> None:
    assert average_ranks(torch.tensor([[10.0, 20.0, 20.0, 5.0]])).tolist() == [[2.0, 3.5, 3.5, 1.0]]
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (5, 40), generator=generator).float()  # many ties
    b = a + torch.randint(0, 4, (5, 40), generator=generator).float()
    ranks = average_ranks(a)
    spearman = spearman_correlation(a, b)
    pearson = pearson_correlation(a, b)
    for row in range(5):
        np.testing.assert_allclose(ranks[row].numpy(), stats.rankdata(a[row].numpy(), method="average"))
        assert spearman[row].item() == pytest.approx(stats.spearmanr(a[row].numpy(), b[row].numpy()).statistic, abs=1e-12)
        assert pearson[row].item() == pytest.approx(np.corrcoef(a[row].numpy(), b[row].numpy())[0, 1], abs=1e-12)
    # reversed order: -1; a monotone transform keeps Spearman at 1 but not Pearson
    x = torch.arange(1.0, 9.0).view(1, 8)
    assert spearman_correlation(x, -x).item() == pytest.approx(-1.0)
    assert spearman_correlation(x, x.exp()).item() == pytest.approx(1.0)
    assert pearson_correlation(x, x.exp()).item() < 0.9
    # constant maps: two constants agree (1), one constant against a varying map is 0
    flat = torch.zeros(1, 8)
    assert spearman_correlation(flat, flat + 3).item() == 1.0
    assert spearman_correlation(flat, x).item() == 0.0 and pearson_correlation(x, flat).item() == 0.0


# ----------------------------------------------------------------------------------------------------------
# Re-initialisation


class NoReset(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3, 4, 2))
        self.scale = nn.Parameter(torch.ones(5))


def test_reinitialize_is_seeded_by_layer_and_leaves_the_global_rng_alone() -> None:
    layer = nn.Linear(6, 3)
    state = torch.get_rng_state()
    reinitialize(layer, 7)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(7)
    reference = nn.Linear(6, 3)  # the constructor calls reset_parameters() once
    torch.testing.assert_close(layer.weight, reference.weight, rtol=0, atol=0)
    torch.testing.assert_close(layer.bias, reference.bias, rtol=0, atol=0)
    # without reset_parameters: N(0, 1 / fan_in), fan_in = 4 * 2 for the weight and 1 for the vector
    custom = NoReset()
    reinitialize(custom, 3)
    torch.manual_seed(3)
    torch.testing.assert_close(custom.weight.detach(), torch.empty(3, 4, 2).normal_(0.0, 1 / math.sqrt(8)), rtol=0, atol=0)
    torch.testing.assert_close(custom.scale.detach(), torch.empty(5).normal_(0.0, 1.0), rtol=0, atol=0)
    assert layer_seed(0, "net.head.2") == layer_seed(0, "net.head.2") != layer_seed(1, "net.head.2")


# ----------------------------------------------------------------------------------------------------------
# The metric on a trained CNN


@pytest.mark.parametrize("explainer", [RandomSaliency(), CenterSaliency(), SpectralResidualSaliency()], ids=lambda e: type(e).__name__)
def test_weight_independent_methods_stay_at_one(explainer: object) -> None:
    inputs, labels = validation_batch(16)
    metric = ModelRandomizationSimilarity(explainer)
    with single_thread():
        metric.update(trained_shapes_classifier().model, inputs, labels)
    assert metric.layer_names == CASCADE
    curve = metric.curve()
    assert curve.shape == (4,) and bool((curve > 0.99).all()), curve  # measured: exactly 1.0 at every step
    assert metric.compute().item() == curve[-1].item()


def test_gradcam_similarity_drops_along_the_cascade_and_the_model_is_untouched() -> None:
    trained = trained_shapes_classifier()
    model = trained.model
    inputs, labels = validation_batch(64)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    with single_thread():
        metric = ModelRandomizationSimilarity(GradCAM(), seed=0)
        metric.update(model, inputs[:32], labels[:32])
        metric.update(model, inputs[32:], labels[32:])
        curve = metric.curve()
        # measured (seed 0, 64 images): [0.482, 0.330, 0.210, 0.214] for head, block3, block2, block1
        assert curve[0] < 0.6
        assert curve[1] < curve[0] - 0.1
        assert curve[2] < curve[1] - 0.08
        assert curve[3] < curve[0] - 0.2
        assert metric.compute().item() == curve[-1].item()
        # the same per-layer weights at every update: one update of all 64 images gives the same curve
        whole = ModelRandomizationSimilarity(GradCAM(), seed=0)
        whole.update(model, inputs, labels)
        torch.testing.assert_close(whole.curve(), curve, rtol=0, atol=1e-6)
        # over five seeds (measured means [0.388, 0.409, 0.252, 0.241]) the fully random cascade stays lower
        finals, firsts = [], []
        for seed in range(5):
            seeded = ModelRandomizationSimilarity(GradCAM(), seed=seed)
            seeded.update(model, inputs, labels)
            firsts.append(seeded.curve()[0].item())
            finals.append(seeded.compute().item())
        assert np.mean(finals) < np.mean(firsts) - 0.08 and np.mean(finals) < 0.35
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert [p.requires_grad for p in model.parameters()] == flags and all(p.grad is None for p in model.parameters())
    assert not model.training


def test_explicit_layers_inference_mode_and_errors() -> None:
    model = trained_shapes_classifier().model
    inputs, labels = validation_batch(16)
    with single_thread():
        default = ModelRandomizationSimilarity(GradCAM(), seed=0)
        default.update(model, inputs, labels)
        # each layer's weights depend on (seed, name) only: the first two steps are the default's first two
        explicit = ModelRandomizationSimilarity(GradCAM(), layers=CASCADE[:2], seed=0)
        with torch.inference_mode():  # Lightning's validate/test loops
            explicit.update(model, inputs, labels)
        torch.testing.assert_close(explicit.curve(), default.curve()[:2], rtol=0, atol=1e-6)
        # targets default to the trained model's prediction (99 % accurate here: same as the labels on this batch)
        predicted = ModelRandomizationSimilarity(GradCAM(), seed=0)
        predicted.update(model, inputs)
        assert torch.equal(model(inputs).argmax(1), labels)
        torch.testing.assert_close(predicted.curve(), default.curve(), rtol=0, atol=1e-6)
    assert ModelRandomizationSimilarity.higher_is_better is False
    with pytest.warns(UserWarning, match="before the ``update`` method"):
        assert math.isnan(ModelRandomizationSimilarity(GradCAM()).compute().item())
    with pytest.raises(ValueError, match="close matches: net.block3"):
        ModelRandomizationSimilarity(GradCAM(), layers=["net.blok3"]).update(model, inputs, labels)
    with pytest.raises(ValueError, match="has no parameters"):
        ModelRandomizationSimilarity(GradCAM(), layers=["net.block2.2"]).update(model, inputs, labels)
    with pytest.raises(ValueError, match="similarity must be one of"):
        ModelRandomizationSimilarity(GradCAM(), similarity="ssim")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not repeat"):
        ModelRandomizationSimilarity(GradCAM(), layers=["net.head.2", "net.head.2"])
    with pytest.raises(TypeError, match="explainer must be callable"):
        ModelRandomizationSimilarity("gradcam")  # type: ignore[arg-type]
