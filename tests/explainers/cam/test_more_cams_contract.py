"""The CAMs of issue 13 keep the explainer contract (DESIGN.md): per-sample targets, batch independence,
Conv1d models, one-output regressors (or a clear refusal), any caller mode, the model left untouched."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import lit_xai.explainers as ex
from tests.conftest import SmallNet
from tests.explainers.test_explainer_contract import SeriesNet, assert_same_snapshot, snapshot

FACTORIES: dict[str, Callable[[], ex.Explainer]] = {
    "CAM": lambda: ex.CAM("features"),
    "EigenCAM": lambda: ex.EigenCAM(),
    "EigenGradCAM": lambda: ex.EigenGradCAM(),
    "GradCAMElementWise": lambda: ex.GradCAMElementWise(),
    "FullGrad": lambda: ex.FullGrad(),
    "FEM": lambda: ex.FEM(k=1.0),
    "FinerCAM": lambda: ex.FinerCAM(references=2),
    "KPCA_CAM": lambda: ex.KPCA_CAM(),
    "ShapleyCAM": lambda: ex.ShapleyCAM(),
    "ShapleyCAM-rest": lambda: ex.ShapleyCAM(score="rest"),
    "SSCAM": lambda: ex.SSCAM(samples=2, internal_batch_size=5),
    "ISCAM": lambda: ex.ISCAM(samples=2, internal_batch_size=5),
}
CLASS_AGNOSTIC = {"EigenCAM", "FEM", "KPCA_CAM"}  # maps of the activations alone: the target does not matter
NO_REGRESSION = {"FinerCAM": "contrasts the target with other classes", "ShapleyCAM-rest": "needs a classifier"}


class GapSeriesNet(nn.Module):
    """Conv1d classifier (or regressor) with a global-average-pooling + linear head, for CAM."""

    def __init__(self, outputs: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(2, 6, 3, padding=1), nn.BatchNorm1d(6), nn.ReLU(), nn.Conv1d(6, 6, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(6, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=2))


def series_model(name: str, outputs: int) -> nn.Module:
    torch.manual_seed(0)
    return (GapSeriesNet if name == "CAM" else SeriesNet)(outputs).eval()


@pytest.mark.parametrize("name", FACTORIES)
def test_images_per_sample_targets_and_batch_independence(name: str, small_net: SmallNet) -> None:
    small_net.eval()
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2])
    maps = FACTORIES[name]()(small_net, inputs, targets)
    assert maps.shape == (3, 8, 8) and maps.dtype == torch.float32 and (maps >= 0).all() and (maps.flatten(1).amax(1) > 0).all()
    alone = torch.cat([FACTORIES[name]()(small_net, inputs[i : i + 1], targets[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(maps, alone, rtol=1e-4, atol=1e-6)
    other = FACTORIES[name]()(small_net, inputs, torch.tensor([1, 2, 0]))
    if name in CLASS_AGNOSTIC:
        torch.testing.assert_close(maps, other)
    else:
        assert not torch.allclose(maps, other), "the target must matter"


@pytest.mark.parametrize("name", FACTORIES)
def test_time_series_and_regression(name: str) -> None:
    inputs = torch.randn(2, 2, 16, generator=torch.Generator().manual_seed(1))
    maps = FACTORIES[name]()(series_model(name, 3), inputs, torch.tensor([0, 2]))
    assert maps.shape == (2, 16) and (maps >= 0).all() and (maps.amax(1) > 0).any()
    regressor = series_model(name, 1)
    if name in NO_REGRESSION:
        with pytest.raises(ValueError, match=NO_REGRESSION[name]):
            FACTORIES[name]()(regressor, inputs)
        return
    maps = FACTORIES[name]()(regressor, inputs)
    assert maps.shape == (2, 16) and torch.isfinite(maps).all() and (maps >= 0).all()


@pytest.mark.parametrize("name", FACTORIES)
def test_model_left_untouched_in_any_mode(name: str, small_net: SmallNet) -> None:
    small_net.train()
    for p in small_net.parameters():
        p.grad = torch.full_like(p, 0.5)
    small_net.head[3].bias.requires_grad_(False)
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    before = snapshot(small_net)
    rng = torch.get_rng_state()
    in_training = FACTORIES[name]()(small_net, inputs)
    assert torch.equal(torch.get_rng_state(), rng), "no draw from the global random state"
    assert_same_snapshot(before, snapshot(small_net))
    small_net.eval()
    expected = FACTORIES[name]()(small_net, inputs)
    torch.testing.assert_close(in_training, expected)
    with torch.inference_mode():
        torch.testing.assert_close(FACTORIES[name]()(small_net, inputs.clone()), expected)
    with torch.no_grad():
        torch.testing.assert_close(FACTORIES[name]()(small_net, inputs), expected)


def test_cam_on_series_is_gradcam_times_the_length_and_refuses_a_model_without_gap_head() -> None:
    inputs = torch.randn(2, 2, 16, generator=torch.Generator().manual_seed(1))
    for outputs, targets in ((3, torch.tensor([1, 2])), (1, None)):
        model = series_model("CAM", outputs)
        cam = ex.CAM("features", upsample="none")(model, inputs, targets)
        torch.testing.assert_close(cam, 16 * ex.GradCAM("features", upsample="none")(model, inputs, targets), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="CAM needs the model's output to be W mean"):
        ex.CAM("features")(series_model("SeriesNet", 3), inputs)


def test_finer_cam_without_contrast_is_its_rule(small_net: SmallNet) -> None:
    """alpha = 0 with uniform weights leaves y_c: Finer-CAM is then its weighting rule on the plain gradient."""
    small_net.eval()
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([0, 1, 2])
    plain = ex.FinerCAM(alpha=0.0, reference_weights="uniform")(small_net, inputs, targets)
    torch.testing.assert_close(plain, ex.GradCAM()(small_net, inputs, targets))
    layer = ex.FinerCAM(alpha=0.0, reference_weights="uniform", rule="layercam")(small_net, inputs, targets)
    torch.testing.assert_close(layer, ex.LayerCAM()(small_net, inputs, targets))


def test_fem_and_eigen_cam_by_hand() -> None:
    """One 1x1 conv layer copying a 1 x 5 series into 2 channels: A0 = x, A1 = -x + 1."""
    conv = nn.Conv1d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 1.0]))
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(10, 2)).eval()
    x = torch.tensor([[[0.0, 0.0, 0.0, 0.0, 10.0]]])
    # A0 = [0, 0, 0, 0, 10]: mean 2, std 4; A0 > 2 + 1 * 4 at 1 of 5 positions -> w0 = 0.2;
    # A1 = [1, 1, 1, 1, -9]: mean -1, std 4; A1 > 3 nowhere -> w1 = 0; map = 0.2 A0
    fem = ex.FEM("0", upsample="none", k=1.0)(model, x)[0]
    torch.testing.assert_close(fem, torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0]))
    # Eigen-CAM with A1 = 1 - x / 2 (so the loadings' sum is not 0):
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -0.5]).view(2, 1, 1))
    # A0 = x, A1 = 1 - x / 2: centred rows (-2, 1) x 4 and (8, -4); v = (2, -1)/sqrt(5), sum > 0;
    # projection = (-5/sqrt(5)) x 4 and 20/sqrt(5) -> ReLU keeps the last position, 4 sqrt(5)
    eigen = ex.EigenCAM("0", upsample="none")(model, x)[0]
    torch.testing.assert_close(eigen, torch.tensor([0.0, 0.0, 0.0, 0.0, 4 * 5**0.5]))


def test_cam_finds_the_layer_before_global_average_pooling(small_net: SmallNet) -> None:
    small_net.eval()
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ex.CAM()(small_net, inputs), ex.CAM("features")(small_net, inputs))
    series = series_model("CAM", 3)
    series_inputs = torch.randn(2, 2, 16, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ex.CAM()(series, series_inputs), ex.CAM("features")(series, series_inputs))


def test_shapley_cam_hessian_term_by_hand() -> None:
    """y = sum_ij A_ij^2 / 2 with A = x (a 1x1 identity conv): g = A and H = I, so g - H A / 2 = A / 2 and
    the Shapley-CAM weight is half of Grad-CAM's: map = ReLU(mean(A) / 2 * A)."""

    class Square(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1, bias=False)
            nn.init.ones_(self.conv.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (self.conv(x) ** 2).flatten(1).sum(1, keepdim=True) / 2

    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])
    expected = torch.relu(x[0, 0].mean() / 2 * x[0, 0])
    torch.testing.assert_close(ex.ShapleyCAM("conv", upsample="none")(Square().eval(), x)[0], expected)
    torch.testing.assert_close(ex.GradCAM("conv", upsample="none")(Square().eval(), x)[0], 2 * expected)


def test_sscam_without_noise_and_iscam_with_one_step_are_score_cam(hand_model: nn.Module) -> None:
    """At the layer's own resolution (no upsampling) torchcam's masks are Score-CAM's; with std 0 SS-CAM's
    draws are all the plain mask, and IS-CAM's single scale is c_1 = 1."""
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])
    score_cam = ex.ScoreCAM("conv1", upsample="none")(hand_model, x, 0)
    torch.testing.assert_close(ex.SSCAM("conv1", upsample="none", samples=3, std=0.0)(hand_model, x, 0), score_cam)
    torch.testing.assert_close(ex.ISCAM("conv1", upsample="none", samples=1)(hand_model, x, 0), score_cam)
