"""The shared chunking utility: exact coverage, explicit sizes, automatic sizes per device."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_xai.chunking import (
    CPU_MAX_ACTIVATION_BYTES,
    CPU_MIN_ELEMENTS,
    CUDA_MAX_CHUNK,
    automatic_chunk_size,
    chunk_size_from_memory,
    cpu_chunk_from_activations,
    check_internal_batch_size,
    index_chunks,
    pair_chunks,
)


def test_index_chunks_cover_the_range_once_in_order() -> None:
    chunks = list(index_chunks(10, 4, torch.zeros(2, 3)))
    assert [c.tolist() for c in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(index_chunks(0, 4, torch.zeros(2, 3))) == []


def test_pair_chunks_are_sample_major() -> None:
    pairs = [(s.tolist(), r.tolist()) for s, r in pair_chunks(3, 2, 4, torch.zeros(3, 1))]
    assert pairs == [([0, 0, 1, 1], [0, 1, 0, 1]), ([2, 2], [0, 1])]


def test_automatic_size_on_cpu_is_the_batch_between_half_a_million_and_a_million_elements() -> None:
    assert automatic_chunk_size(torch.zeros(4, 3, 224, 224)) == 4
    assert automatic_chunk_size(torch.zeros(16, 3, 224, 224)) == 6  # capped at 2**20 elements
    assert automatic_chunk_size(torch.zeros(1, 3, 224, 224), batch_size=5) == 5
    assert automatic_chunk_size(torch.zeros(1, 3, 1024, 1024)) == 1  # one input over the cap still runs
    assert automatic_chunk_size(torch.zeros(1, 3, 224, 224)) == 4  # one image: raised to half a million elements
    assert automatic_chunk_size(torch.zeros(2, 3, 64, 64)) == 43
    assert automatic_chunk_size(torch.zeros(2, 1, 8, 8)) == CPU_MIN_ELEMENTS // 64  # 8192 digits per pass
    # the first chunk is the caller's batch, at least 8; no module ran in it, so the input rule stands for
    # the rest, in equal chunks
    assert [len(c) for c in index_chunks(20000, None, torch.zeros(2, 1, 8, 8))] == [8, 6664, 6664, 6664]
    assert [len(c) for c in index_chunks(10, None, torch.zeros(4, 3, 224, 224))] == [4, 3, 3]
    assert [len(c) for c in index_chunks(3, None, torch.zeros(4, 3, 224, 224))] == [3]


def test_cpu_chunks_are_capped_by_the_largest_activation_measured_on_the_first() -> None:
    wide = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU())  # 16 x its input
    like, sizes = torch.zeros(8, 1, 16, 16), []
    for chunk in index_chunks(5000, None, like):
        sizes.append(len(chunk))
        wide(torch.rand(len(chunk), 1, 16, 16))
    # input rule: 2**19 / 256 = 2048 a pass; each input's largest activation is 16 x 16 x 16 x 4 bytes = 16 KiB
    assert sizes[0] == 8 and sum(sizes) == 5000
    assert CPU_MAX_ACTIVATION_BYTES // (16 * 16 * 16 * 4) == 1024
    assert sizes[1:] == [999] * 4 + [996]  # the other 4992 in 5 equal chunks of at most 1024
    assert cpu_chunk_from_activations(0, 8, 2048) == 2048  # nothing measured: the input rule
    assert cpu_chunk_from_activations(10**9, 1, 2048) == 1  # never below one
    assert cpu_chunk_from_activations(4096 * 8, 8, 100) == 100  # never above the input rule
    assert not torch.nn.modules.module._global_forward_hooks  # the measuring hook is gone
    # 16 inputs of 1 KiB cannot make 16 MiB activations below 64 x widening: one pass, unmeasured
    assert [len(c) for c in index_chunks(16, None, like)] == [16]


def test_the_measuring_hook_goes_when_a_loop_stops_early() -> None:
    for chunk in index_chunks(100, None, torch.zeros(4, 3, 32, 32)):
        assert torch.nn.modules.module._global_forward_hooks
        break
    assert not torch.nn.modules.module._global_forward_hooks


def test_memory_budget_arithmetic() -> None:
    # 4 items peaked at 400 MB -> 100 MB each; half of 10 GB free holds 50 of them
    assert chunk_size_from_memory(400 * 10**6, 4, 10 * 10**9) == 50
    assert chunk_size_from_memory(10**12, 1, 10**9) == 1  # never below one
    assert chunk_size_from_memory(0, 4, 10**12) == CUDA_MAX_CHUNK  # capped


def test_internal_batch_size_is_none_or_positive() -> None:
    assert check_internal_batch_size(None) is None
    assert check_internal_batch_size(3) == 3
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="internal_batch_size must be a positive int"):
            check_internal_batch_size(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_chunks_grow_after_measuring_the_first() -> None:
    like = torch.zeros(2, 3, 32, 32, device="cuda")
    sizes = []
    for chunk in index_chunks(64, None, like):
        sizes.append(len(chunk))
        _ = torch.randn(len(chunk), 3, 32, 32, device="cuda") * 2  # the chunk's work allocates memory
    assert sizes[0] == 2 and sum(sizes) == 64 and max(sizes[1:]) > 2


BANK = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize(
    "make",
    [
        lambda ibs: __import__("lit_xai.explainers", fromlist=["x"]).ScoreCAM(internal_batch_size=ibs),
        lambda ibs: __import__("lit_xai.explainers", fromlist=["x"]).AblationCAM(internal_batch_size=ibs),
        lambda ibs: __import__("lit_xai.explainers", fromlist=["x"]).SmoothGradCAMPlusPlus(samples=3, internal_batch_size=ibs),
        lambda ibs: __import__("lit_xai.explainers", fromlist=["x"]).ExpectedGradCAM(
            baselines=BANK, draws=4, batches=2, internal_batch_size=ibs
        ),
    ],
    ids=["scorecam", "ablationcam", "smooth_gradcam_pp", "expected_gradcam"],
)
def test_maps_do_not_depend_on_the_chunk_size(make, small_net) -> None:
    torch.manual_seed(1)
    inputs = torch.randn(3, 3, 8, 8)
    reference = make(None)(small_net, inputs)
    scale = float(reference.abs().max())
    assert scale > 0
    for size in (1, 5):  # the same map; only the order of float sums may change
        torch.testing.assert_close(make(size)(small_net, inputs), reference, rtol=1e-5, atol=1e-6 * scale)


def test_perturbation_curves_do_not_depend_on_the_chunk_size(small_net) -> None:
    from lit_xai.metrics import Deletion, Insertion

    torch.manual_seed(2)
    inputs, saliency = torch.randn(3, 3, 8, 8), torch.rand(3, 8, 8)
    for metric in (Deletion, Insertion):
        reference = metric(steps=8).curves(small_net, inputs, saliency, None)
        for size in (1, 7):
            torch.testing.assert_close(metric(steps=8, internal_batch_size=size).curves(small_net, inputs, saliency, None), reference)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_automatic_chunks_give_the_cpu_results(small_net) -> None:
    from lit_xai.explainers import ExpectedGradCAM
    from lit_xai.metrics import Deletion

    torch.manual_seed(4)
    inputs, saliency = torch.randn(3, 3, 8, 8), torch.rand(3, 8, 8)
    explainer = ExpectedGradCAM(baselines=BANK, draws=4)
    cpu_map = explainer(small_net, inputs)
    cuda_map = explainer(small_net.cuda(), inputs.cuda(), None)
    torch.testing.assert_close(cuda_map.cpu(), cpu_map, rtol=1e-4, atol=1e-5 * float(cpu_map.abs().max()))
    cpu_curve = Deletion(steps=8).curves(small_net.cpu(), inputs, saliency, None)
    cuda_curve = Deletion(steps=8).curves(small_net.cuda(), inputs.cuda(), saliency.cuda(), None)
    torch.testing.assert_close(cuda_curve.cpu(), cpu_curve, rtol=1e-4, atol=1e-5)


def test_chunked_cpu_passes_keep_freed_memory(monkeypatch) -> None:
    from lit_xai import cpu_allocator

    list(index_chunks(3, 2, torch.zeros(2, 3)))
    user_settings = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ) or os.environ.get("LIT_XAI_KEEP_FREED_MEMORY") == "0"
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and not user_settings
    assert cpu_allocator.keep_freed_memory() is expected
    monkeypatch.setenv("LIT_XAI_KEEP_FREED_MEMORY", "0")
    assert cpu_allocator._set_thresholds() is False  # the opt-out
    monkeypatch.delenv("LIT_XAI_KEEP_FREED_MEMORY")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert cpu_allocator._set_thresholds() is False  # the environment's malloc settings stand


def test_the_chunk_benchmark_runs() -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "chunks.py"
    done = subprocess.run([sys.executable, str(script), "--only", "cmapss", "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("| lit-xai small_cnn 1-D")]
    assert "| 2048 |" in row and "8, 1020" in row  # the first 8, then equal chunks of the input rule
