"""Attention methods on torchvision ViTs: captured attention equals torch's own, outputs unchanged; Attention
Rollout by hand; LeGrad equals torchcam 0.5's; HeadDecomposition's parts plus residual give the logit."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchcam.methods import LeGrad as TorchcamLeGrad
from torchvision.models import VisionTransformer

from lit_xai.explainers import AttentionRollout, GradCAM, HeadDecomposition, LeGrad
from lit_xai.explainers.transformers.head_decomposition import localisation_iou, median_filter
from lit_xai.explainers.transformers.vit import captured_attention, vit_parts

TARGETS = torch.tensor([3, 7])


def small_vit(layers: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=layers, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10)
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision zero-initialises the head
    for param in model.encoder.ln.parameters():  # a non-trivial final norm (gamma, beta)
        nn.init.normal_(param, mean=0.5)
    return model.eval()


def inputs(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_captured_attention_is_torchs_own_and_leaves_outputs_unchanged() -> None:
    model, x = small_vit(), inputs()
    with torch.no_grad():  # (torch's fast attention path runs under no_grad: compare like with like)
        expected_outputs = model(x)
    attentions = vit_parts(model, "test").attentions
    seen = []
    handle = attentions[1].register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    try:
        with torch.no_grad(), captured_attention(attentions) as captured:
            outputs = model(x)
    finally:
        handle.remove()
    assert torch.equal(outputs, expected_outputs)
    # torch's own per-head weights for the same input (need_weights=True)
    _, weights = attentions[1](seen[0], seen[0], seen[0], need_weights=True, average_attn_weights=False)
    assert captured[1][0].shape == (2, 2, 17, 17)
    torch.testing.assert_close(captured[1][0], weights, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(captured[1][0].sum(-1), torch.ones(2, 2, 17))
    # the differentiable capture recomputes the attention output from A: same outputs up to round-off
    with captured_attention(attentions, differentiable=True) as captured:
        outputs = model(x)
    torch.testing.assert_close(outputs, expected_outputs, rtol=1e-5, atol=1e-5)
    assert all(found[0].requires_grad for found in captured)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_attention_rollout_of_one_block_by_hand() -> None:
    """One block, mean fusion, no discarding: rows of A + I sum to 2, so the map is A_mean[cls, patches] / 2;
    with max fusion the row is renormalised by its own sum plus 1."""
    model, x = small_vit(layers=1), inputs()
    with torch.no_grad(), captured_attention(vit_parts(model, "test").attentions) as captured:
        model(x)
    attention = captured[0][0]
    got = AttentionRollout(upsample="none")(model, x)
    torch.testing.assert_close(got, (attention.mean(1)[:, 0, 1:] / 2).view(2, 4, 4))
    fused = attention.amax(1)
    got = AttentionRollout(head_fusion="max", upsample="none")(model, x)
    torch.testing.assert_close(got, (fused[:, 0, 1:] / (fused[:, 0].sum(-1, keepdim=True) + 1)).view(2, 4, 4))


def test_attention_rollout_matches_a_direct_loop_with_discarding() -> None:
    model, x = small_vit(), inputs()
    with torch.no_grad(), captured_attention(vit_parts(model, "test").attentions) as captured:
        model(x)
    ratio, expected = 0.5, []
    for b in range(2):  # the reference loop, one sample at a time
        result = torch.eye(17)
        for (attention,) in captured:
            fused = attention[b].amin(0)
            flat = fused.flatten().clone()
            lowest = flat.topk(int(17 * 17 * ratio), largest=False).indices
            flat[lowest[lowest != 0]] = 0
            a = flat.view(17, 17) + torch.eye(17)
            result = (a / a.sum(-1, keepdim=True)) @ result
        expected.append(result[0, 1:].view(4, 4))
    got = AttentionRollout(head_fusion="min", discard_ratio=ratio, upsample="none")(model, x)
    torch.testing.assert_close(got, torch.stack(expected))
    assert AttentionRollout()(model, x).shape == (2, 32, 32)
    with pytest.raises(ValueError, match="head_fusion must be one of"):
        AttentionRollout(head_fusion="sum")
    with pytest.raises(ValueError, match="discard_ratio must be in"):
        AttentionRollout(discard_ratio=1.0)
    with pytest.raises(ValueError, match="torchvision \\(VisionTransformer\\), timm"):
        AttentionRollout()(nn.Sequential(nn.Conv2d(3, 2, 32), nn.Flatten()), x)


@pytest.mark.parametrize("layers", ["all", [-2, -1]])
def test_legrad_matches_torchcam(layers) -> None:
    model, x = small_vit(), inputs()
    ours = LeGrad(layers=layers, upsample="none")(model, x, TARGETS)
    blocks = list(model.encoder.layers)
    chosen = blocks if layers == "all" else blocks[-2:]
    with TorchcamLeGrad(model, chosen) as extractor:
        scores = model(x)
        reference = extractor(TARGETS.tolist(), scores, normalized=False)[0]
    assert ours.shape == (2, 4, 4) and ours.amax() > 0
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-7)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="out of range"):
        LeGrad(layers=[5])(model, x)
    with pytest.raises(ValueError, match="layers must be 'all'"):
        LeGrad(layers="last")


def test_head_decomposition_parts_and_residual_sum_to_the_logit() -> None:
    model, x = small_vit(), inputs()
    result = HeadDecomposition().contributions(model, x, TARGETS)
    assert result.parts.shape == (2, 3, 2, 17)
    logits = model(x).gather(1, TARGETS.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(result.logits, logits.detach())
    torch.testing.assert_close(result.parts.sum(dim=(1, 2, 3)) + result.residual, logits.detach(), rtol=0, atol=1e-4)
    # the map is the sum over layers and heads at the patch tokens
    cam = HeadDecomposition(upsample="none")(model, x, TARGETS)
    torch.testing.assert_close(cam, result.parts[..., 1:].sum(dim=(1, 2)).view(2, 4, 4))
    # object weights: one head only, median-filtered
    weights = torch.zeros(3, 2)
    weights[2, 1] = 1.0
    cam = HeadDecomposition(object_weights=weights, upsample="none")(model, x, TARGETS)
    torch.testing.assert_close(cam, median_filter(result.patch_maps()[:, 2, 1], 3))
    with pytest.raises(ValueError, match="object_weights has shape"):
        HeadDecomposition(object_weights=torch.ones(2, 2))(model, x, TARGETS)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        HeadDecomposition(object_weights=torch.full((3, 2), 2.0))


def test_median_filter_and_localisation_iou_by_hand() -> None:
    spike = torch.zeros(1, 5, 5)
    spike[0, 2, 2] = 9.0  # an isolated high-norm token disappears
    assert torch.equal(median_filter(spike, 3), torch.zeros(1, 5, 5))
    block = torch.zeros(1, 5, 5)
    block[0, 1:4, 1:4] = 1.0
    assert torch.equal(median_filter(block, 3)[0, 2, 2], torch.tensor(1.0))
    maps = torch.zeros(1, 2, 4, 4)
    maps[0, 0, :2, :2] = 1.0  # 4 px, inside the 8 px mask: IoU 4 / 8
    maps[0, 1] = -1.0  # no positive evidence: IoU 0
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, :2] = True
    assert localisation_iou(maps, masks).tolist() == [[0.5, 0.0]]


def test_attention_methods_leave_a_training_model_as_they_found_it() -> None:
    model, x = small_vit(), inputs()
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    for explainer in (AttentionRollout(), LeGrad(), HeadDecomposition(), GradCAM()):
        with torch.inference_mode():
            saliency = explainer(model, x, TARGETS)
        assert saliency.shape == (2, 32, 32) and torch.isfinite(saliency).all()
        assert model.training and [p.requires_grad for p in model.parameters()] == flags
        assert all(p.grad is None for p in model.parameters())
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
