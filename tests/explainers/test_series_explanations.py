"""Explanations over time on RUL models: a known answer for Grad-CAM and Expected Grad-CAM, the callback on
a C-MAPSS regressor (target = the prediction, probe stratified by RUL, overlays of sensor traces), and the
series overlay itself."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

from lit_xai.callbacks import ExplainerCallback
from lit_xai.callbacks.probe import choose_probe, dataset_labels, value_bins
from lit_xai.callbacks.visuals import SERIES_MAP_HEIGHT, overlay_figure
from lit_xai.datamodules import CMAPSSDataModule
from lit_xai.explainers import BankBaselines, ExpectedGradCAM, ExpectedGradients, GradCAM, IntegratedGradients, RandomSaliency
from lit_xai.metrics import Deletion, Insertion
from lit_xai.models import RULRegressor
from tests.cmapss_fixtures import write_cmapss
from tests.dataset_fixtures import one_torch_thread  # noqa: F401  (autouse)
from tests.helpers import RecordingGradCAM

CHANNELS, STEPS, LAST = 4, 20, 4


def last_cycles_windows(n: int, seed: int, low: float, high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise windows whose sensor 2 rises by d ~ U(low, high) over the last 4 cycles; the target is
    20 x the mean of sensor 2 over those cycles (nothing else matters)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = 0.5 * torch.randn(n, CHANNELS, STEPS, generator=generator)
    inputs[:, 2, -LAST:] += low + (high - low) * torch.rand(n, 1, generator=generator)
    return inputs, 20 * inputs[:, 2, -LAST:].mean(dim=1)


def test_known_answer_cams_put_their_mass_on_the_last_cycles() -> None:
    inputs, targets = last_cycles_windows(384, 0, 0.0, 2.0)
    torch.manual_seed(0)
    model = RULRegressor("cnn_lstm", (CHANNELS, STEPS), conv_channels=8, lstm_hidden=16, dense=16, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = torch.randint(0, len(inputs), (64,), generator=generator)
        loss = F.mse_loss(model(inputs[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    probe, truth = last_cycles_windows(64, 1, 1.0, 2.0)  # windows with clear evidence (d >= 1)
    with torch.no_grad():
        assert (model(probe) - truth).pow(2).mean().sqrt() < 0.15 * truth.std()  # the model learnt the rule
    layer = model.default_target_layer
    shares = {}
    for name, explainer in {
        "gradcam": GradCAM(target_layer=layer),
        "expected_gradcam": ExpectedGradCAM(target_layer=layer, baselines=BankBaselines(inputs[:32]), draws=16),
        "random": RandomSaliency(),
    }.items():
        maps = explainer(model, probe)
        assert maps.shape == (64, STEPS)
        shares[name] = float((maps[:, -LAST:].sum(1) / maps.sum(1).clamp_min(1e-12)).mean())
    assert shares["random"] == pytest.approx(LAST / STEPS, abs=0.05)
    for name in ("gradcam", "expected_gradcam"):  # 4 of 20 cycles hold most of the mass
        assert shares[name] > 0.5 and shares[name] > shares["random"] + 0.3, shares
    # sensors x cycles: input-space maps (reduce="none") put most of |attribution| on sensor 2's last cycles
    # (4 of the 80 sensor-cycles, a share of 0.05 for a uniform map)
    for name, explainer in {
        "integrated_gradients": IntegratedGradients(steps=16, reduce="none"),
        "expected_gradients": ExpectedGradients(baselines=inputs[:32], draws=16, reduce="none"),
    }.items():
        maps = explainer(model, probe).abs()
        assert maps.shape == (64, CHANNELS, STEPS)
        shares[name] = float((maps[:, 2, -LAST:].sum(1) / maps.sum((1, 2)).clamp_min(1e-12)).mean())
        assert shares[name] > 0.5, shares


def test_probe_is_stratified_by_rul_bins() -> None:
    rul = torch.cat([torch.full((80,), 125.0), torch.linspace(0, 124, 20)])  # mostly capped, few near failure
    assert value_bins(torch.tensor([0.0, 24.9, 25.0, 124.0, 125.0]), 5).tolist() == [0, 0, 1, 4, 4]
    assert value_bins(torch.full((3,), 7.0), 5).tolist() == [0, 0, 0]
    probe = choose_probe(100, 10, 0, rul)
    assert value_bins(rul, 5)[probe].bincount(minlength=5).tolist() == [2, 2, 2, 2, 2]
    assert torch.equal(choose_probe(100, 10, 0, rul), probe)


def test_callback_on_a_cmapss_regressor(tmp_path: Path) -> None:
    data = CMAPSSDataModule(write_cmapss(tmp_path / "data", train_units=6, test_units=3), window_size=15, val_fraction=0.34, batch_size=32)
    val = data.dataset("val")
    assert torch.equal(dataset_labels(val), val.targets)
    gradcam = RecordingGradCAM()
    callback = ExplainerCallback(
        explainers={"gradcam": gradcam, "expected_gradcam": ExpectedGradCAM(draws=4), "random": RandomSaliency()},
        metrics=[Insertion(steps=5), Deletion(steps=5)], probe_size=10, log_images=2, baseline_bank_size=8, print_table=False,
    )
    torch.manual_seed(0)
    model = RULRegressor("cnn_bilstm", data.input_shape, conv_channels=4, lstm_hidden=4, dense=4)
    trainer = pl.Trainer(
        accelerator="cpu", logger=CSVLogger(tmp_path, name="logs"), callbacks=[callback], enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.validate(model, data, verbose=False)
    # target = the prediction: no class index is passed, and the maps are over the 15 cycles
    assert gradcam.targets == [None] and gradcam.maps[0].shape == (10, 15)
    assert callback.explainers["expected_gradcam"].baselines.data.shape == (8, 14, 15)  # training windows
    # the probe covers the RUL range: equal-width RUL bins take turns
    picked = value_bins(val.targets, 5)[callback.probe_indices]
    assert picked.bincount(minlength=5).max() - picked.bincount(minlength=5)[picked.bincount(minlength=5) > 0].min() <= 1
    # Deletion is scored on the raw RUL prediction: its mean curve runs from the probe's mean prediction to
    # the mean prediction of all-zero windows (every cycle deleted)
    with torch.no_grad():
        probe_inputs = torch.stack([val[int(i)][0] for i in callback.probe_indices])
        predicted, deleted = model.eval()(probe_inputs).mean(), model(torch.zeros_like(probe_inputs)).mean()
    assert not callback.errors and set(callback.results["validate"]) == {"gradcam", "expected_gradcam", "random"}
    for name in ("gradcam", "random"):
        curve = callback._curves[name]["deletion"]
        assert curve[0].item() == pytest.approx(predicted.item(), abs=1e-4) and curve[-1].item() == pytest.approx(deleted.item(), abs=1e-4)
    assert {p.name for p in (tmp_path / "logs").rglob("*.png")} == {"xai_validate_overlays_step000000.png", "xai_validate_curves_step000000.png"}


def test_series_overlay_draws_traces_above_the_map() -> None:
    inputs = torch.randn(2, 3, 12)
    over_time = torch.rand(2, 12)
    over_sensors = torch.rand(2, 3, 12)
    figure = overlay_figure(inputs, {"time": over_time, "sensors_x_time": over_sensors}, ["target 10.0", "target 20.0"])
    axes = figure.axes
    assert len(axes) == 6
    first = axes[0]
    assert len(first.lines) == 3 and not first.images  # the input column: traces only
    time_map, sensor_map = axes[1].images[0].get_array(), axes[2].images[0].get_array()
    assert time_map.shape == (1, 12) and sensor_map.shape == (3, 12)
    expected = (over_sensors[0] - over_sensors[0].min()) / (over_sensors[0].max() - over_sensors[0].min())
    assert torch.allclose(torch.as_tensor(sensor_map), expected, atol=1e-6)
    assert axes[1].images[0].get_extent() == [-0.5, 11.5, 0.0, SERIES_MAP_HEIGHT]
    for line in axes[1].lines:  # every trace lies above the heatmap
        assert line.get_ydata().min() >= SERIES_MAP_HEIGHT and line.get_ydata().max() <= 1.0
    assert axes[0].get_ylabel() == "target 10.0"


@pytest.mark.parametrize("arch", ["cnn_bilstm", "multihead_cnn_bilstm"])
def test_every_registered_method_explains_rul_models_over_time(arch: str) -> None:
    from lit_xai.explainers.registry import default_explainers

    torch.manual_seed(0)
    model = RULRegressor(arch, (5, 16), conv_channels=4, lstm_hidden=4, dense=4)
    inputs = torch.randn(3, 5, 16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    explainers = default_explainers(model)
    assert {"gradcam", "expected_gradcam", "scorecam", "polycam", "random"} <= set(explainers)
    for name, explainer in explainers.items():
        if getattr(explainer, "baselines", 0) is None:
            explainer.baselines = BankBaselines(torch.randn(4, 5, 16))
        maps = explainer(model, inputs)
        assert maps.shape == (3, 16) and maps.dtype == torch.float32 and torch.isfinite(maps).all(), name
        assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items()), name
