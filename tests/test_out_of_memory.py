"""Out of memory inside an explainer or a metric: halve the chunk, retry, warn once, remember the size.

On CPU, a model raises `torch.cuda.OutOfMemoryError` for batches above a size, as a GPU whose free
memory moved would; lit-xai's model pass wraps it in its own message (the cause chain is searched)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

from lit_xai.chunking import index_chunks, out_of_memory_error, retry_out_of_memory
from lit_xai.explainers import RISE, ScoreCAM
from lit_xai.metrics import Insertion
from tests.conftest import SmallNet


class MemoryBoundNet(nn.Module):
    """SmallNet that raises torch.cuda.OutOfMemoryError for batches larger than `capacity`; records batch sizes."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = SmallNet().eval()
        self.features = self.net.features
        self.capacity = capacity
        self.batches: list[int] = []

    def forward(self, x: Tensor) -> Tensor:
        self.batches.append(len(x))
        if len(x) > self.capacity:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate a batch of {len(x)}")
        return self.net(x)


def test_explainer_halves_its_chunk_warns_once_and_remembers_the_size() -> None:
    model = MemoryBoundNet(capacity=10)
    inputs = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    explainer = ScoreCAM(target_layer="features.3")  # 4 samples x 8 channels = 32 masked inputs; automatic chunk 2730 on CPU
    with pytest.warns(UserWarning, match=r"ScoreCAM: out of memory with chunks of 32 derived inputs.*chunks of at most 8 worked"):
        maps = explainer(model, inputs)
    assert explainer._chunk_limit == 8  # 32 -> 16 (still too many) -> 8
    by_hand = ScoreCAM(target_layer="features.3", internal_batch_size=8)(model, inputs)
    assert torch.equal(maps, by_hand)
    model.batches.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning: the size is remembered
        again = explainer(model, inputs)
    assert torch.equal(again, maps) and max(model.batches) == 8


def test_metric_update_retries_without_counting_twice() -> None:
    model = MemoryBoundNet(capacity=6)
    generator = torch.Generator().manual_seed(2)
    inputs, saliency = torch.randn(3, 3, 8, 8, generator=generator), torch.rand(3, 8, 8, generator=generator)
    metric = Insertion(steps=8)  # 3 images x 9 steps, the last (the inputs) from the pass that resolved the targets: 24 inputs
    with pytest.warns(UserWarning, match=r"Insertion: out of memory with chunks of 24.*at most 6 worked"):
        metric.update(model, inputs, saliency)
    by_hand = Insertion(steps=8, internal_batch_size=6)
    by_hand.update(model, inputs, saliency)
    assert metric.count.item() == 3 and metric._chunk_limit == 6  # 24 -> 12 -> 6
    assert metric.compute().item() == by_hand.compute().item()
    torch.testing.assert_close(metric.curve(), by_hand.curve(), rtol=0, atol=0)


def test_rise_masks_chunked_under_the_learned_limit_give_the_maps_set_by_hand() -> None:
    model = MemoryBoundNet(capacity=50)
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    explainer = RISE(masks=100, cell=4)
    with pytest.warns(UserWarning, match=r"RISE: out of memory with chunks of 200 .*at most 50 worked"):
        maps = explainer(model, inputs)
    torch.testing.assert_close(maps, RISE(masks=100, cell=4, internal_batch_size=50)(model, inputs), rtol=0, atol=0)


def test_what_halving_cannot_fix_is_re_raised() -> None:
    inputs = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="CUDA out of memory") as raised:  # even one input too many: wrapped error re-raised
        ScoreCAM(target_layer="features.3")(MemoryBoundNet(capacity=0), inputs)
    assert isinstance(out_of_memory_error(raised.value), torch.OutOfMemoryError)
    calls = []

    class Broken:
        @retry_out_of_memory
        def __call__(self) -> None:
            calls.append(1)
            list(index_chunks(8, None, torch.zeros(2, 1)))
            raise RuntimeError("not memory")

    with pytest.raises(RuntimeError, match="not memory"):
        Broken()()
    assert calls == [1]  # other errors are not retried
