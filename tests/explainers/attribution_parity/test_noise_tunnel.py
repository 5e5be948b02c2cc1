"""NoiseTunnel around lit-xai explainers: captum's NoiseTunnel fed the same noise, forward_args, seeding."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lit_xai.explainers import IntegratedGradients, Saliency
from lit_xai.explainers.input_space.deeplift import DeepLift
from lit_xai.explainers.input_space.noise_tunnel import NoiseTunnel
from tests.explainers.attribution_parity.models import residual_net, series_net

captum_attr = pytest.importorskip("captum.attr")


def images(n: int = 3, seed: int = 1) -> Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def series(n: int = 3, seed: int = 2) -> Tensor:
    return torch.randn(n, 3, 12, generator=torch.Generator().manual_seed(seed))


def captum_with_noise(reference, tunnel: NoiseTunnel, inputs: Tensor, targets: Tensor, monkeypatch, **kwargs) -> Tensor:  # type: ignore[no-untyped-def]
    batch, samples = inputs.shape[0], tunnel.samples
    sample, draw = torch.arange(batch).repeat_interleave(samples), torch.arange(samples).repeat(batch)
    noise = tunnel.noise(inputs, sample, draw)  # rows in captum's repeat_interleave order
    monkeypatch.setattr(torch, "normal", lambda mean, std: noise)
    try:
        result = captum_attr.NoiseTunnel(reference).attribute(
            inputs, nt_type=tunnel.mode, nt_samples=samples, stdevs=1.0, target=targets, **kwargs
        )
    finally:
        monkeypatch.undo()
    return result.detach()


@pytest.mark.parametrize("mode", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize(("make_model", "make_inputs", "targets"), [(residual_net, images, torch.tensor([0, 3, 1])), (series_net, series, torch.tensor([2, 0, 1]))])
def test_noise_tunnel_of_saliency_matches_captum(make_model, make_inputs, targets, mode, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, inputs = make_model(), make_inputs()
    tunnel = NoiseTunnel(Saliency(abs=False, reduce="none"), samples=5, noise_std=0.2, mode=mode, internal_batch_size=4)
    ours = tunnel(model, inputs, targets)
    reference = captum_with_noise(captum_attr.Saliency(model), tunnel, inputs, targets, monkeypatch, abs=False)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_noise_tunnel_of_deeplift_and_integrated_gradients_match_captum(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, inputs, targets = residual_net(), images(), torch.tensor([1, 2, 0])
    tunnel = NoiseTunnel(DeepLift(reduce="none"), samples=3, noise_std=0.1, mode="vargrad")
    reference = captum_with_noise(captum_attr.DeepLift(model), tunnel, inputs, targets, monkeypatch, baselines=0.0)
    torch.testing.assert_close(tunnel(model, inputs, targets), reference, atol=1e-5, rtol=1e-5)
    tunnel = NoiseTunnel(IntegratedGradients(steps=8, method="gausslegendre", reduce="none"), samples=3, noise_std=0.1)
    reference = captum_with_noise(captum_attr.IntegratedGradients(model), tunnel, inputs, targets, monkeypatch, n_steps=8)
    torch.testing.assert_close(tunnel(model, inputs, targets), reference, atol=1e-5, rtol=1e-5)


class WithOffsets(nn.Module):
    """model(x, offset): a per-sample extra input added to the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = residual_net()

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        return self.net(x) + offset


def test_noise_tunnel_passes_forward_args_per_sample_and_seeds_per_sample() -> None:
    model, inputs = WithOffsets().eval(), images()
    offsets = torch.tensor([[0.0, 0, 0, 9], [9.0, 0, 0, 0], [0.0, 9, 0, 0]])  # changes the argmax target
    tunnel = NoiseTunnel(Saliency(reduce="sum"), samples=4, noise_std=0.1, internal_batch_size=3)
    ours = tunnel(model, inputs, None, offsets)
    plain = NoiseTunnel(Saliency(reduce="sum"), samples=4, noise_std=0.1)(model.net, inputs, torch.tensor([3, 0, 1]))
    torch.testing.assert_close(ours, plain)
    alone = NoiseTunnel(Saliency(reduce="sum"), samples=4, noise_std=0.1)(model.net, inputs[1:2], torch.tensor([0]))
    torch.testing.assert_close(alone, ours[1:2])
    with pytest.raises(ValueError, match="mode must be one of"):
        NoiseTunnel(Saliency(), mode="smooth")
    with pytest.raises(ValueError, match="explainer must be a lit_xai Explainer"):
        NoiseTunnel(lambda model, x, t: x)  # type: ignore[arg-type]
