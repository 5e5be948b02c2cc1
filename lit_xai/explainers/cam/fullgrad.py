"""FullGrad: the input-gradient plus the bias-gradients of every convolution and batch-norm layer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import Tensor, nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.upsample import upsample
from lit_xai.targets import model_outputs, resolved_scores

CONVS = (nn.Conv1d, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def implicit_bias(module: nn.Module) -> Tensor | None:
    """The bias a layer adds to each output channel in eval mode: a convolution's bias; a batch norm's
    beta - running_mean * gamma / sqrt(running_var + eps) (gamma = 1, beta = 0 without affine). None when
    the layer has none (a convolution without bias, a batch norm without running statistics)."""
    if isinstance(module, CONVS):
        return None if module.bias is None else module.bias.detach()
    if isinstance(module, NORMS) and module.running_mean is not None:
        scale = torch.rsqrt(module.running_var + module.eps)
        if module.weight is not None:
            scale = scale * module.weight.detach()
        shift = module.bias.detach() if module.bias is not None else torch.zeros_like(scale)
        return shift - module.running_mean * scale
    return None


@contextmanager
def recorded_bias_outputs(model: nn.Module) -> Iterator[list[tuple[Tensor, Tensor]]]:
    """Inside the block, `(bias, output)` of every call of a layer with an implicit bias. Each hook hands
    a clone downstream, so in-place activations after the layer leave the recorded output intact.
    Hooks are removed on exit."""
    recorded: list[tuple[Tensor, Tensor]] = []
    with ExitStack() as stack:
        for module in model.modules():
            bias = implicit_bias(module)
            if bias is None:
                continue

            def hook(module: nn.Module, args: object, output: Tensor, bias: Tensor = bias) -> Tensor:
                recorded.append((bias, output))
                return output.clone()

            stack.callback(module.register_forward_hook(hook).remove)
        yield recorded


def channel_normalised(maps: Tensor) -> Tensor:
    """Each `(b, c)` map of `(B, C, *s)` shifted to min 0 and divided by its max + 1e-7 (pytorch-grad-cam's scaling)."""
    flat = maps.flatten(2)
    flat = flat - flat.amin(dim=2, keepdim=True)
    return (flat / (flat.amax(dim=2, keepdim=True) + 1e-7)).view_as(maps)


class FullGrad(Explainer):
    """FullGrad (Srinivas & Fleuret, "Full-Gradient Representation for Neural Network Visualization",
    NeurIPS 2019): the input-gradient term plus, for every layer l with a bias b_l (convolutions, and batch
    norms with their eval-mode bias), the bias-gradient term of each channel c,

        S(x) = sum_channels psi(|x * dy^c/dx|) + sum_l sum_c up(psi(|b_lc * dy^c/dz_lc|))

    with z_l the layer's output, psi a min-max scaling of one channel's map (min 0, divided by max + 1e-7)
    and up the bilinear (linear for series) upsampling to the input, align_corners=False. This is the
    paper's per-channel psi as pytorch-grad-cam implements it; the authors' code scales all channels of a
    layer together and upsamples with align_corners=True. The sum is upsampled once per layer (upsampling
    is linear). Model-wide: no target layer. Output raw (not min-max normalised), >= 0.
    """

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        inputs.requires_grad_(True)
        with recorded_bias_outputs(model) as recorded:
            outputs = model_outputs(model, inputs)
        scores, targets = resolved_scores(outputs, targets)
        layer_outputs = [output for _, output in recorded]
        gradients = torch.autograd.grad(scores.sum(), [inputs, *layer_outputs], allow_unused=True)
        size = tuple(inputs.shape[2:])
        saliency = channel_normalised((inputs * gradients[0]).abs().detach()).sum(dim=1)
        for (bias, output), gradient in zip(recorded, gradients[1:]):
            if gradient is None or output.ndim != inputs.ndim:
                continue  # a layer off the path to the output, or one that is not (B, C, *spatial)
            shape = (1, -1) + (1,) * (gradient.ndim - 2)
            terms = channel_normalised((bias.view(shape) * gradient).abs()).sum(dim=1)
            saliency = saliency + upsample(terms, size, "bilinear")
        return saliency
