"""Randomness that depends on (seed, sample content) only, never on the batch or the process.

Stochastic explainers draw their noise per sample from a generator seeded by the sample's bytes, so a
sample gets the same draws whether it is explained alone, in a batch, or on another DDP rank, and the
global random state is never consumed.

Gaussian noise the size of the inputs (SmoothGrad and its relatives, Smooth Grad-CAM++, Gaussian baselines)
is drawn on the inputs' device: on a GPU, drawing it on the CPU and copying it over took up to 10 x the
method's forward passes. Draws are reproducible per device type; a CUDA run's noise is another draw from
the same distribution than a CPU run's (CUDA's generator is not the CPU's). Small draws (indices, masks,
path positions) stay on the CPU and are the same everywhere.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor


def sample_seed(sample: Tensor, seed: int) -> int:
    """A 63-bit seed from `seed` and the sample's bytes: equal samples get equal seeds."""
    return sample_seeds(sample.unsqueeze(0), seed)[0]


def sample_seeds(inputs: Tensor, seed: int) -> list[int]:
    """`sample_seed` of every sample of `inputs` `(B, ...)`, the batch copied to the CPU once."""
    raw = inputs.detach().cpu().contiguous().view(torch.uint8)  # any dtype, bfloat16 included
    rows = raw.numpy().reshape(inputs.shape[0], -1)
    return [(int.from_bytes(hashlib.blake2b(row, digest_size=8).digest(), "little") ^ seed) & MASK_63 for row in rows]


def per_sample_normal(inputs: Tensor, draws: int, seed: int) -> Tensor:
    """Standard normal noise `(B, draws, *inputs.shape[1:])` drawn on the inputs' device, seeded per sample."""
    device = inputs.device
    noise = [
        torch.randn((draws, *sample.shape), generator=torch.Generator(device).manual_seed(own_seed), device=device)
        for sample, own_seed in zip(inputs, sample_seeds(inputs, seed))
    ]
    return torch.stack(noise).to(dtype=inputs.dtype)


def per_sample_uniform(inputs: Tensor, shape: tuple[int, ...], seed: int) -> Tensor:
    """U(0, 1) draws `(B, *shape)` on the inputs' device, seeded per sample."""
    draws = [torch.rand(shape, generator=torch.Generator().manual_seed(own_seed)) for own_seed in sample_seeds(inputs, seed)]
    return torch.stack(draws).to(inputs.device)


MASK_63 = (1 << 63) - 1


def pair_seed(seed: int, draw: int, stream: int = 0) -> int:
    """The 63-bit seed of draw number `draw` of a sample whose seed is `seed` (independent per `stream`)."""
    return (seed ^ ((draw + 1) * 0x9E3779B97F4A7C15) ^ ((stream + 1) * 0xBF58476D1CE4E5B9)) & MASK_63


def pair_generator(seed: int, draw: int, stream: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on `device` for draw number `draw` of a sample whose seed is `seed` (independent per `stream`)."""
    return torch.Generator(device).manual_seed(pair_seed(seed, draw, stream))


def pair_draws(shape: tuple[int, ...], seeds: list[int], draws: list[int], normal: bool = False) -> Tensor:
    """U(0, 1) (or N(0, 1)) draws `(k, *shape)`, float32 on the CPU: row i is what `pair_generator(seeds[i],
    draws[i])` draws, each row written in place by one reseeded generator (no generator or copy per row)."""
    rows = torch.empty((len(seeds), *shape))
    generator, fill = torch.Generator(), torch.randn if normal else torch.rand
    for row, seed, draw in zip(rows, seeds, draws):
        fill(shape, generator=generator.manual_seed(pair_seed(seed, draw)), out=row)
    return rows
