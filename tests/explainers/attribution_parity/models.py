"""Models of the captum-parity tests of issue 25 (used nowhere else): a CNN with BatchNorm, a residual sum,
max pooling and several activations (one module per use, as captum's hooks require), a 1-D series model,
and torchvision's ResNet-18 with a copy whose blocks call one ReLU module per use."""

from __future__ import annotations

import copy
import types

import torch
from torch import Tensor, nn
from torchvision.models import resnet18
from torchvision.models.resnet import BasicBlock


def randomise_batch_norms(model: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
    return model


class ResidualNet(nn.Module):
    """conv-BN-ReLU, a residual block (conv-BN-ELU-conv-BN, + identity), max pool, linear, tanh, linear."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.conv1, self.bn1, self.elu = nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ELU()
        self.conv2, self.bn2 = nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(6 * 4 * 4, 10), nn.Tanh(), nn.Linear(10, classes))

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        y = self.bn2(self.conv2(self.elu(self.bn1(self.conv1(x)))))
        return self.head(self.pool(y + x))


class SeriesNet(nn.Module):
    """(B, 3, 12) series: conv1d, sigmoid, conv1d, max pool, conv1d, leaky ReLU, global average, linear."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(3, 5, 3, padding=1), nn.Sigmoid(), nn.Conv1d(5, 5, 1), nn.MaxPool1d(2), nn.Conv1d(5, 4, 3), nn.LeakyReLU(0.1),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def residual_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomise_batch_norms(ResidualNet(), seed).eval()


def series_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return SeriesNet().eval()


def small_resnet(seed: int = 0, classes: int = 5) -> nn.Module:
    torch.manual_seed(seed)
    return randomise_batch_norms(resnet18(num_classes=classes), seed).eval()


def _block_forward(self: BasicBlock, x: Tensor) -> Tensor:
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu_a(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return self.relu_b(out + identity)


def one_relu_per_use(model: nn.Module) -> nn.Module:
    """A copy of a torchvision ResNet whose blocks call two distinct, out-of-place ReLU modules."""
    copied = copy.deepcopy(model)
    copied.relu = nn.ReLU()
    for module in copied.modules():
        if isinstance(module, BasicBlock):
            module.relu_a, module.relu_b = nn.ReLU(), nn.ReLU()
            module.forward = types.MethodType(_block_forward, module)
    return copied
