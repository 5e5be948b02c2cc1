"""The shared finite-value check and the per-sample seeds (one batch copied at once equals one by one)."""

from __future__ import annotations

import math

import pytest
import torch

from lit_xai.checks import all_finite
from lit_xai.explainers.seeding import sample_seed, sample_seeds


@pytest.mark.parametrize(
    ("values", "finite"),
    [
        (torch.ones(3, 4), True),
        (torch.tensor([1.0, math.nan]), False),
        (torch.tensor([1.0, -math.inf]), False),
        (torch.tensor([3e38, 3e38]), True),  # the sum overflows: each value is checked
        (torch.tensor([3e38, math.inf]), False),
        (torch.tensor([6e4, 6e4]).half(), True),
        (torch.tensor([1.0, math.nan]).bfloat16(), False),
        (torch.tensor([1, 2]), True),
        (torch.empty(0), True),
    ],
)
def test_all_finite(values: torch.Tensor, finite: bool) -> None:
    assert all_finite(values) is finite
    assert all_finite(torch.ones(2), values) is finite  # several tensors: one sum, the same answer
    assert all_finite(values, torch.arange(3)) is finite  # an integer tensor among them: each checked


def test_all_finite_of_several_tensors_with_opposite_infinities() -> None:
    assert not all_finite(torch.tensor([math.inf]), torch.tensor([-math.inf]))  # the joint sum is NaN


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_sample_seeds_equal_each_samples_seed(dtype: torch.dtype) -> None:
    inputs = torch.randn(4, 3, 5, 6, generator=torch.Generator().manual_seed(0)).to(dtype)
    inputs[2] = inputs[0]
    views = {"contiguous": inputs, "channels_last": inputs.to(memory_format=torch.channels_last), "strided": inputs.transpose(2, 3).contiguous().transpose(2, 3)}
    for name, batch in views.items():
        seeds = sample_seeds(batch, 7)
        assert seeds == [sample_seed(x, 7) for x in batch], name
        assert seeds[0] == seeds[2] and len(set(seeds)) == 3 and all(0 <= s < 2**63 for s in seeds)
    assert sample_seeds(inputs, 8) != sample_seeds(inputs, 7)


@pytest.mark.parametrize("normal", [False, True])
def test_pair_draws_equal_one_generator_per_row(normal: bool) -> None:
    from lit_xai.explainers.seeding import pair_draws, pair_generator

    seeds, draws = [5, 2**62 + 1, 5], [0, 3, 7]
    fill = torch.randn if normal else torch.rand
    for shape in [(1, 6, 6), (3,), (14, 30)]:
        expected = torch.stack([fill(shape, generator=pair_generator(s, d)) for s, d in zip(seeds, draws)])
        assert torch.equal(pair_draws(shape, seeds, draws, normal=normal), expected)
