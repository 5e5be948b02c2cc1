"""The CAM family on the hand model of conftest.HandModel, with every number computed by hand.

HandModel: A0 = x, A1 = 0.5 - x (conv1, the target layer), y = mean_ij(V @ ReLU(A)), V = [[1, 2], [-1, 1]],
x = [[1, -2], [3, 0.5]]: A0 = [[1, -2], [3, 0.5]], A1 = [[-0.5, 2.5], [-2.5, 0]], sum A0 = 2.5, sum A1 = -0.5.
Class 0: g0 = 1/4 [A0 > 0] = 1/4 at (0,0), (1,0), (1,1); g1 = 2/4 [A1 > 0] = 1/2 at (0,1).
Class 1: g0 = -1/4 at the same places; g1 = 1/4 at (0,1).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lit_xai.explainers import (
    AblationCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    SmoothGradCAMPlusPlus,
    XGradCAM,
)
from tests.conftest import HandModel, SmallNet

X = torch.tensor([[1.0, -2.0], [3.0, 0.5]]).view(1, 1, 2, 2)
A0 = X[0, 0]
A1 = 0.5 - X[0, 0]


def explain(explainer_class: type, target: int, **options: object) -> torch.Tensor:
    return explainer_class("conv1", upsample="none", **options)(HandModel().eval(), X, torch.tensor([target]))[0]


def test_gradcam_plus_plus_by_hand() -> None:
    # class 0, channel 0: alpha = 1 / (2 + 2.5 * 1/4) = 1/2.625 at 3 places -> w0 = 3 * 1/4 / 2.625 = 2/7
    #          channel 1: alpha = 1 / (2 - 0.5 * 1/2) = 1/1.75 at 1 place  -> w1 = (1/2) / 1.75  = 2/7
    #          map = ReLU(2/7 (A0 + A1)) = ReLU(2/7 * 0.5) = 1/7 everywhere
    torch.testing.assert_close(explain(GradCAMPlusPlus, 0), torch.full((2, 2), 1 / 7), rtol=0, atol=1e-7)
    # class 1: ReLU(g0) = 0 -> w0 = 0; channel 1: alpha = 1 / (2 - 0.5 * 1/4) = 1/1.875 -> w1 = (1/4) / 1.875 = 2/15
    #          map = ReLU(2/15 A1) = [[0, 1/3], [0, 0]]
    torch.testing.assert_close(explain(GradCAMPlusPlus, 1), torch.tensor([[0.0, 1 / 3], [0.0, 0.0]]), rtol=0, atol=1e-7)


def test_gradcam_plus_plus_eps_matters_for_small_gradients() -> None:
    # gradients scaled by 1e-4: the paper's alpha = 1 / (2 + S g) hardly changes, but pytorch-grad-cam's
    # eps = 1e-6 swamps 2 g^2 ~ 1e-9, shrinking the weights ~1000x
    model = HandModel().eval()
    with torch.no_grad():
        model.conv2.weight.mul_(1e-4)
    paper = GradCAMPlusPlus("conv1", upsample="none")(model, X, 0)[0]
    swamped = GradCAMPlusPlus("conv1", upsample="none", eps=1e-6)(model, X, 0)[0]
    g0, g1 = 0.25e-4, 0.5e-4
    alpha0 = g0**2 / (2 * g0**2 + 2.5 * g0**3 + 1e-12)  # ~ 1/2 * (1 - 8e-4): even 1e-12 is visible at this scale
    alpha1 = g1**2 / (2 * g1**2 - 0.5 * g1**3 + 1e-12)
    expected = torch.relu(3 * g0 * alpha0 * A0 + g1 * alpha1 * A1)
    torch.testing.assert_close(paper, expected, rtol=1e-4, atol=0)
    assert swamped.max() < paper.max() / 100


def test_xgradcam_by_hand() -> None:
    # w0 = sum(g0 A0) / sum(A0) = 1/4 (1 + 3 + 0.5) / 2.5 = 0.45 ; w1 = 1/2 * 2.5 / -0.5 = -2.5
    # map = ReLU(0.45 A0 - 2.5 A1) = [[1.7, 0], [7.6, 0.225]]
    torch.testing.assert_close(explain(XGradCAM, 0), torch.tensor([[1.7, 0.0], [7.6, 0.225]]), rtol=0, atol=1e-6)


def test_hirescam_and_layercam_by_hand() -> None:
    # class 0: every gradient >= 0, so both are ReLU(g0 A0 + g1 A1) = [[1/4, 1/2 * 2.5], [3/4, 0.5/4]]
    expected = torch.tensor([[0.25, 1.25], [0.75, 0.125]])
    torch.testing.assert_close(explain(HiResCAM, 0), expected, rtol=0, atol=1e-7)
    torch.testing.assert_close(explain(LayerCAM, 0), expected, rtol=0, atol=1e-7)
    # class 1: HiRes = ReLU(-1/4 A0 [A0>0] + 1/4 A1 [A1>0]) = [[0, 0.625], [0, 0]]; LayerCAM drops g0 < 0
    torch.testing.assert_close(explain(HiResCAM, 1), torch.tensor([[0.0, 0.625], [0.0, 0.0]]), rtol=0, atol=1e-7)


def test_layercam_differs_from_hirescam_where_gradients_are_negative() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.Flatten(), nn.Linear(4, 1, bias=False)).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[2].weight.copy_(torch.tensor([[1.0, -1.0, 2.0, 0.0]]))  # y = x00 - x01 + 2 x10
    x = torch.tensor([[[[1.0, 3.0], [2.0, 5.0]]]])
    # g = [[1, -1], [2, 0]]; HiRes = ReLU(g * A) = [[1, 0], [4, 0]]; LayerCAM = ReLU(ReLU(g) * A) = [[1, 0], [4, 0]]
    # with A01 = 3 > 0 both give 0 at (0,1); at (1,1) g = 0. Make A negative where g < 0 to separate them:
    x[0, 0, 0, 1] = -3.0  # HiRes: ReLU(-1 * -3) = 3; LayerCAM: ReLU(0 * -3) = 0
    torch.testing.assert_close(HiResCAM("0", upsample="none")(model, x)[0], torch.tensor([[1.0, 3.0], [4.0, 0.0]]))
    torch.testing.assert_close(LayerCAM("0", upsample="none")(model, x)[0], torch.tensor([[1.0, 0.0], [4.0, 0.0]]))


def test_score_cam_by_hand() -> None:
    # masks: (A - min) / (max - min): M0 = [[0.6, 0], [1, 0.5]], M1 = [[0.4, 1], [0, 0.5]]
    # y0(x * M0) = (0.6 + 3 + 0.25 + 2 (0.5 + 0.25)) / 4 = 1.3375 ; y0(x * M1) = (0.65 + 2 * 3.35) / 4 = 1.8375
    # w = softmax([1.3375, 1.8375]) = [1 / (1 + e^0.5), e^0.5 / (1 + e^0.5)]
    w0 = 1 / (1 + math.exp(0.5))
    expected = torch.relu(w0 * A0 + (1 - w0) * A1)
    torch.testing.assert_close(explain(ScoreCAM, 0), expected, rtol=0, atol=1e-6)


def test_ablation_cam_by_hand() -> None:
    # y0 = 2.375; zeroing A0 leaves mean(2 ReLU(A1)) = 1.25 -> w0 = 1.125 / 2.375 = 9/19
    # zeroing A1 leaves mean(ReLU(A0)) = 1.125 -> w1 = 1.25 / 2.375 = 10/19
    # map = ReLU((9 A0 + 10 A1) / 19) = (5 - x) / 19
    torch.testing.assert_close(explain(AblationCAM, 0), (5 - A0) / 19, rtol=0, atol=1e-7)


@pytest.mark.parametrize("explainer_class", [ScoreCAM, AblationCAM])
def test_masked_passes_are_chunked_without_changing_the_map(explainer_class: type, small_net: SmallNet) -> None:
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    small_net.eval()
    one = explainer_class("features.3", internal_batch_size=1)(small_net, inputs, torch.tensor([0, 1, 2]))
    many = explainer_class("features.3", internal_batch_size=1000)(small_net, inputs, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(one, many)
    with pytest.raises(ValueError, match="internal_batch_size must be a positive int"):
        explainer_class("features.3", internal_batch_size=0)


def test_smooth_gradcam_plus_plus_without_noise_is_gradcam_plus_plus(small_net: SmallNet) -> None:
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    small_net.eval()
    smooth = SmoothGradCAMPlusPlus("features.3", noise_level=0.0, samples=3)(small_net, inputs)
    plain = GradCAMPlusPlus("features.3")(small_net, inputs)
    torch.testing.assert_close(smooth, plain, rtol=1e-5, atol=1e-6)


def test_smooth_gradcam_plus_plus_moments_by_formula() -> None:
    """y = mean_ij(A^2) / 2 with A = x, so g = A / Z at the noisy input: D_p = mean_s ((x + e_s) / Z)^p."""
    from lit_xai.explainers.seeding import per_sample_normal

    class Square(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1, bias=False)
            nn.init.ones_(self.conv.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (self.conv(x) ** 2).flatten(1).mean(1, keepdim=True) / 2

    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])
    explainer = SmoothGradCAMPlusPlus("conv", upsample="none", samples=5, noise_level=0.2, seed=7)
    noise = per_sample_normal(x, 5, 7)[0, :, 0] * 0.2 * 5.0  # range of x = 5
    g = (x[0, 0] + noise) / 4
    d1, d2, d3 = g.mean(0), (g**2).mean(0), (g**3).mean(0)
    alpha = d2 / (2 * d2 + x.sum() * d3)
    expected = torch.relu((alpha * torch.relu(d1)).sum() * x[0, 0])
    torch.testing.assert_close(explainer(Square().eval(), x)[0], expected, rtol=1e-5, atol=1e-7)


def test_smooth_gradcam_plus_plus_is_seeded_per_sample(small_net: SmallNet) -> None:
    inputs = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    small_net.eval()
    explainer = SmoothGradCAMPlusPlus("features.3", samples=4, internal_batch_size=3)
    state = torch.get_rng_state()
    together = explainer(small_net, inputs)
    assert torch.equal(torch.get_rng_state(), state)
    alone = torch.cat([explainer(small_net, inputs[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone)
    other = SmoothGradCAMPlusPlus("features.3", samples=4, seed=1)(small_net, inputs)
    assert (other - together).abs().max() > 1e-4
    with pytest.raises(ValueError, match="samples must be a positive int"):
        SmoothGradCAMPlusPlus(samples=0)


def test_constant_channels_get_an_empty_mask() -> None:
    from lit_xai.explainers.cam.scoring import normalised_masks

    channels = torch.stack([torch.full((3, 3), 3.7), torch.zeros(3, 3), torch.tensor([[0.0, 1.0, 2.0]] * 3)])
    masks = normalised_masks(channels, (7, 7))
    assert masks[0].abs().max() == 0 and masks[1].abs().max() == 0  # round-off must not become a [0, 1] mask
    assert masks[2].min() == 0 and masks[2].max() == pytest.approx(1.0)
