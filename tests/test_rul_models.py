"""RULRegressor (CNN-LSTM, CNN-BiLSTM, multi-head CNN-BiLSTM) and the NASA / PHM08 score."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from lit_xai.explainers import GradCAM
from lit_xai.metrics import NASAScore
from lit_xai.models import RULRegressor
from tests.dataset_fixtures import one_torch_thread  # noqa: F401  (autouse)
from tests.rul_helpers import TinyRULData, TinyRULRegressor


def test_nasa_score_by_hand() -> None:
    metric = NASAScore()
    metric.update(torch.tensor([10.0, 20.0]), torch.tensor([12.0, 20.0]))  # d = -2 (early), 0
    metric.update(torch.tensor([[30.0]]), torch.tensor([25.0]))  # d = 5 (late)
    expected = (math.exp(2 / 13) - 1) + 0.0 + (math.exp(5 / 10) - 1)
    assert metric.compute().item() == pytest.approx(expected, rel=1e-12)
    assert NASAScore(early=1.0, late=2.0)(torch.tensor([0.0, 4.0]), torch.tensor([1.0, 0.0])).item() == pytest.approx(math.e - 1 + math.e**2 - 1)
    with pytest.raises(ValueError, match="same number of elements"):
        metric.update(torch.zeros(2), torch.zeros(3))


def validate(devices: int) -> dict[str, float]:
    pl.seed_everything(0)
    run = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    run.validate(TinyRULRegressor(), TinyRULData(), verbose=False)
    return {k: v.item() for k, v in run.callback_metrics.items() if k.startswith("val/")}


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_val_metrics_by_hand_and_two_processes_equal_one() -> None:
    single = validate(1)
    model, data = TinyRULRegressor().eval(), TinyRULData()
    inputs, rul = data.val.tensors
    with torch.no_grad():
        predictions = model(inputs).double()
    d = predictions - rul.double()
    assert (d < 0).any() and (d > 0).any()
    assert single["val/rmse"] == pytest.approx(d.pow(2).mean().sqrt().item(), rel=1e-5)
    assert single["val/mae"] == pytest.approx(d.abs().mean().item(), rel=1e-5)
    nasa = torch.where(d < 0, torch.exp(-d / 13), torch.exp(d / 10)) - 1
    assert single["val/nasa_score"] == pytest.approx(nasa.sum().item(), rel=1e-5)
    double = validate(2)  # 10 windows per process
    assert set(double) == set(single) == {"val/loss", "val/rmse", "val/mae", "val/nasa_score"}
    for key in ("val/rmse", "val/mae", "val/nasa_score"):
        assert double[key] == pytest.approx(single[key], rel=1e-6), key


@pytest.mark.parametrize(("arch", "target"), [("cnn_lstm", "net.features.block2"), ("cnn_bilstm", "net.features.block2"), ("multihead_cnn_bilstm", "net.features.merge")])
def test_architectures(arch: str, target: str) -> None:
    torch.manual_seed(0)
    model = RULRegressor(arch, (4, 15), conv_channels=6, lstm_hidden=5, dense=7).eval()
    assert model.default_target_layer == target
    block = model.get_submodule(target)
    assert isinstance(block[0], nn.Conv1d) and isinstance(block[1], nn.ReLU)
    inputs = torch.randn(3, 4, 15)
    assert model(inputs).shape == (3,)
    activations = []
    handle = block.register_forward_hook(lambda module, args, output: activations.append(output))
    model(inputs)
    handle.remove()
    assert activations[0].shape == (3, 6, 15)  # the time axis keeps its length: CAMs are (B, T) at input resolution
    maps = GradCAM(target_layer=target)(model, inputs)
    assert maps.shape == (3, 15) and (maps >= 0).all()
    lstm = model.net.lstm
    assert lstm.bidirectional == (arch != "cnn_lstm") and lstm.num_layers == (2 if arch.startswith("multihead") else 1)
    # each sample's prediction depends on that sample only (no batch interaction in eval mode)
    assert torch.allclose(model(inputs[:1]), model(inputs)[:1], atol=1e-6)


def test_multihead_groups_see_only_their_sensors() -> None:
    torch.manual_seed(0)
    model = RULRegressor("multihead_cnn_bilstm", (4, 10), conv_channels=3, sensor_groups=[[0, 1], [3]]).eval()
    assert len(model.net.features.heads.heads) == 2 and model.net.features.merge[0].in_channels == 6
    inputs = torch.randn(2, 4, 10)
    changed = inputs.clone()
    changed[:, 2] += 5.0  # sensor 2 belongs to no group
    assert torch.equal(model(inputs), model(changed))
    changed[:, 3] += 5.0
    assert not torch.allclose(model(inputs), model(changed))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "transformer"}, "arch must be one of"),
        ({"kernel_size": 4}, "kernel_size must be odd"),
        ({"input_shape": (3, 8, 8)}, "input_shape must be"),
        ({"arch": "cnn_lstm", "sensor_groups": [[0]]}, "sensor_groups is for"),
        ({"arch": "multihead_cnn_bilstm", "sensor_groups": [[0, 14]]}, r"channel indices in \[0, 14\)"),
        ({"optimizer": "lamb"}, "optimizer must be"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RULRegressor(**kwargs)


def test_cudnn_is_off_only_inside_an_active_block() -> None:
    from lit_xai.models.rul_networks import cudnn_off

    before = torch.backends.cudnn.enabled
    with cudnn_off(False):
        assert torch.backends.cudnn.enabled == before
    with pytest.raises(RuntimeError, match="inside"):
        with cudnn_off(True):
            assert torch.backends.cudnn.enabled is False
            raise RuntimeError("inside")
    assert torch.backends.cudnn.enabled == before
