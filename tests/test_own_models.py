"""The user's own model and data (issue 24): timm and Hugging Face models, segmentation regions, extra inputs,
multi-label, one-logit binary, multi-output regression, channels-last series and compiled models, all through
the one mechanism of `lit_xai.targets`; against pytorch-grad-cam and captum where they offer the case."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from lit_xai.explainers import GradCAM, IntegratedGradients, Saliency
from lit_xai.metrics import AverageDrop, Deletion, Insertion
from lit_xai.targets import RegionTarget, unwrap_outputs

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")
captum_attr = pytest.importorskip("captum.attr")


def pgc_map(model: nn.Module, layer: nn.Module, inputs: Tensor, targets: list, reshape=None) -> np.ndarray:
    from pytorch_grad_cam import GradCAM as PgcGradCAM

    with PgcGradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        return cam(input_tensor=inputs, targets=targets)


def assert_map_close(ours: Tensor, reference: np.ndarray) -> None:
    """pytorch-grad-cam min-max scales each map; ours is raw: compare after the same scaling, to 1e-4 of the max."""
    scaled = ours.numpy()
    scaled = scaled - scaled.reshape(len(scaled), -1).min(1)[:, None, None]
    scaled = scaled / np.maximum(scaled.reshape(len(scaled), -1).max(1)[:, None, None], 1e-7)
    assert np.abs(scaled - reference).max() < 1e-4


class Logits(nn.Module):
    """What a pytorch-grad-cam user writes for a Hugging Face / dict-output model: forward returns a tensor."""

    def __init__(self, model: nn.Module, key: str | None = None) -> None:
        super().__init__()
        self.model, self.key = model, key

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        return out[self.key] if self.key else out.logits


def tokens_to_grid(tokens: Tensor, size: int = 4) -> Tensor:
    return tokens[:, 1:, :].reshape(tokens.shape[0], size, size, -1).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def images() -> Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_outputs_are_unwrapped_by_the_documented_rule() -> None:
    logits = torch.arange(6.0).view(2, 3)
    hf = transformers.modeling_outputs.ImageClassifierOutput(logits=logits)
    assert unwrap_outputs(hf) is logits
    assert unwrap_outputs({"out": logits, "aux": logits + 1}) is logits
    assert unwrap_outputs((logits, logits + 1)) is logits
    assert torch.equal(unwrap_outputs({"x": logits}, output=lambda o: o["x"] * 2), logits * 2)
    with pytest.raises(TypeError, match="output="):
        unwrap_outputs({"x": logits})


def test_hugging_face_vit_gradcam_defaults_to_the_last_block_norm_and_equals_pytorch_grad_cam(images: Tensor) -> None:
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=5,
    )
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config).eval()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ours = GradCAM()(model, images, torch.tensor([0, 3, 4]))
    blocks = model.vit.layers if hasattr(model.vit, "layers") else model.vit.encoder.layer  # transformers 5 / 4
    layer = blocks[-1].layernorm_before
    reference = pgc_map(Logits(model), layer, images, [ClassifierOutputTarget(t) for t in (0, 3, 4)], tokens_to_grid)
    assert ours.shape == (3, 32, 32) and float(ours.max()) > 0
    assert_map_close(ours, reference)
    # the metrics read the same .logits
    insertion = Insertion(steps=4)
    insertion.update(model, images, ours)
    reference_insertion = Insertion(steps=4)
    reference_insertion.update(Logits(model), images, ours)
    assert float(insertion.compute()) == pytest.approx(float(reference_insertion.compute()), abs=1e-7)


def test_timm_vit_gradcam_defaults_to_blocks_norm1_and_equals_pytorch_grad_cam(images: Tensor) -> None:
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, num_classes=4).eval()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ours = GradCAM()(model, images, 1)
    reference = pgc_map(model, model.blocks[-1].norm1, images, [ClassifierOutputTarget(1)] * 3, tokens_to_grid)
    assert_map_close(ours, reference)


def test_timm_cnn_gradcam_equals_pytorch_grad_cam_and_an_all_zero_map_warns(images: Tensor) -> None:
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=4).eval()
    with pytest.warns(UserWarning, match="target layer 'layer4.1.conv2' returned an all-zero map"):  # timm zero-initialises each block's last BatchNorm
        zero = GradCAM()(model, images)
    assert float(zero.abs().sum()) == 0
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ours = GradCAM("layer3")(model, images, 2)
    assert_map_close(ours, pgc_map(model, model.layer3, images, [ClassifierOutputTarget(2)] * 3))


def test_segmentation_region_target_equals_pytorch_grad_cam_and_metrics_score_the_region() -> None:
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget
    from torchvision.models.segmentation import fcn_resnet50

    torch.manual_seed(0)
    model = fcn_resnet50(weights=None, weights_backbone=None, num_classes=3, aux_loss=False).eval()
    inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    masks = torch.zeros(2, 32, 32)
    masks[0, 4:20, 8:24] = 1
    masks[1, 10:30, 2:14] = 1
    target = RegionTarget(torch.tensor([1, 2]), masks)
    ours = GradCAM("backbone.layer3")(model, inputs, target)
    reference = pgc_map(
        Logits(model, "out"), model.backbone.layer3, inputs,
        [SemanticSegmentationTarget(1, masks[0].numpy()), SemanticSegmentationTarget(2, masks[1].numpy())],
    )
    assert_map_close(ours, reference)
    # the metrics score the region: softmax over the classes per pixel, summed over the mask
    with torch.no_grad():
        out = model(inputs)["out"]
    probabilities = out.softmax(dim=1)
    expected = torch.stack([(probabilities[i, c] * masks[i]).sum() for i, c in enumerate([1, 2])]).double()
    assert torch.allclose(target.probability(out, None).double(), expected)
    deletion = Deletion(steps=4)
    deletion.update(model, inputs, ours, target)
    curve = deletion.curve()
    assert float(curve[0]) == pytest.approx(float(expected.mean()), rel=1e-5)  # 0 % deleted: the region's probability


class ImageAndTable(nn.Module):
    """forward(x, meta): an image branch and a tabular branch (the user's two-input model)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.table = nn.Linear(2, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor, meta: Tensor) -> Tensor:
        a = torch.relu(self.conv(x))
        return self.head(a.mean(dim=(2, 3)) * torch.tanh(self.table(meta)))


class Bound(nn.Module):
    """The same model with one sample's extra input bound (what forward_args must equal)."""

    def __init__(self, model: nn.Module, meta: Tensor) -> None:
        super().__init__()
        self.model, self.meta = model, meta

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x, self.meta.expand(x.shape[0], -1))


def test_forward_args_match_captum_and_a_bound_model_for_every_chunk_size() -> None:
    torch.manual_seed(0)
    model = ImageAndTable().eval()
    inputs = torch.randn(3, 3, 8, 8)
    meta = torch.randn(3, 2)
    targets = torch.tensor([0, 2, 1])
    ours = IntegratedGradients(steps=8, reduce="none", internal_batch_size=5)(model, inputs, targets, meta)
    reference = captum_attr.IntegratedGradients(model).attribute(
        inputs, target=targets, additional_forward_args=(meta,), n_steps=8, method="riemann_right"
    )
    assert torch.allclose(ours, reference, atol=1e-5)
    saliency = Saliency(reduce="none")(model, inputs, targets, meta)
    assert torch.allclose(saliency, captum_attr.Saliency(model).attribute(inputs, target=targets, additional_forward_args=(meta,)), atol=1e-6)
    maps = saliency.abs().sum(1)
    bound = []
    for i in range(3):
        metric = Insertion(steps=6)
        metric.update(Bound(model, meta[i : i + 1]), inputs[i : i + 1], maps[i : i + 1], targets[i : i + 1])
        bound.append(float(metric.compute()))
    for chunk in (1, 2, 3, 7, None):
        metric = Insertion(steps=6, internal_batch_size=chunk)
        metric.update(model, inputs, maps, targets, meta)
        assert metric.last_values.tolist() == pytest.approx(bound, abs=1e-6)
    with pytest.raises(ValueError, match="forward_args\\[0\\].*first dimension"):
        Saliency()(model, inputs, targets, meta[:2])


def test_multi_label_sigmoid_scores_and_one_logit_binary_classifier() -> None:
    torch.manual_seed(0)
    logit = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1)).eval()
    inputs = torch.randn(4, 1, 6, 6)
    maps = torch.rand(4, 6, 6, generator=torch.Generator().manual_seed(2))

    class TwoClass(nn.Module):  # softmax([0, l]) = (1 - sigmoid(l), sigmoid(l))
        def forward(self, x: Tensor) -> Tensor:
            out = logit(x)
            return torch.cat([torch.zeros_like(out), out], dim=1)

    for target in (0, 1):
        ours, reference = Insertion(steps=5, score="sigmoid"), Insertion(steps=5)
        ours.update(logit, inputs, maps, target)
        reference.update(TwoClass(), inputs, maps, target)
        assert ours.last_values.tolist() == pytest.approx(reference.last_values.tolist(), abs=1e-6)  # float32 rounding
    # explainers: class 1 through the logit, class 0 through -logit
    negated = nn.Sequential(logit, nn.Linear(1, 1))
    with torch.no_grad():
        negated[1].weight.fill_(-1.0)
        negated[1].bias.zero_()
    positive = Saliency(abs=False, reduce="sum")(logit, inputs, 1, score="sigmoid")
    negative = Saliency(abs=False, reduce="sum")(logit, inputs, 0, score="sigmoid")
    assert torch.allclose(negative, -positive) and torch.allclose(negative, Saliency(abs=False, reduce="sum")(negated, inputs))
    with pytest.raises(ValueError, match="score='sigmoid'"):
        Saliency()(logit, inputs, 1)
    # multi-label: a K-logit model's Average Drop under sigmoid is the per-label sigmoid probability's
    multi = nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).eval()
    ad = AverageDrop(score="sigmoid")
    ad.update(multi, inputs, maps, torch.tensor([0, 1, 2, 1]))
    with torch.no_grad():
        y = torch.sigmoid(multi(inputs)).gather(1, torch.tensor([[0], [1], [2], [1]])).squeeze(1).double()
        scaled = maps - maps.flatten(1).min(1).values.view(-1, 1, 1)
        scaled = scaled / scaled.flatten(1).max(1).values.view(-1, 1, 1)
        o = torch.sigmoid(multi(inputs * scaled.unsqueeze(1))).gather(1, torch.tensor([[0], [1], [2], [1]])).squeeze(1).double()
    assert ad.last_values.tolist() == pytest.approx((torch.relu(y - o) / y).tolist(), abs=1e-9)


def test_multi_output_regressor_needs_explicit_output_indices() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    inputs = torch.randn(2, 3, 4)
    maps = torch.rand(2, 4)
    metric = Deletion(steps=4, score="raw")
    with pytest.raises(ValueError, match="multi-output regressor"):
        metric.update(model, inputs, maps)
    with pytest.raises(ValueError, match="multi-output regressor"):
        Saliency()(model, inputs, score="raw")
    metric.update(model, inputs, maps, 2)
    with torch.no_grad():
        assert float(metric.curve()[0]) == pytest.approx(float(model(inputs)[:, 2].mean()), rel=1e-6)  # raw, not a softmax
    ours = Saliency(abs=False)(model, inputs, 2, score="raw")
    only = nn.Sequential(model, nn.Flatten(0))
    assert torch.allclose(ours, Saliency(abs=False)(nn.Sequential(model, SelectColumn(2)), inputs)) and only is not None


class SelectColumn(nn.Module):
    def __init__(self, column: int) -> None:
        super().__init__()
        self.column = column

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.column]


class SeriesLSTM(nn.Module):
    """A channels-last series model `(B, T, C)` with an LSTM, as users write them."""

    def __init__(self, channels: int = 3, hidden: int = 5) -> None:
        super().__init__()
        self.lstm = nn.LSTM(channels, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def test_channels_last_series_maps_cover_time_and_an_lstm_layer_is_read_at_its_output() -> None:
    torch.manual_seed(0)
    model = SeriesLSTM().eval()
    inputs = torch.randn(2, 30, 3)
    attributions = Saliency(reduce="none")(model, inputs, channel_dim=-1)
    assert attributions.shape == (2, 30, 3)
    assert torch.allclose(attributions, captum_attr.Saliency(model).attribute(inputs), atol=1e-7)
    assert Saliency()(model, inputs, channel_dim=-1).shape == (2, 30)
    cam = GradCAM("lstm", upsample="none")(model, inputs, channel_dim=-1)
    # by hand: h (B, T, H) from the LSTM; w_h = mean_t dy/dh_{t,h}; map_t = ReLU(sum_h w_h h_{t,h})
    hidden = model.lstm(inputs)[0].detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.head(hidden[:, -1]).sum(), hidden)
    expected = torch.relu((grad.mean(dim=1, keepdim=True) * hidden).sum(dim=2)).detach()
    assert cam.shape == (2, 30) and torch.allclose(cam, expected, atol=1e-6)
    metric = Deletion(steps=5, channel_dim=-1)
    metric.update(model, inputs, cam)
    reference = Deletion(steps=5)
    reference.update(nn.Sequential(Transpose(), model), inputs.transpose(1, 2), cam)
    assert metric.last_values.tolist() == pytest.approx(reference.last_values.tolist(), abs=1e-9)


class Transpose(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(1, 2)


def test_compiled_models_are_explained_through_their_own_module(images: Tensor) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    compiled = torch.compile(model, backend="eager")
    with torch.no_grad():
        compiled(images)  # a no-grad call first: the compiled graph would run without the explainer's hooks
    plain = GradCAM("0")(model, images)
    assert torch.equal(GradCAM("0")(compiled, images), plain)
    assert torch.equal(GradCAM("_orig_mod.0")(compiled, images), plain)


def tiny_hf_vit(eager: bool = False) -> nn.Module:
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=5, **({"attn_implementation": "eager"} if eager else {}),
    )
    torch.manual_seed(0)
    return transformers.ViTForImageClassification(config).eval()


def tiny_timm_vit(**kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, num_classes=4, **kwargs).eval()


def test_attention_is_read_from_hugging_face_and_timm_vits_as_they_compute_it(images: Tensor) -> None:
    from lit_xai.explainers import AttentionRollout, LeGrad
    from lit_xai.explainers.registry import default_explainers
    from lit_xai.explainers.transformers.vit import attention_parts, captured_attention

    hf = tiny_hf_vit(eager=True)
    parts = attention_parts(hf, "test")
    with torch.no_grad(), captured_attention(parts.attentions) as captured:
        own = hf(images, output_attentions=True).attentions  # the eager implementation's probabilities
    for ours, reference in zip(captured, own):
        assert torch.allclose(ours[0], reference, atol=1e-6)
    model = tiny_timm_vit()
    own_timm: list[Tensor] = []
    for block in model.blocks:  # timm's unfused path materialises softmax(q k^T * scale) before attn_drop
        block.attn.fused_attn = False
        block.attn.attn_drop.register_forward_hook(lambda m, a, o: own_timm.append(o.detach()))
    parts = attention_parts(model, "test")
    with torch.no_grad(), captured_attention(parts.attentions) as captured:
        plain = model(images)
    for ours, reference in zip(captured, own_timm):
        assert torch.allclose(ours[0], reference, atol=1e-6)
    with captured_attention(parts.attentions, differentiable=True):
        assert torch.allclose(model(images), plain, atol=1e-5)  # recomputed outputs are the model's
    # rollout by hand from the model's own maps
    rollout = None
    for attention in own_timm[-len(model.blocks):]:
        fused = attention.mean(dim=1) + torch.eye(attention.shape[-1])
        fused = fused / fused.sum(dim=-1, keepdim=True)
        rollout = fused if rollout is None else fused @ rollout
    expected = rollout[:, 0, 1:].reshape(3, 4, 4)
    assert torch.allclose(AttentionRollout(upsample="none")(model, images), expected, atol=1e-6)
    for model in (hf, tiny_timm_vit()):
        maps = LeGrad(upsample="none")(model, images)
        assert maps.shape == (3, 4, 4) and bool((maps >= 0).all()) and float(maps.sum()) > 0
        assert {"attention_rollout", "legrad"} <= set(default_explainers(model))
        assert "head_decomposition" not in default_explainers(model)


def test_register_tokens_are_refused_by_layer_methods_with_a_message_naming_reshape(images: Tensor) -> None:
    model = tiny_timm_vit(reg_tokens=4, class_token=True)
    with pytest.raises(ValueError, match="reshape="):
        GradCAM()(model, images)
    grid = GradCAM(reshape=lambda tokens: tokens[:, 5:, :].reshape(tokens.shape[0], 4, 4, -1).permute(0, 3, 1, 2))(model, images)
    assert grid.shape == (3, 32, 32)
    from lit_xai.explainers import AttentionRollout

    assert AttentionRollout(upsample="none")(model, images).shape == (3, 4, 4)  # class + 4 register tokens dropped


def test_methods_that_run_crops_refuse_forward_args_with_a_message() -> None:
    from lit_xai.explainers import JitterCAM

    torch.manual_seed(0)
    model = ImageAndTable().eval()
    with pytest.raises(ValueError, match="does not support forward_args"):
        JitterCAM(base=GradCAM("conv"))(model, torch.randn(2, 3, 8, 8), 0, torch.randn(2, 2))


def test_a_one_pixel_region_target_equals_captums_tuple_target_on_a_dense_output() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 3, 3, padding=1)).eval()
    inputs = torch.randn(2, 3, 6, 6)
    masks = torch.zeros(2, 6, 6)
    masks[:, 2, 4] = 1  # output position (2, 4) of class 1: captum's target (1, 2, 4)
    ours = IntegratedGradients(steps=6, reduce="none")(model, inputs, RegionTarget(1, masks))
    reference = captum_attr.IntegratedGradients(model).attribute(inputs, target=(1, 2, 4), n_steps=6, method="riemann_right")
    assert torch.allclose(ours, reference, atol=1e-6)
    wrapped = {"out": model}  # the same through a dict output, read by rule

    class DictModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = wrapped["out"]

        def forward(self, x: Tensor) -> dict[str, Tensor]:
            return {"out": self.net(x), "aux": x}

    assert torch.allclose(IntegratedGradients(steps=6, reduce="none")(DictModel(), inputs, RegionTarget(1, masks)), ours)
