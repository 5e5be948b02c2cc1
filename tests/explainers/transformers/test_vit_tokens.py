"""Transformer layers explained like conv layers: token layouts recognised (or refused), parity with
pytorch-grad-cam's documented `reshape_transform` on torchvision ViTs, Swin stages, an explicit `reshape=`
and Expected Grad-CAM through tokens, and the ViT / Swin backbones of ImageClassifier."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_grad_cam as ref
import torch
from pytorch_grad_cam.ablation_layer import AblationLayerVit
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn
from torchvision.models import VisionTransformer
from torchvision.models.swin_transformer import SwinTransformer

import lit_xai.explainers as ours
from lit_xai.explainers.tokens import TokenView, spatial_view
from lit_xai.models import ImageClassifier
from tests.explainers.cam.test_cam_parity_gradcam_lib import postprocess

TARGETS = [3, 7]


def vit_reshape(height: int, width: int):
    """pytorch-grad-cam's documented reshape_transform for ViTs (tutorials/vit_example.py)."""

    def reshape_transform(tensor: torch.Tensor) -> torch.Tensor:
        result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    return reshape_transform


def swin_reshape(tensor: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's Swin reshape for torchvision's channels-last stages `(B, h, w, D)`."""
    return tensor.permute(0, 3, 1, 2)


class ZeroPatchChannels(AblationLayerVit):
    """pytorch-grad-cam's ViT ablation layer with the paper's ablation (channel k set to 0 at the patch
    tokens) instead of its `min - 1e7` over every token including the class token."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        output = self.activations
        for i in range(output.size(0)):
            output[i, 1:, self.indices[i]] = 0
        return output


def reference_map(method: str, model: nn.Module, layer: str, inputs: torch.Tensor, reshape, **options) -> np.ndarray:
    model = copy.deepcopy(model)
    cam = getattr(ref, method)(model=model, target_layers=[model.get_submodule(layer)], reshape_transform=reshape, **options)
    if method == "ScoreCAM":
        cam.batch_size = 64
    return cam(input_tensor=inputs, targets=[ClassifierOutputTarget(t) for t in TARGETS])


def our_map(method: str, model: nn.Module, layer: str, inputs: torch.Tensor, **options) -> torch.Tensor:
    return getattr(ours, method)(target_layer=layer, upsample="none", **options)(model, inputs, torch.tensor(TARGETS))


def small_vit(image_size: int = 32) -> nn.Module:
    """torchvision's VisionTransformer (vit_b_16's class) at a width that keeps the D score/ablation passes fast."""
    torch.manual_seed(0)
    model = VisionTransformer(image_size=image_size, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10)
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision zero-initialises the head
    return model.eval()


def test_gradient_cams_on_vit_b_16_match_pytorch_grad_cam() -> None:
    """torchvision's vit_b_16 (random weights, 64 px: a 4x4 patch grid), built by ImageClassifier."""
    torch.manual_seed(0)
    classifier = ImageClassifier(num_classes=10, input_shape=(3, 64, 64), backbone="vit_b_16")
    model, layer = classifier.net.eval(), "encoder.layers.encoder_layer_11.ln_1"
    assert classifier.default_target_layer == f"net.{layer}"
    inputs = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    copy_for_reference = copy.deepcopy(model)  # pytorch-grad-cam fills parameter .grad
    for method, options in (("GradCAM", {}), ("GradCAMPlusPlus", {"eps": 1e-6})):
        raw = our_map(method, model, layer, inputs, **options)
        assert raw.shape == (2, 4, 4) and (raw.flatten(1).amax(1) > 0).all()
        cam = getattr(ref, method)(
            model=copy_for_reference, target_layers=[copy_for_reference.get_submodule(layer)], reshape_transform=vit_reshape(4, 4)
        )
        expected = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(t) for t in TARGETS])
        np.testing.assert_allclose(postprocess(raw, 64, 64), expected, atol=1e-4)


@pytest.mark.parametrize("method", ["ScoreCAM", "AblationCAM"])
def test_score_and_ablation_cam_on_a_torchvision_vit_match_pytorch_grad_cam(method: str) -> None:
    model, layer = small_vit(), "encoder.layers.encoder_layer_1.ln_1"
    inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    raw = our_map(method, model, layer, inputs)
    assert raw.shape == (2, 4, 4) and (raw.flatten(1).amax(1) > 0).all()
    options = {"ablation_layer": ZeroPatchChannels()} if method == "AblationCAM" else {}
    expected = reference_map(method, model, layer, inputs, vit_reshape(4, 4), **options)
    np.testing.assert_allclose(postprocess(raw, 32, 32), expected, atol=1e-4)


def tiny_swin() -> nn.Module:
    torch.manual_seed(0)
    model = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=[4, 4], num_classes=10)
    return model.eval()


@pytest.mark.parametrize("method", ["GradCAM", "AblationCAM"])
def test_swin_stage_is_seen_channels_last_and_matches_pytorch_grad_cam(method: str) -> None:
    """A Swin stage outputs (B, h, w, D): before, Grad-CAM took h as the channels and returned a (B, w, D) map."""
    model, layer = tiny_swin(), "features.3"
    inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert model.features[3](model.features[2](model.features[1](model.features[0](inputs)))).shape == (2, 4, 4, 32)
    raw = our_map(method, model, layer, inputs)
    assert raw.shape == (2, 4, 4) and (raw.flatten(1).amax(1) > 0).all()
    options = {"ablation_layer": SwinZeroChannels()} if method == "AblationCAM" else {}
    expected = reference_map(method, model, layer, inputs, swin_reshape, **options)
    np.testing.assert_allclose(postprocess(raw, 32, 32), expected, atol=1e-4)


class SwinZeroChannels(AblationLayerVit):
    """pytorch-grad-cam's ablation of channel k (last axis of a channels-last stage) by zeroing."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        output = self.activations
        for i in range(output.size(0)):
            output[i, ..., self.indices[i]] = 0
        return output


def test_explicit_reshape_overrides_the_guess_and_matches_it_when_equal() -> None:
    model, layer = small_vit(), "encoder.layers.encoder_layer_1.ln_1"
    inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    for method in ("GradCAM", "AblationCAM"):
        guessed = our_map(method, model, layer, inputs)
        explicit = our_map(method, model, layer, inputs, reshape=vit_reshape(4, 4))
        torch.testing.assert_close(explicit, guessed, rtol=1e-5, atol=1e-6)
    # a reshape that reads the grid transposed gives the transposed Grad-CAM map
    transposed = our_map("GradCAM", model, layer, inputs, reshape=lambda t: vit_reshape(4, 4)(t).transpose(2, 3))
    torch.testing.assert_close(transposed, our_map("GradCAM", model, layer, inputs).transpose(1, 2), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="reshape must be None"):
        ours.GradCAM(reshape="tokens")
    with pytest.raises(ValueError, match="reshape must map"):
        our_map("GradCAM", model, layer, inputs, reshape=lambda t: t)


def test_expected_gradcam_through_tokens_equals_its_formula_on_the_patch_tokens() -> None:
    """w_k = mean_ij mean_s[(A(x) - A(x'))_kij dy/dA_kij(x' + a_s (x - x'))], a_s = s / M, A the patch tokens."""
    model, layer = small_vit(), "encoder.layers.encoder_layer_1.ln_1"
    inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    baseline = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    draws = 4
    explainer = ours.ExpectedGradCAM(target_layer=layer, upsample="none", baselines=baseline, draws=draws, alphas="linear")
    got = explainer(model, inputs, torch.tensor(TARGETS))

    reshape, captured = vit_reshape(4, 4), []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, a, out: captured.append(out))
    try:
        def tokens_and_grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            captured.clear()
            scores = model(x).gather(1, torch.tensor(TARGETS).view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(scores, captured[0])
            return reshape(captured[0].detach()), reshape(grad)

        activations, _ = tokens_and_grads(inputs)
        base_activations, _ = tokens_and_grads(baseline.expand_as(inputs))
        terms = torch.stack([tokens_and_grads(baseline + s / draws * (inputs - baseline))[1] for s in range(1, draws + 1)]).mean(0)
    finally:
        handle.remove()
    weights = ((activations - base_activations) * terms).mean(dim=(2, 3))
    expected = torch.relu((weights[:, :, None, None] * activations).sum(1))
    assert expected.amax() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


class Tokens(nn.Module):
    """Emits a fixed token count whatever the input: 7 tokens (or 6 and a class token) are no patch grid of a 32x32 image."""

    def __init__(self, tokens: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.embed = nn.Linear(3, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(x, (1, self.tokens)).flatten(2).transpose(1, 2)
        return self.head(self.embed(pooled).mean(1))


def test_layouts_are_recognised_and_unknown_ones_raise() -> None:
    images = (2, 3, 32, 48)
    assert spatial_view(torch.zeros(2, 16, 8, 12), images).kind == "channels_first"
    assert spatial_view(torch.zeros(2, 17, 25, 5), images).kind == "channels_first"  # unpadded convs
    view = spatial_view(torch.zeros(2, 4, 6, 96), images)
    assert (view.kind, view.grid) == ("channels_last", (4, 6))
    view = spatial_view(torch.zeros(2, 1 + 4 * 6, 64), images)
    assert (view.kind, view.prefix, view.grid) == ("tokens", 1, (4, 6))
    view = spatial_view(torch.zeros(2, 8 * 12, 64), images)
    assert (view.kind, view.prefix, view.grid) == ("tokens", 0, (8, 12))
    assert spatial_view(torch.zeros(2, 5, 9), (2, 3, 20)).kind == "channels_first"  # series
    # tokens <-> spatial round trip keeps the class token
    output = torch.randn(2, 25, 64)
    view = TokenView("tokens", prefix=1, grid=(4, 6))
    spatial = view.to_spatial(output)
    assert spatial.shape == (2, 64, 4, 6) and torch.equal(spatial[1, :, 2, 3], output[1, 1 + 2 * 6 + 3])
    assert torch.equal(view.to_output(spatial, output), output)
    with pytest.raises(ValueError, match="neither 6 .*nor 7 tokens form a patch grid of the 32x32 input"):
        spatial_view(torch.zeros(2, 7, 8), (2, 3, 32, 32), name="blocks.0")
    with pytest.raises(ValueError, match=r"which is not \(B, K, \*spatial\)"):
        spatial_view(torch.zeros(2, 8), images)
    with pytest.raises(ValueError, match="reshape="):
        ours.GradCAM(target_layer="embed")(Tokens(7), torch.randn(2, 3, 32, 32))


def test_imageclassifier_vit_and_swin_backbones() -> None:
    tiny = ImageClassifier(num_classes=6, input_shape=(3, 32, 32), backbone="vit_tiny", width=32)
    assert tiny.default_target_layer == "net.encoder.layers.encoder_layer_3.ln_1"
    assert tiny.net.patch_size == 4 and len(tiny.net.encoder.layers) == 4 and tiny(torch.randn(2, 3, 32, 32)).shape == (2, 6)
    grey = ImageClassifier(num_classes=3, input_shape=(1, 16, 16), backbone="vit_tiny")
    assert grey(torch.randn(1, 1, 16, 16)).shape == (1, 3)
    swin = ImageClassifier(num_classes=5, input_shape=(3, 64, 64), backbone="swin_t")
    assert swin.default_target_layer == "net.features.7" and swin(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    with pytest.raises(ValueError, match="multiple of 16"):
        ImageClassifier(num_classes=5, input_shape=(3, 40, 40), backbone="vit_b_16")
    with pytest.raises(ValueError, match="trained on 224x224"):
        ImageClassifier(num_classes=5, input_shape=(3, 64, 64), backbone="vit_b_16", weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="no pretrained weights"):
        ImageClassifier(num_classes=5, input_shape=(3, 32, 32), backbone="vit_tiny", weights="DEFAULT")
    # the default target layer works for every CAM: the map of the last block's patch tokens
    nn.init.normal_(tiny.net.heads.head.weight, std=0.5)
    cam = ours.GradCAM(upsample="none")(tiny.eval(), torch.randn(2, 3, 32, 32))
    assert cam.shape == (2, 8, 8) and (cam.flatten(1).amax(1) > 0).all()
