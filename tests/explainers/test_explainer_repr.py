"""Explainer `repr` (issue 27): tensor arguments and state by shape and dtype, never by value."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import lit_xai.explainers as ex
from lit_xai.explainers.base import argument_repr
from tests.conftest import SmallNet
from tests.explainers.test_explainer_contract import FACTORIES
from tests.shapes_helpers import single_thread


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


def test_argument_repr_by_hand() -> None:
    assert argument_repr(torch.zeros(16, 3, 64, 64)) == "Tensor(shape=(16, 3, 64, 64), dtype=torch.float32)"
    assert argument_repr(torch.tensor(2, dtype=torch.bfloat16)) == "Tensor(shape=(), dtype=torch.bfloat16)"
    assert argument_repr(torch.empty(2, 5, device="meta")) == "Tensor(shape=(2, 5), dtype=torch.float32, device='meta')"
    assert argument_repr([torch.ones(3), 1.5, "a"]) == "[Tensor(shape=(3,), dtype=torch.float32), 1.5, 'a']"
    assert argument_repr((torch.ones(1, dtype=torch.long),)) == "(Tensor(shape=(1,), dtype=torch.int64),)"
    assert argument_repr({"bank": torch.ones(2, 2), "k": (1, 2)}) == "{'bank': Tensor(shape=(2, 2), dtype=torch.float32), 'k': (1, 2)}"
    assert argument_repr(None) == "None" and argument_repr("layer4") == "'layer4'"


def test_a_bank_of_sixteen_images_prints_as_its_shape() -> None:
    bank = torch.randn(16, 3, 64, 64)
    hyper = ex.HyperExpectedGradCAM("layer4", baselines=bank, draws=8)
    assert repr(hyper) == (
        "HyperExpectedGradCAM(target_layer='layer4', baselines=Tensor(shape=(16, 3, 64, 64), dtype=torch.float32), draws=8, "
        "alphas='uniform', noise_std=0.0, seed=0, threshold=0.5, max_stages=3, stages=None, stride=None, frequency_layers=None, "
        "high_pass='laplacian', cutoff=0.5, internal_batch_size=None)"
    )
    sources = ex.ExpectedGradCAM("layer4", baselines=ex.DataBaselines(bank, size=4)), ex.ExpectedGradCAM(baselines=ex.ZeroBaseline())
    assert "baselines=DataBaselines(data=Tensor(shape=(4, 3, 64, 64), dtype=torch.float32))" in repr(sources[0])
    assert "baselines=ZeroBaseline()" in repr(sources[1])
    assert repr(ex.GaussianBaselines(0.5)) == "GaussianBaselines(std=0.5, mean=0.0, around_input=False)"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_no_explainer_prints_tensor_values_after_a_call(name: str, small_net: SmallNet) -> None:
    """Built with a tensor bank where the method takes baselines, called once (state such as Expected
    Grad-CAM's diagnostics is set), then printed: shapes and dtypes only."""
    explainer = FACTORIES[name]()
    if hasattr(explainer, "baselines"):
        explainer.baselines = torch.randn(5, 3, 8, 8)
    explainer(small_net.eval(), torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 2]))
    text = repr(explainer)
    assert text.startswith(type(explainer).__name__ + "(")
    assert "tensor(" not in text and "0x" not in text, text
    if hasattr(explainer, "baselines"):
        assert "Tensor(shape=(5, 3, 8, 8), dtype=torch.float32)" in text
    if isinstance(explainer, ex.ExpectedGradCAM):
        assert "diagnostics=ConvergenceDiagnostics(delta=Tensor(shape=(2,), dtype=torch.float32)" in text
