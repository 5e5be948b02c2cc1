"""Parity with pytorch-grad-cam (`grad-cam`): the same models, inputs and per-sample targets; our raw map
at layer resolution goes through the reference's own post-processing (ReLU, min-max scaling, cv2
resize, layer aggregation) before comparison."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_grad_cam as ref
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn
from torchvision.models import resnet18, vgg11

import lit_xai.explainers as ours

GRADIENT_METHODS = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM"]
OPTIONS = {"GradCAMPlusPlus": {"eps": 1e-6}}  # pytorch-grad-cam's eps (ours defaults to 1e-12)
TARGETS = [3, 7]


def make_resnet() -> nn.Module:
    torch.manual_seed(0)
    return resnet18(num_classes=10).eval()


def make_vgg() -> nn.Module:
    """vgg11's convolutional features with a small head (the 25088 x 4096 classifier is replaced by one
    linear layer so that the hundreds of score/ablation passes stay fast); the head still maps the 7x7
    pooled features, so gradients vary over positions."""
    torch.manual_seed(0)
    model = vgg11(num_classes=10)
    model.classifier = nn.Linear(512 * 7 * 7, 10)
    return model.eval()


class Series(nn.Module):
    """A Conv1d classifier for (B, 3, 32) series, or its Conv2d twin for (B, 3, 1, 32) with kernel (1, k)."""

    def __init__(self, two_d: bool = False) -> None:
        super().__init__()
        conv = (lambda i, o: nn.Conv2d(i, o, (1, 3), padding=(0, 1))) if two_d else (lambda i, o: nn.Conv1d(i, o, 3, padding=1))
        self.features = nn.Sequential(
            conv(3, 8), nn.ReLU(), conv(8, 16), nn.ReLU(), nn.MaxPool2d((1, 2)) if two_d else nn.MaxPool1d(2), conv(16, 16), nn.ReLU()
        )
        self.pool = nn.AdaptiveAvgPool2d((1, 4)) if two_d else nn.AdaptiveAvgPool1d(4)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


def series_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    one_d, two_d = Series().eval(), Series(two_d=True).eval()
    state = {k: v.unsqueeze(2) if v.ndim == 3 else v for k, v in one_d.state_dict().items()}
    two_d.load_state_dict(state)
    return one_d, two_d


def reference_map(method: str, model: nn.Module, layer: str, inputs: torch.Tensor) -> np.ndarray:
    """pytorch-grad-cam on a copy (it fills parameter .grad and swaps layers for Ablation-CAM)."""
    model = copy.deepcopy(model)
    cam = getattr(ref, method)(model=model, target_layers=[model.get_submodule(layer)])
    if method == "ScoreCAM":
        cam.batch_size = 64
    return cam(input_tensor=inputs, targets=[ClassifierOutputTarget(t) for t in TARGETS])


def postprocess(raw: torch.Tensor, width: int, height: int) -> np.ndarray:
    """pytorch-grad-cam's own steps after the raw CAM: ReLU, scale + resize per layer, aggregate."""
    per_layer = scale_cam_image(np.maximum(raw.numpy(), 0), (width, height))[:, None]
    return scale_cam_image(np.maximum(per_layer, 0).mean(axis=1))


def our_map(method: str, model: nn.Module, layer: str, inputs: torch.Tensor) -> torch.Tensor:
    explainer = getattr(ours, method)(target_layer=layer, upsample="none", **OPTIONS.get(method, {}))
    return explainer(model, inputs, torch.tensor(TARGETS))


CASES = {
    "resnet18-layer4": (make_resnet, "layer4", (2, 3, 64, 64)),
    "vgg11-features.19": (make_vgg, "features.19", (2, 3, 64, 64)),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_cams_match_pytorch_grad_cam(case: str, method: str) -> None:
    build, layer, shape = CASES[case]
    model = build()
    inputs = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    raw = our_map(method, model, layer, inputs)
    assert (raw.flatten(1).amax(1) > 0).all(), "a non-trivial map for every sample"
    expected = reference_map(method, model, layer, inputs)
    np.testing.assert_allclose(postprocess(raw, shape[3], shape[2]), expected, atol=1e-4)


SCORE_CASES = {
    "resnet18-layer3": (make_resnet, "layer3", (2, 3, 32, 32)),
    "vgg11-features.9": (make_vgg, "features.9", (2, 3, 32, 32)),
}


@pytest.mark.parametrize("case", SCORE_CASES)
@pytest.mark.parametrize("method", ["ScoreCAM", "AblationCAM"])
def test_score_and_ablation_cam_match_pytorch_grad_cam(case: str, method: str) -> None:
    build, layer, shape = SCORE_CASES[case]
    model = build()
    inputs = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    raw = our_map(method, model, layer, inputs)
    assert (raw.flatten(1).amax(1) > 0).all()
    expected = reference_map(method, model, layer, inputs)
    np.testing.assert_allclose(postprocess(raw, shape[3], shape[2]), expected, atol=1e-4)


@pytest.mark.parametrize("method", GRADIENT_METHODS + ["ScoreCAM", "AblationCAM"])
def test_time_series_match_pytorch_grad_cam_on_the_conv2d_twin(method: str) -> None:
    """pytorch-grad-cam takes only 2-D maps: it runs on the Conv2d twin (kernels (1, k), inputs (B, C, 1, T))
    of our Conv1d model; the series maps must be the twin's single row."""
    one_d, two_d = series_pair()
    inputs = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(3))
    raw = our_map(method, one_d, "features.6", inputs)
    assert raw.shape == (2, 16) and (raw.amax(1) > 0).all()
    expected = reference_map(method, two_d, "features.6", inputs.unsqueeze(2))
    np.testing.assert_allclose(postprocess(raw.unsqueeze(1), 32, 1), expected, atol=1e-4)
