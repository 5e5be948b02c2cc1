"""Insertion and Deletion against closed forms on a linear 'probability' model."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lit_xai.metrics import Deletion, Insertion, gaussian_blur
from lit_xai.filters import gaussian_kernel

W = torch.arange(1.0, 17.0).view(1, 1, 4, 4)  # weights 1..16, total 136


class LinearProbability(nn.Module):
    """p(x) = sum(w * x) / sum(w), returned as logits [log p, log(1 - p)] so that softmax gives p exactly."""

    def __init__(self, weights: torch.Tensor = W) -> None:
        super().__init__()
        self.register_buffer("w", weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = (x * self.w).flatten(1).sum(1) / self.w.sum()
        return torch.stack([torch.log(p), torch.log1p(-p)], dim=1)


class LinearScore(LinearProbability):
    """One output (a regressor): the raw sum(w * x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1, keepdim=True)


ONES = torch.ones(1, 1, 4, 4)
TARGET = torch.tensor([0])

# Deletion with saliency = w removes 16, 15, ... first: p_s = 1 - (16 s - s(s-1)/2) / 136, s = 0..16.
# sum_s p_s = 17 - (16 * 136 - C(17, 3)) / 136 = 17 - 11 = 6, so AUC = 6/16 - (p_0 + p_16)/32 = 0.34375.
# Insertion (zeros substrate) of the same order: sum_s p_s = 11, AUC = 11/16 - 1/32 = 0.65625;
# inserting least salient first: sum_s p_s = C(18, 3) / 136 = 6, AUC = 0.34375.


def test_deletion_closed_form() -> None:
    metric = Deletion(steps=16)
    metric.update(LinearProbability(), ONES, W[:, 0], TARGET)
    assert metric.compute().item() == pytest.approx(0.34375, abs=1e-6)
    expected_curve = torch.tensor([1 - (16 * s - s * (s - 1) / 2) / 136 for s in range(17)])
    torch.testing.assert_close(metric.curve(), expected_curve, atol=1e-6, rtol=0)


def test_insertion_closed_form_and_ordering() -> None:
    best, worst = Insertion(steps=16, substrate="zeros"), Insertion(steps=16, substrate="zeros")
    best.update(LinearProbability(), ONES, W[:, 0], TARGET)
    worst.update(LinearProbability(), ONES, -W[:, 0], TARGET)
    assert best.compute().item() == pytest.approx(0.65625, abs=1e-6)
    assert worst.compute().item() == pytest.approx(0.34375, abs=1e-6)
    assert Insertion.higher_is_better and not Deletion.higher_is_better


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # k_s = 4 s: p = [1, 78, 36, 10, 0] / 136 -> AUC = (1 + 2 (78 + 36 + 10) / 136) / 8 = 48 / 136
        (4, 48 / 136),
        # N = 16 not divisible by 3: k_s = floor(16 s / 3) = 0, 5, 10, 16 -> p = [1, 66/136, 21/136, 0]
        (3, (1 + 2 * (66 + 21) / 136) / 6),
    ],
)
def test_deletion_with_coarse_steps(steps: int, expected: float) -> None:
    metric = Deletion(steps=steps)
    metric.update(LinearProbability(), ONES, W[:, 0], TARGET)
    assert metric.compute().item() == pytest.approx(expected, abs=1e-6)


def test_regression_scores_the_raw_output() -> None:
    metric = Deletion(steps=16)
    metric.update(LinearScore(), ONES, W[:, 0])
    assert metric.compute().item() == pytest.approx(136 * 0.34375, abs=1e-4)


def test_time_series_closed_form() -> None:
    model = LinearProbability(W.view(1, 1, 16))
    metric = Deletion(steps=16)
    metric.update(model, torch.ones(1, 1, 16), W.view(1, 16), TARGET)
    assert metric.compute().item() == pytest.approx(0.34375, abs=1e-6)


def test_mean_over_images_and_updates_chunking_does_not_matter() -> None:
    model = LinearProbability()
    inputs = ONES.repeat(3, 1, 1, 1)
    saliency = torch.stack([W[0, 0], -W[0, 0], W[0, 0]])
    one_by_one = Insertion(steps=16, substrate="zeros", internal_batch_size=1)
    for i in range(3):
        one_by_one.update(model, inputs[i : i + 1], saliency[i : i + 1], TARGET)
    together = Insertion(steps=16, substrate="zeros", internal_batch_size=1000)
    together.update(model, inputs, saliency, torch.zeros(3, dtype=torch.long))
    expected = (0.65625 * 2 + 0.34375) / 3
    assert one_by_one.compute().item() == pytest.approx(expected, abs=1e-6)
    assert together.compute().item() == pytest.approx(expected, abs=1e-6)
    # AUCs 0.65625, 0.34375, 0.65625: deviations 0.3125 * (1/3, -2/3, 1/3) -> SE = sqrt(0.3125^2 (6/9) / 2 / 3) = 0.3125 / 3
    assert together.standard_error().item() == pytest.approx(0.3125 / 3, abs=1e-6)
    assert one_by_one.standard_error().item() == pytest.approx(0.3125 / 3, abs=1e-6)


def test_default_targets_are_the_argmax_and_all_channels_move_together() -> None:
    model = LinearProbability(W.repeat(1, 3, 1, 1))
    metric = Deletion(steps=16)
    metric.update(model, torch.ones(1, 3, 4, 4), W[:, 0])  # argmax is class 0 (p = 1)
    assert metric.compute().item() == pytest.approx(0.34375, abs=1e-6)


def test_gaussian_blur_kernel_and_substrate() -> None:
    kernel = gaussian_kernel(11, 5.0, torch.float64, torch.device("cpu"))
    assert kernel.sum().item() == pytest.approx(1.0)
    assert (kernel[0] / kernel[5]).item() == pytest.approx(math.exp(-25 / 50))
    constant = torch.full((1, 2, 32, 32), 3.0)
    blurred = gaussian_blur(constant)
    assert blurred[0, :, 5:27, 5:27].sub(3.0).abs().max().item() < 1e-5  # interior: no padding reached
    assert blurred[0, 0, 0, 0].item() == pytest.approx(3.0 * kernel[5:].sum().item() ** 2, rel=1e-5)  # zero padding
    delta = torch.zeros(1, 1, 21, 21)
    delta[0, 0, 10, 10] = 1
    torch.testing.assert_close(gaussian_blur(delta.double())[0, 0, 5:16, 5:16], torch.outer(kernel, kernel))
    # Insertion starts from the blurred image: its first point is the score of the blur
    model = LinearProbability(torch.ones(1, 1, 32, 32))
    image = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    metric = Insertion(steps=4)
    metric.update(model, image, torch.rand(1, 32, 32), TARGET)
    assert metric.curve()[0].item() == pytest.approx(gaussian_blur(image).mean().item() / 1.0, rel=1e-5)
    assert metric.curve()[-1].item() == pytest.approx(image.mean().item(), rel=1e-5)


def test_model_mode_untouched_and_clear_errors() -> None:
    model = LinearProbability().train()
    metric = Deletion(steps=4)
    metric.update(model, ONES, W[:, 0])
    assert model.training
    with pytest.raises(ValueError, match=r"reduce the channels first"):
        metric.update(model, ONES, ONES)
    with pytest.raises(ValueError, match=r"saliency must have shape \(B, \*spatial\) = \(1, 4, 4\)"):
        metric.update(model, ONES, torch.ones(1, 3, 3))
    with pytest.raises(ValueError, match="NaN"):
        metric.update(model, ONES, torch.full((1, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="substrate must be one of"):
        Insertion(substrate="gray")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        Deletion(steps=0)


def test_finite_check_names_the_tensor_and_allows_a_sum_that_overflows() -> None:
    """Inputs and maps are checked with one synchronisation (their sums); a NaN or inf still names the tensor
    that holds it (an inf in each, of opposite signs, sums to NaN), and finite values whose float32 sum
    overflows are accepted."""
    from lit_xai.metrics.common import check_metric_inputs

    inputs, saliency = torch.ones(2, 1, 4, 4), torch.ones(2, 4, 4)
    check_metric_inputs(inputs, saliency)
    check_metric_inputs(torch.full((2, 1, 4, 4), 3e38), torch.full((2, 4, 4), 3e38))  # sums overflow to inf
    for bad_inputs, bad_saliency, message in (
        (inputs.clone().index_put_((torch.tensor([1]),), torch.tensor(float("nan"))), saliency, "inputs contain NaN or inf"),
        (inputs, saliency.clone().index_put_((torch.tensor([0]),), torch.tensor(float("-inf"))), "saliency contains NaN or inf"),
        (inputs.clone().fill_(float("inf")), saliency.clone().fill_(float("-inf")), "inputs contain NaN or inf"),
    ):
        with pytest.raises(ValueError, match=message):
            check_metric_inputs(bad_inputs, bad_saliency)


def test_patches_agree_with_pixels_when_saliency_is_constant_per_patch() -> None:
    from lit_xai.metrics import InsertionDeletion

    generator = torch.Generator().manual_seed(0)
    model = LinearProbability(torch.rand(1, 1, 8, 8, generator=generator) + 0.1)
    inputs = torch.rand(2, 1, 8, 8, generator=generator)
    patch_scores = torch.randperm(16, generator=generator).float().view(1, 4, 4).repeat(2, 1, 1)
    saliency = patch_scores.repeat_interleave(2, 1).repeat_interleave(2, 2)  # constant on 2x2 patches, distinct
    for metric_class in (Insertion, Deletion, InsertionDeletion):
        pixels, patches = metric_class(steps=16), metric_class(steps=16, patch=2)
        pixels.update(model, inputs, saliency)
        patches.update(model, inputs, saliency + torch.rand(2, 8, 8, generator=generator) * 0.1)  # within-patch noise is averaged away
        assert patches.compute().item() == pytest.approx(pixels.compute().item(), abs=1e-6), metric_class.__name__


def test_partial_border_patches_and_least_relevant_first() -> None:
    from lit_xai.metrics.perturbation import unit_ranks

    saliency = torch.tensor([[[1.0, 2.0, 9.0], [3.0, 4.0, 9.0], [0.0, 0.0, 5.0]]])
    ranks, units = unit_ranks(saliency, 2, "morf")
    # patch means: [[2.5, 9], [0, 5]] -> order 9, 5, 2.5, 0
    assert units == 4 and ranks.view(3, 3).tolist() == [[2, 2, 0], [2, 2, 0], [3, 3, 1]]
    ranks, _ = unit_ranks(saliency, 2, "lerf")
    assert ranks.view(3, 3).tolist() == [[1, 1, 3], [1, 1, 3], [0, 0, 2]]
    # LeRF deletion of w-ranked pixels = MoRF deletion of the reversed ranking
    lerf, reversed_morf = Deletion(steps=16, order="lerf"), Deletion(steps=16)
    lerf.update(LinearProbability(), ONES, W[:, 0], TARGET)
    reversed_morf.update(LinearProbability(), ONES, -W[:, 0], TARGET)
    assert lerf.compute().item() == pytest.approx(reversed_morf.compute().item())
    assert lerf.compute().item() == pytest.approx(0.65625, abs=1e-6)  # deleting 1, 2, ... first: sum p = 11
    with pytest.raises(ValueError, match="order must be one of"):
        Deletion(order="random")


def test_insertion_deletion_is_the_difference() -> None:
    from lit_xai.metrics import InsertionDeletion

    metric = InsertionDeletion(steps=16, insertion_substrate="zeros")
    metric.update(LinearProbability(), ONES, W[:, 0], TARGET)
    assert metric.compute().item() == pytest.approx(0.65625 - 0.34375, abs=1e-6)
    assert InsertionDeletion.higher_is_better


def test_perfect_beats_random_beats_inverted_on_a_trained_shapes_model() -> None:
    """The object mask (the pixels that decide the class) as saliency must score better than random
    saliency, which must score better than the inverted mask, on both Insertion and Deletion.

    Insertion uses the zeros substrate here: the bare mask pasted sharp onto a blurred copy (which keeps
    a blurred ghost of the shape) confuses the model, measured 0.593 (mask) vs 0.599 (random) vs 0.867
    (Grad-CAM, whose map covers the shape's surroundings too) with the default blur; with zeros 0.875,
    0.454, 0.285."""
    from lit_xai.explainers import RandomSaliency
    from tests.shapes_helpers import single_thread, trained_shapes_classifier

    trained = trained_shapes_classifier()
    dataset = trained.data.dataset("val")
    inputs = torch.stack([dataset[i][0] for i in range(48)])
    masks = torch.stack([dataset.mask(i) for i in range(48)]).float()
    with single_thread():
        maps = {"perfect": masks, "random": RandomSaliency()(trained.model, inputs), "inverted": 1 - masks}
        scores = {}
        for name, saliency in maps.items():
            insertion, deletion = Insertion(steps=32, substrate="zeros"), Deletion(steps=32)
            insertion.update(trained.model, inputs, saliency)
            deletion.update(trained.model, inputs, saliency)
            scores[name] = (insertion.compute().item(), deletion.compute().item())
    assert scores["perfect"][0] > scores["random"][0] > scores["inverted"][0], scores
    assert scores["perfect"][1] < scores["random"][1] < scores["inverted"][1], scores
