"""The CAMs that pytorch-grad-cam and torchcam have beyond the common family, against those libraries.

pytorch-grad-cam: our raw map at layer resolution goes through its own post-processing (ReLU, min-max
scaling, cv2 resize, layer aggregation) as in test_cam_parity_gradcam_lib. torchcam: its maps are taken
unnormalised (`normalized=False`) and compared with ours directly. Models: torchvision resnet18 and
vgg11 with random weights (vgg11 with the small head of test_cam_parity_gradcam_lib), two target layers
each, small inputs.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import pytorch_grad_cam as ref
import torch
from pytorch_grad_cam import eigen_cam, eigen_grad_cam, kpca_cam
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST, ClassifierOutputTarget
from torch import nn
from torchcam import methods as torchcam
from torchvision.models.vgg import cfgs, make_layers

import lit_xai.explainers as ours
from lit_xai.explainers.cam.score_cam_variants import integration_coefficients, mask_noise
from lit_xai.explainers.seeding import sample_seed
from tests.explainers.cam.test_cam_parity_gradcam_lib import make_resnet as build_resnet
from tests.explainers.cam.test_cam_parity_gradcam_lib import postprocess, series_pair


class VGG11(nn.Module):
    """torchvision's vgg11 features (same module names, same initialisation) with a small head: one linear
    layer on the 7 x 7 pooled features, or global average pooling + linear (`gap`, the CAM paper's
    VGGnet-GAP). Built directly, since vgg11's constructor first initialises a 25088 x 4096 classifier."""

    def __init__(self, gap: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = make_layers(cfgs["A"])
        self.avgpool = nn.AdaptiveAvgPool2d(1 if gap else 7)
        self.classifier = nn.Linear(512 if gap else 512 * 7 * 7, 10)
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# Built once for the module: explainers leave a model untouched, pytorch-grad-cam runs on copies,
# torchcam removes its hooks.
make_resnet = functools.cache(build_resnet)
make_vgg = functools.cache(lambda: VGG11().eval())
vgg_gap = functools.cache(lambda: VGG11(gap=True).eval())

TARGETS = [3, 7]
CASES = {  # 32 x 32 inputs: resnet18 layer1 8x8, layer2 4x4; vgg11 features.9 8x8, features.14 4x4
    "resnet18-layer1": (make_resnet, "layer1"),
    "resnet18-layer2": (make_resnet, "layer2"),
    "vgg11-features.9": (make_vgg, "features.9"),
    "vgg11-features.14": (make_vgg, "features.14"),
}


def inputs_for(shape: tuple[int, ...] = (2, 3, 32, 32), seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def grad_cam_lib(method: str, model: nn.Module, layer: str, inputs: torch.Tensor, targets: list | None = None) -> np.ndarray:
    """pytorch-grad-cam on a copy (it fills parameter .grad)."""
    model = copy.deepcopy(model)
    cam = getattr(ref, method)(model=model, target_layers=[model.get_submodule(layer)])
    targets = [ClassifierOutputTarget(t) for t in TARGETS] if targets is None else targets
    return cam(input_tensor=inputs, targets=targets)


def oriented(projection):  # type: ignore[no-untyped-def]
    """pytorch-grad-cam's `get_2d_projection`, its sign set by our documented rule: the projection must
    correlate non-negatively with the centred channel sum (LAPACK's sign is arbitrary)."""

    def project(batch: np.ndarray) -> np.ndarray:
        result = projection(batch)
        points = batch.reshape(batch.shape[0], batch.shape[1], -1)
        total = (points - points.mean(axis=2, keepdims=True)).sum(axis=1)
        flips = np.where((result.reshape(len(result), -1) * total).sum(axis=1) < 0, -1.0, 1.0)
        return np.float32(result * flips.reshape((-1,) + (1,) * (result.ndim - 1)))

    return project


@pytest.fixture
def oriented_eigen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eigen_cam, "get_2d_projection", oriented(eigen_cam.get_2d_projection))
    monkeypatch.setattr(eigen_grad_cam, "get_2d_projection", oriented(eigen_grad_cam.get_2d_projection))


@pytest.fixture
def kpca_in_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytorch-grad-cam runs scikit-learn's KernelPCA on float32 activations; its round-off reaches 6e-4
    (on [0, 1] maps) for vgg11's features.14 (512 channels, 16 positions). The reference here is the same
    computation in float64, as ours; test_kpca_float32_reference_is_close checks the float32 one to 1e-3."""
    project = kpca_cam.get_2d_projection_kernel
    monkeypatch.setattr(kpca_cam, "get_2d_projection_kernel", lambda batch, *args: project(np.float64(batch), *args))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["GradCAMElementWise", "KPCA_CAM", "FEM", "ShapleyCAM", "EigenCAM", "EigenGradCAM"])
def test_matches_pytorch_grad_cam(case: str, method: str, oriented_eigen: None, kpca_in_float64: None) -> None:
    build, layer = CASES[case]
    model, inputs = build(), inputs_for()
    raw = getattr(ours, method)(target_layer=layer, upsample="none")(model, inputs, torch.tensor(TARGETS))
    assert (raw.flatten(1).amax(1) > 0).all(), "a non-trivial map for every sample"
    expected = grad_cam_lib(method, model, layer, inputs)
    np.testing.assert_allclose(postprocess(raw, 32, 32), expected, atol=1e-4)


@pytest.mark.parametrize("kernel, gamma", [("rbf", None), ("poly", 0.01), ("linear", None), ("cosine", None), ("sigmoid", 0.05)])
def test_kpca_kernels_match_pytorch_grad_cam(kernel: str, gamma: float | None, kpca_in_float64: None) -> None:
    model, inputs = make_resnet(), inputs_for()
    raw = ours.KPCA_CAM("layer2", upsample="none", kernel=kernel, gamma=gamma)(model, inputs)
    lib_model = copy.deepcopy(model)
    cam = ref.KPCA_CAM(model=lib_model, target_layers=[lib_model.layer2], kernel=kernel, gamma=gamma)
    np.testing.assert_allclose(postprocess(raw, 32, 32), cam(input_tensor=inputs, targets=None), atol=1e-4)


def test_kpca_float32_reference_is_close() -> None:
    model, inputs = make_vgg(), inputs_for()
    raw = ours.KPCA_CAM("features.14", upsample="none")(model, inputs)
    np.testing.assert_allclose(postprocess(raw, 32, 32), grad_cam_lib("KPCA_CAM", model, "features.14", inputs), atol=1e-3)


@pytest.mark.parametrize("method", ["EigenCAM", "EigenGradCAM"])
def test_without_the_orientation_pytorch_grad_cam_gives_ours_or_its_negative(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """LAPACK's sign is arbitrary: per sample, pytorch-grad-cam's map is ours or the one of the negated projection."""
    model, inputs = make_vgg(), inputs_for()
    mine = postprocess(getattr(ours, method)("features.14", upsample="none")(model, inputs, torch.tensor(TARGETS)), 32, 32)
    plain = grad_cam_lib(method, model, "features.14", inputs)
    module = eigen_cam if method == "EigenCAM" else eigen_grad_cam
    monkeypatch.setattr(module, "get_2d_projection", lambda batch, project=module.get_2d_projection: -project(batch))
    negated = grad_cam_lib(method, model, "features.14", inputs)
    for sample in range(len(inputs)):
        assert min(np.abs(mine[sample] - plain[sample]).max(), np.abs(mine[sample] - negated[sample]).max()) < 1e-4


def test_shapley_cam_with_the_residual_softmax_target_matches_and_differs_from_gradcam() -> None:
    """score="rest" is pytorch-grad-cam's ClassifierOutputReST; its softmax makes the Hessian term non-zero
    (with the logit, Shapley-CAM equals Grad-CAM on these piecewise-linear networks)."""
    for build, layer in (CASES["resnet18-layer2"], CASES["vgg11-features.9"]):
        model, inputs = build(), inputs_for()
        raw = ours.ShapleyCAM(layer, upsample="none", score="rest")(model, inputs, torch.tensor(TARGETS))
        expected = grad_cam_lib("ShapleyCAM", model, layer, inputs, [ClassifierOutputReST(t) for t in TARGETS])
        np.testing.assert_allclose(postprocess(raw, 32, 32), expected, atol=1e-4)
        logit = ours.ShapleyCAM(layer, upsample="none")(model, inputs, torch.tensor(TARGETS))
        torch.testing.assert_close(logit, ours.GradCAM(layer, upsample="none")(model, inputs, torch.tensor(TARGETS)))
        assert (raw - logit).abs().max() > 1e-3 * logit.abs().max()


@pytest.mark.parametrize("case", CASES)
def test_finer_cam_matches_both_libraries(case: str) -> None:
    build, layer = CASES[case]
    model, inputs = build(), inputs_for()
    # pytorch-grad-cam (the authors' target): argmax class, 3 closest classes, softmax weights, alpha 1
    raw = ours.FinerCAM(layer, upsample="none")(model, inputs)
    lib_model = copy.deepcopy(model)
    expected = ref.FinerCAM(model=lib_model, target_layers=[lib_model.get_submodule(layer)])(input_tensor=inputs, targets=None)
    np.testing.assert_allclose(postprocess(raw, 32, 32), expected, atol=1e-4)
    # torchcam: per-sample targets, y_c - 0.6 mean of the 3 closest classes
    raw = ours.FinerCAM(layer, upsample="none", alpha=0.6, reference_weights="uniform")(model, inputs, torch.tensor(TARGETS))
    with torchcam.FinerCAM(model, layer, input_shape=(3, 32, 32)) as cam:
        expected = cam(class_idx=TARGETS, scores=model(inputs), normalized=False)[0]
    torch.testing.assert_close(raw, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))


def randomised_biases(model: nn.Module) -> nn.Module:
    """torchvision initialises conv biases and batch-norm shifts to 0; FullGrad's bias terms need them non-zero."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    return model


@pytest.mark.parametrize("build", [make_resnet, make_vgg], ids=["resnet18", "vgg11"])
def test_fullgrad_matches_pytorch_grad_cam(build) -> None:  # type: ignore[no-untyped-def]
    """FullGrad has no target layer: every conv / batch-norm bias of the model is used."""
    model, inputs = randomised_biases(copy.deepcopy(build())), inputs_for()
    saliency = ours.FullGrad()(model, inputs, torch.tensor(TARGETS))
    lib_model = copy.deepcopy(model)
    expected = ref.FullGrad(model=lib_model, target_layers=[])(input_tensor=inputs, targets=[ClassifierOutputTarget(t) for t in TARGETS])
    np.testing.assert_allclose(scale_cam_image(saliency.numpy()), expected, atol=1e-4)
    # 21 / 9 terms (input + 20 / 8 bias layers), each channel map scaled to [0, 1]: far above the input term alone
    assert saliency.amax() > 10


@pytest.mark.parametrize(
    "build, layer, fc_layer",
    [(make_resnet, "layer4", "fc"), (make_resnet, "layer4.1", None), (vgg_gap, "features", None), (vgg_gap, "features.20", "classifier")],
)
def test_cam_matches_torchcam(build, layer: str, fc_layer: str | None) -> None:  # type: ignore[no-untyped-def]
    """torchcam's CAM is the signed map; ours keeps the family's ReLU."""
    model, inputs = build(), inputs_for((2, 3, 64, 64))
    raw = ours.CAM(layer, upsample="none", fc_layer=fc_layer)(model, inputs, torch.tensor(TARGETS))
    with torchcam.CAM(model, layer, fc_layer=fc_layer, input_shape=(3, 64, 64)) as cam:
        with torch.no_grad():
            model(inputs)
        expected = cam(class_idx=TARGETS, normalized=False)[0]
    assert (expected < 0).any() and (raw > 0).any()
    torch.testing.assert_close(raw, torch.relu(expected), rtol=1e-5, atol=1e-6)
    # on such a head CAM is Grad-CAM times the number of positions (dy/dA = W / Z at every position)
    gradcam = ours.GradCAM(layer, upsample="none")(model, inputs, torch.tensor(TARGETS))
    torch.testing.assert_close(raw, gradcam * 4, rtol=1e-4, atol=1e-6)


def test_cam_refuses_a_model_without_a_gap_linear_head() -> None:
    with pytest.raises(ValueError, match=r"CAM needs the model's output to be W mean\(A\) \+ b.*use GradCAM"):
        ours.CAM("features.19")(make_vgg(), inputs_for((1, 3, 32, 32)))
    with pytest.raises(ValueError, match="'layer3'.*nn.Linear 'fc' is not such a head"):
        ours.CAM("layer3", fc_layer="fc")(make_resnet(), inputs_for((1, 3, 32, 32)))
    with pytest.raises(ValueError, match="fc_layer 'avgpool' is a AdaptiveAvgPool2d, not an nn.Linear"):
        ours.CAM("layer4", fc_layer="avgpool")(make_resnet(), inputs_for((1, 3, 32, 32)))


class FakeNoise:
    """Stands in for torchcam's `Normal(0, std)`: draw n returns our seeded noise of every (sample, n, channel)."""

    def __init__(self, inputs: torch.Tensor, channels: int, std: float) -> None:
        self.seeds, self.channels, self.std, self.draw = [sample_seed(x, 0) for x in inputs], channels, std, 0
        self.size = tuple(inputs.shape[2:])

    def sample(self, shape: torch.Size) -> torch.Tensor:
        noise = [torch.stack([mask_noise(s, self.draw, k, self.size, self.std) for k in range(self.channels)]) for s in self.seeds]
        self.draw += 1
        return torch.stack(noise).view(shape)


def torchcam_score_map(
    method: str, model: nn.Module, layer: str, inputs: torch.Tensor, samples: int, targets: list[int] = TARGETS
) -> torch.Tensor:
    with getattr(torchcam, method)(model, layer, num_samples=samples, batch_size=256, input_shape=tuple(inputs.shape[1:])) as cam:
        with torch.no_grad():
            scores = model(inputs)
        if method == "SSCAM":
            cam._distrib = FakeNoise(inputs, cam.hook_a[0].shape[1], cam.std)
        return cam(class_idx=targets, scores=scores, normalized=False)[0]


SCORE_CASES = {  # few channels and tiny inputs (vgg11 needs 32 x 32): batch x samples x K masked passes each
    "resnet18-layer1": (make_resnet, "layer1", (2, 3, 16, 16), 2),
    "resnet18-layer2": (make_resnet, "layer2", (2, 3, 16, 16), 2),
    "vgg11-features.1": (make_vgg, "features.1", (1, 3, 32, 32), 1),
    "vgg11-features.4": (make_vgg, "features.4", (1, 3, 32, 32), 1),
}


@pytest.mark.parametrize("case", SCORE_CASES)
@pytest.mark.parametrize("method", ["SSCAM", "ISCAM"])
def test_smoothed_and_integrated_score_cam_match_torchcam(case: str, method: str) -> None:
    build, layer, shape, samples = SCORE_CASES[case]
    model, inputs, targets = build(), inputs_for(shape), TARGETS[: shape[0]]
    raw = getattr(ours, method)(layer, upsample="none", samples=samples, internal_batch_size=256)(model, inputs, torch.tensor(targets))
    assert (raw.flatten(1).amax(1) > 0).all()
    expected = torchcam_score_map(method, model, layer, inputs, samples, targets)
    torch.testing.assert_close(raw, expected, rtol=1e-4, atol=1e-6)


def test_iscam_scales_are_torchcams_running_sum() -> None:
    torch.testing.assert_close(integration_coefficients(4), torch.tensor([0.25, 0.75, 1.5, 2.5], dtype=torch.float64))


@pytest.mark.parametrize(
    "method", ["SSCAM", "ISCAM", "FullGrad", "GradCAMElementWise", "EigenCAM", "EigenGradCAM", "KPCA_CAM", "FEM", "ShapleyCAM", "FinerCAM"]
)
def test_time_series_match_the_conv2d_twin(method: str, oriented_eigen: None, kpca_in_float64: None) -> None:
    """The references take 2-D maps: they run on the Conv2d twin (kernels (1, k), inputs (B, C, 1, T)) of
    our Conv1d model; the series maps must be the twin's single row."""
    one_d, two_d = series_pair()
    inputs = inputs_for((2, 3, 32), seed=3)
    targets = torch.tensor(TARGETS)
    if method in ("SSCAM", "ISCAM"):
        raw = getattr(ours, method)("features.6", upsample="none", samples=2)(one_d, inputs, targets)
        expected = torchcam_score_map(method, two_d, "features.6", inputs.unsqueeze(2), 2)
        torch.testing.assert_close(raw, expected.squeeze(1), rtol=1e-4, atol=1e-6)
    elif method == "FullGrad":
        raw = ours.FullGrad()(randomised_biases(one_d), inputs, targets)
        state = {k: v.unsqueeze(2) if v.ndim == 3 else v for k, v in one_d.state_dict().items()}
        two_d.load_state_dict(state)
        expected = ref.FullGrad(model=two_d, target_layers=[])(inputs.unsqueeze(2), [ClassifierOutputTarget(t) for t in TARGETS])
        np.testing.assert_allclose(scale_cam_image(raw.unsqueeze(1).numpy()), expected, atol=1e-4)
    elif method == "FinerCAM":
        raw = ours.FinerCAM("features.6", upsample="none")(one_d, inputs)
        expected = ref.FinerCAM(model=two_d, target_layers=[two_d.features[6]])(input_tensor=inputs.unsqueeze(2), targets=None)
        np.testing.assert_allclose(postprocess(raw.unsqueeze(1), 32, 1), expected, atol=1e-4)
    else:
        options = {"k": 1.0} if method == "FEM" else {}  # 16 positions: few activations pass 2 sigma
        raw = getattr(ours, method)("features.6", upsample="none", **options)(one_d, inputs, targets)
        if method == "FEM":
            lib_model = copy.deepcopy(two_d)
            cam = ref.FEM(model=lib_model, target_layers=[lib_model.features[6]], k=1.0)
            expected = cam(input_tensor=inputs.unsqueeze(2), targets=None)
        else:
            expected = grad_cam_lib(method, two_d, "features.6", inputs.unsqueeze(2))
        np.testing.assert_allclose(postprocess(raw.unsqueeze(1), 32, 1), expected, atol=1e-4)
    assert raw.shape == ((2, 32) if method == "FullGrad" else (2, 16)) and (raw.amax(1) > 0).all()
