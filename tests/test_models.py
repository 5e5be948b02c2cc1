"""ImageClassifier over torchvision backbones: heads, default target layers, weights (offline), accuracies."""

from __future__ import annotations

import os
from urllib.error import URLError
from urllib.parse import urlparse

import lightning.pytorch as pl
import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_xai.explainers import GradCAM
from lit_xai.models import BACKBONES, ImageClassifier, WeightsUnavailableError, build_backbone, resolve_weights
from tests.dataset_fixtures import one_torch_thread  # noqa: F401  (autouse)

# backbone -> (default target layer, head path in net, head in_features, channels and side of the target
# layer's output for a 64x64 input)
FAMILIES = {
    "resnet18": ("net.layer4", "fc", 512, 512, 2),
    "resnet34": ("net.layer4", "fc", 512, 512, 2),
    "resnet50": ("net.layer4", "fc", 2048, 2048, 2),
    "vgg11": ("net.features.19", "classifier.6", 4096, 512, 4),
    "vgg16": ("net.features.29", "classifier.6", 4096, 512, 4),
    "densenet121": ("net.features", "classifier", 1024, 1024, 2),
    "mobilenet_v3_small": ("net.features.12", "classifier.3", 1024, 576, 2),
    "mobilenet_v3_large": ("net.features.16", "classifier.3", 1280, 960, 2),
    "efficientnet_b0": ("net.features.8", "classifier.1", 1280, 1280, 2),
    "convnext_tiny": ("net.features.7", "classifier.2", 768, 768, 2),
}


@pytest.mark.parametrize("backbone", list(FAMILIES))
def test_backbone_head_and_target_layer(backbone: str) -> None:
    """Every family: the head has 7 outputs and the default target layer is the last feature map. Built on
    the meta device (shapes without arithmetic), so the heavy networks cost nothing."""
    target, head_path, in_features, channels, side = FAMILIES[backbone]
    with torch.device("meta"):
        model = ImageClassifier(num_classes=7, input_shape=(3, 64, 64), backbone=backbone).eval()
    head = model.net.get_submodule(head_path)
    assert isinstance(head, nn.Linear) and (head.in_features, head.out_features) == (in_features, 7)
    assert model.default_target_layer == target
    layer = model.get_submodule(target)
    if backbone.startswith("vgg"):  # the ReLU right after the last convolution
        index = int(target.rsplit(".", 1)[1])
        assert isinstance(layer, nn.ReLU) and isinstance(model.net.features[index - 1], nn.Conv2d)
        assert not any(isinstance(m, nn.Conv2d) for m in list(model.net.features)[index:])
    seen: list[torch.Size] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    logits = model(torch.empty(1, 3, 64, 64, device="meta"))
    handle.remove()
    assert logits.shape == (1, 7)
    assert seen == [torch.Size([1, channels, side, side])]


@pytest.mark.parametrize("backbone", ["resnet18", "vgg11", "mobilenet_v3_small"])
def test_backbone_forward_and_gradcam_on_default_layer(backbone: str) -> None:
    """A real forward of 1x3x64x64 and Grad-CAM on the default target layer (what the callback uses)."""
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=7, input_shape=(3, 64, 64), backbone=backbone).eval()
    inputs = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits = model(inputs)
    assert logits.shape == (1, 7) and bool(torch.isfinite(logits).all())
    # Grad-CAM at the default layer equals ReLU(sum_k mean_ij(dy/dA_k) A_k) computed here with a hook
    layer = model.get_submodule(model.default_target_layer)
    captured: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda module, args, output: captured.__setitem__("A", output))
    with torch.enable_grad():
        logits = model(inputs.clone())
        activations = captured["A"]
        maps = []
        for target in range(7):
            (grad,) = torch.autograd.grad(logits[0, target], activations, retain_graph=True)
            maps.append(torch.relu((grad.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1)).detach())
    handle.remove()
    target = max(range(7), key=lambda c: float(maps[c].max()))
    assert float(maps[target].max()) > 0
    saliency = GradCAM(target_layer=model.default_target_layer, upsample="none")(model, inputs, torch.tensor([target]))
    assert saliency.shape == maps[target].shape and torch.allclose(saliency, maps[target], atol=1e-5)
    upsampled = GradCAM(target_layer=model.default_target_layer)(model, inputs, torch.tensor([target]))
    assert upsampled.shape == (1, 64, 64)


def test_vgg_bn_target_is_the_relu_after_batchnorm() -> None:
    with torch.device("meta"):
        net, target = build_backbone("vgg11_bn", (3, 32, 32), 7)
    # vgg11_bn features: ... conv 25, bn 26, relu 27, max-pool 28
    assert target == "features.27" and isinstance(net.features[25], nn.Conv2d) and isinstance(net.features[27], nn.ReLU)


def test_small_cnn_unchanged() -> None:
    model = ImageClassifier()
    assert model.default_target_layer == "net.block3" and model.net.head[-1].out_features == 10
    assert model.hparams.backbone == "small_cnn" and model.lr == 3e-3
    assert isinstance(model.configure_optimizers(), torch.optim.Adam)


def test_cifar_stem_keeps_resolution() -> None:
    model = ImageClassifier(num_classes=10, input_shape=(3, 32, 32), backbone="resnet18", cifar_stem=True)
    assert model.net.conv1.kernel_size == (3, 3) and model.net.conv1.stride == (1, 1) and isinstance(model.net.maxpool, nn.Identity)
    seen: list[torch.Size] = []
    model.net.layer4.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    model(torch.randn(1, 3, 32, 32))
    assert seen == [torch.Size([1, 512, 4, 4])]  # 1x1 without the CIFAR stem
    with pytest.raises(ValueError, match="ResNets only"):
        build_backbone("vgg11", (3, 32, 32), 10, cifar_stem=True)


def test_unknown_backbone_and_weights_and_inputs() -> None:
    with pytest.raises(ValueError) as info:
        ImageClassifier(backbone="resnet19", input_shape=(3, 32, 32))
    message = str(info.value)
    assert "unknown backbone 'resnet19'" in message
    assert all(name in message for name in ("small_cnn", "resnet18", "vgg16", "densenet121", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny"))
    assert set(BACKBONES) >= {"resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "mobilenet_v3_large"}
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET1K_V9' .*available: DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2"):
        resolve_weights("resnet50", "IMAGENET1K_V9")
    with pytest.raises(ValueError, match="unknown weights 'VGG16_Weights.IMAGENET1K_V1'"):
        resolve_weights("resnet50", "VGG16_Weights.IMAGENET1K_V1")
    assert resolve_weights("resnet50", "DEFAULT") is torchvision.models.ResNet50_Weights.IMAGENET1K_V2
    assert resolve_weights("resnet50", "ResNet50_Weights.IMAGENET1K_V1") is torchvision.models.ResNet50_Weights.IMAGENET1K_V1
    assert resolve_weights("resnet50", None) is None
    with pytest.raises(ValueError, match=r"RGB images, input_shape \(3, H, W\); got \(1, 8, 8\)"):
        ImageClassifier(backbone="resnet18", input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="optimizer must be"):
        ImageClassifier(optimizer="lamb")  # type: ignore[arg-type]


def refuse_download(url: str, dst: str, *args: object, **kwargs: object) -> None:
    raise URLError(f"no network in tests ({url})")


def test_missing_weights_offline_give_instructions(tmp_path: os.PathLike, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse_download)
    with pytest.raises(WeightsUnavailableError) as info:
        ImageClassifier(num_classes=7, input_shape=(3, 32, 32), backbone="resnet18", weights="DEFAULT")
    message = str(info.value)
    cache = os.path.join(str(tmp_path), "hub", "checkpoints")
    assert "ResNet18_Weights.IMAGENET1K_V1" in message and cache in message and "resnet18-f37072fd.pth" in message
    assert "torchvision.models.get_weight('ResNet18_Weights.IMAGENET1K_V1').get_state_dict(progress=True)" in message
    assert isinstance(info.value.__cause__, URLError)


def test_cached_weights_load_offline(tmp_path: os.PathLike, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights already in the hub cache load without the network; the pretrained head is kept for 1000
    classes and replaced for 7."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse_download)
    weights = torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    torch.manual_seed(1)
    reference = torchvision.models.mobilenet_v3_small()
    cache = os.path.join(str(tmp_path), "hub", "checkpoints")
    os.makedirs(cache)
    torch.save(reference.state_dict(), os.path.join(cache, os.path.basename(urlparse(weights.url).path)))

    full = ImageClassifier(num_classes=1000, input_shape=(3, 32, 32), backbone="mobilenet_v3_small", weights="IMAGENET1K_V1")
    for name, value in reference.state_dict().items():
        assert torch.equal(full.net.state_dict()[name], value), name
    seven = ImageClassifier(num_classes=7, input_shape=(3, 32, 32), backbone="mobilenet_v3_small", weights="MobileNet_V3_Small_Weights.IMAGENET1K_V1")
    assert seven.net.classifier[3].out_features == 7
    assert torch.equal(seven.net.features[0][0].weight, reference.features[0][0].weight)
    assert torch.equal(seven.net.classifier[0].weight, reference.classifier[0].weight)


@pytest.mark.parametrize("num_classes", [7, 4])
def test_top1_and_top5_logged(num_classes: int) -> None:
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=num_classes, input_shape=(3, 8, 8), backbone="small_cnn", width=4)
    inputs, labels = torch.randn(30, 3, 8, 8), torch.randint(0, num_classes, (30,))
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.test(model, DataLoader(TensorDataset(inputs, labels), batch_size=8), verbose=False)
    model.eval()
    with torch.no_grad():
        logits = model(inputs)
    top1 = (logits.argmax(1) == labels).float().mean().item()
    metrics = trainer.callback_metrics
    assert float(metrics["test/acc"]) == pytest.approx(top1)
    assert float(metrics["test/loss"]) == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    if num_classes >= 5:
        top5 = (logits.topk(5, dim=1).indices == labels[:, None]).any(1).float().mean().item()
        assert float(metrics["test/acc_top5"]) == pytest.approx(top5) and top5 > top1
    else:
        assert "test/acc_top5" not in metrics


def test_optimizer_options() -> None:
    sgd = ImageClassifier(optimizer="sgd", lr=0.2, momentum=0.8, weight_decay=1e-4).configure_optimizers()
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.2, 0.8, True, 1e-4)
    adamw = ImageClassifier(optimizer="adamw", lr=0.01, weight_decay=0.05).configure_optimizers()
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["weight_decay"] == 0.05
