"""CAM on a model whose head is not global average pooling + one linear layer: a clear error, not a reshape traceback."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import mobilenet_v3_small, resnet18

from lit_xai.explainers import CAM, GradCAM
from lit_xai.explainers.registry import default_explainers, has_gap_head


def test_cam_on_a_two_layer_mlp_head_says_what_it_needs_and_what_to_use() -> None:
    torch.manual_seed(0)
    model = mobilenet_v3_small(num_classes=10).eval()  # classifier: Linear(576, 1024), Hardswish, Dropout, Linear(1024, 10)
    inputs = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"CAM needs a head of global average pooling \+ one linear layer.*Use GradCAM") as raised:
        CAM()(model, inputs)
    assert "is invalid for input of size" not in str(raised.value)
    # naming the pooling's input layer: the head check names the linear layers it tried and what to use instead
    with pytest.raises(ValueError, match=r"W mean\(A\) \+ b.*'features'.*none of the model's nn.Linear layers.*use GradCAM"):
        CAM(target_layer="features")(model, inputs)
    with pytest.raises(ValueError, match=r"W mean\(A\) \+ b.*nn.Linear 'classifier.0' is not such a head"):
        CAM(target_layer="features", fc_layer="classifier.0")(model, inputs)
    # the callback's defaults leave CAM out for such a head; Grad-CAM explains the model
    assert not has_gap_head(model) and "cam" not in default_explainers(model)
    assert float(GradCAM(target_layer="features")(model, inputs).sum()) > 0


def test_cam_on_a_gap_linear_head_still_equals_gradcam_times_the_positions() -> None:
    torch.manual_seed(0)
    model = resnet18(num_classes=5).eval()
    inputs = torch.randn(2, 3, 64, 64)
    assert has_gap_head(model)
    cam = CAM(upsample="none")(model, inputs)  # the layer found: layer4 (2 x 2 positions)
    gradcam = GradCAM(target_layer="layer4", upsample="none")(model, inputs)
    torch.testing.assert_close(cam, gradcam * 4, rtol=1e-4, atol=1e-5)
