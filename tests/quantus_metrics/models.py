"""Two small one-channel models unlike the other tests' (a max-pooling ELU convnet and a softplus MLP
blind to the last image row), 6 x 6 inputs and maps, for parity with quantus 0.6."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


def pooling_convnet() -> nn.Module:
    torch.manual_seed(11)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ELU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 4))
    with torch.no_grad():
        model[-1].weight.mul_(4)
    return model.eval()


def blind_mlp() -> nn.Module:
    """Its first layer ignores the last row (6 positions): the model is insensitive there."""
    torch.manual_seed(12)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.Softplus(), nn.Linear(8, 3))
    with torch.no_grad():
        model[1].weight[:, 30:] = 0
        model[-1].weight.mul_(3)
    return model.eval()


MODELS = {"pooling_convnet": pooling_convnet, "blind_mlp": blind_mlp}


def batch(seed: int, size: int = 4) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, 1, 6, 6, generator=generator), torch.randn(size, 6, 6, generator=generator)


def targets_of(model: nn.Module, inputs: Tensor) -> Tensor:
    with torch.no_grad():
        return model(inputs).argmax(dim=1)


def quantus_inputs(model: nn.Module, inputs: Tensor, saliency: Tensor) -> dict:
    return dict(
        model=model, x_batch=inputs.numpy(), y_batch=targets_of(model, inputs).numpy(),
        a_batch=saliency.unsqueeze(1).numpy(), device="cpu",
    )


def as_array(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)
