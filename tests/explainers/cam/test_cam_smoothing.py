"""`eigen_smooth=` and `augment=` on CAMs against pytorch-grad-cam's `eigen_smooth` and `aug_smooth`."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_grad_cam as ref
import torch
from pytorch_grad_cam import base_cam, grad_cam_elementwise, hirescam, layer_cam
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import lit_xai.explainers as ours
from tests.explainers.attribution_parity.models import residual_net
from tests.explainers.cam.test_cam_parity_more_methods import CASES, TARGETS, inputs_for, oriented
from tests.explainers.cam.test_cam_parity_gradcam_lib import postprocess

RULES = {  # ours (with pytorch-grad-cam's eps) -> pytorch-grad-cam's class
    "GradCAM": ({}, "GradCAM"),
    "GradCAMPlusPlus": ({"eps": 1e-6}, "GradCAMPlusPlus"),
    "XGradCAM": ({}, "XGradCAM"),
    "HiResCAM": ({}, "HiResCAM"),
    "LayerCAM": ({}, "LayerCAM"),
    "GradCAMElementWise": ({}, "GradCAMElementWise"),
}


@pytest.fixture
def oriented_projections(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (base_cam, hirescam, layer_cam, grad_cam_elementwise):
        monkeypatch.setattr(module, "get_2d_projection", oriented(module.get_2d_projection))


def library(method: str, model: nn.Module, layer: str, inputs: torch.Tensor, targets: list[int], **options) -> np.ndarray:  # type: ignore[no-untyped-def]
    model = copy.deepcopy(model)  # pytorch-grad-cam fills parameter .grad
    cam = getattr(ref, method)(model=model, target_layers=[model.get_submodule(layer)])
    return cam(input_tensor=inputs, targets=[ClassifierOutputTarget(t) for t in targets], **options)


@pytest.mark.parametrize("case", ["resnet18-layer2", "vgg11-features.14"])
@pytest.mark.parametrize("method", RULES)
def test_eigen_smooth_matches_pytorch_grad_cam(case: str, method: str, oriented_projections: None) -> None:
    build, layer = CASES[case]
    model, inputs = build(), inputs_for()
    options, name = RULES[method]
    raw = getattr(ours, method)(target_layer=layer, upsample="none", eigen_smooth=True, **options)(model, inputs, torch.tensor(TARGETS))
    assert (raw.flatten(1).amax(1) > 0).all()
    plain = getattr(ours, method)(target_layer=layer, upsample="none", **options)(model, inputs, torch.tensor(TARGETS))
    assert not torch.allclose(raw / raw.flatten(1).amax(1).view(-1, 1, 1), plain / plain.flatten(1).amax(1).view(-1, 1, 1), atol=1e-3)
    expected = library(name, model, layer, inputs, TARGETS, eigen_smooth=True)
    np.testing.assert_allclose(postprocess(raw, 32, 32), expected, atol=1e-4)


@pytest.mark.parametrize("method", ["GradCAM", "LayerCAM", "ScoreCAM", "XGradCAM"])
def test_augment_matches_pytorch_grad_cam_aug_smooth(method: str) -> None:
    """At a layer of the input's resolution (no resize on either side): each view's map is min-max
    normalised, flipped back, and the six views averaged, as pytorch-grad-cam with ttach does."""
    model = residual_net()
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    targets = [1, 0, 3]
    maps = getattr(ours, method)(target_layer="bn2", augment=True)(model, inputs, torch.tensor(targets))
    expected = library(method, model, "bn2", inputs, targets, aug_smooth=True)
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-5)
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1


def test_augment_and_eigen_smooth_together_and_errors(oriented_projections: None) -> None:
    model = residual_net()
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    maps = ours.HiResCAM(target_layer="bn2", augment=True, eigen_smooth=True)(model, inputs, torch.tensor([2, 1]))
    expected = library("HiResCAM", model, "bn2", inputs, [2, 1], aug_smooth=True, eigen_smooth=True)
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="eigen_smooth needs"):
        ours.EigenGradCAM(eigen_smooth=True)
    with pytest.raises(ValueError, match="no augment option"):
        ours.GuidedExpectedGradCAM(augment=True)
