"""RandomSaliency: reproducible per sample, independent of batching, chance-level statistics."""

from __future__ import annotations

import pytest
import torch

from lit_xai.explainers import RandomSaliency
from tests.conftest import SmallNet


def test_maps_depend_only_on_seed_and_sample(small_net: SmallNet) -> None:
    inputs = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    explainer = RandomSaliency(seed=3)
    state = torch.get_rng_state()
    whole = explainer(small_net, inputs)
    assert torch.equal(torch.get_rng_state(), state), "the global random state must not be consumed"
    halves = torch.cat([explainer(small_net, inputs[3:]), explainer(small_net, inputs[:3])])
    torch.testing.assert_close(halves, torch.cat([whole[3:], whole[:3]]), rtol=0, atol=0)
    assert not torch.equal(RandomSaliency(seed=4)(small_net, inputs), whole)
    assert not torch.equal(whole[0], whole[1])


def test_uniform_statistics(small_net: SmallNet) -> None:
    maps = RandomSaliency()(small_net, torch.randn(64, 1, 32, 32))
    assert maps.shape == (64, 32, 32) and maps.dtype == torch.float32
    assert 0 <= maps.min().item() and maps.max().item() < 1
    assert maps.mean().item() == pytest.approx(0.5, abs=0.01)
    assert maps.var().item() == pytest.approx(1 / 12, abs=0.005)
    assert RandomSaliency()(small_net, torch.randn(2, 4, 50)).shape == (2, 50)
