"""The overlay figure: each row says the sample's label and the model's prediction, and each overlay the
explainer's value of the first metric on that sample."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

import lit_xai.callbacks.explainer_callback as explainer_callback
from lit_xai.callbacks import ExplainerCallback
from lit_xai.callbacks.visuals import overlay_figure, sample_captions
from lit_xai.explainers import GradCAM, RandomSaliency
from lit_xai.metrics import Deletion, Insertion
from tests.helpers import TinyData, TinyModule


def test_captions_and_scores_under_each_overlay() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(3, 4))  # class = argmax of the first three pixels
    inputs = torch.tensor([[[[0.0, 5.0], [1.0, 9.0]]], [[[3.0, 1.0], [2.0, 0.0]]]])
    captions = sample_captions(model.train(), inputs, torch.tensor([1, 2]), ["cat", "dog", "owl"])
    assert captions == ["label dog\npred dog", "label owl\npred cat"]
    assert model.training  # the model's mode is restored
    assert sample_captions(model, inputs, None) == ["sample 0\npred 1", "sample 1\npred 0"]
    regressor = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    torch.nn.init.ones_(regressor[1].weight)
    assert sample_captions(regressor, inputs, torch.tensor([14.0, 6.5])) == ["label 14\npred 15", "label 6.5\npred 6"]

    maps = {"gradcam": torch.rand(2, 2, 2), "random": torch.rand(2, 2, 2)}
    figure = overlay_figure(inputs, maps, captions, {"gradcam": torch.tensor([0.125, 0.5])}, "deletion")
    axes = figure.axes
    assert [ax.get_ylabel() for ax in axes[::3]] == captions
    assert [ax.get_xlabel() for ax in axes] == ["", "deletion 0.125", "", "", "deletion 0.500", ""]


def test_callback_figure_shows_predictions_and_per_sample_first_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = []
    monkeypatch.setattr(explainer_callback, "log_figure", lambda trainer, figure, key, step: figures.append((key, figure)))
    pl.seed_everything(0)
    callback = ExplainerCallback(
        explainers={"gradcam": GradCAM(), "random": RandomSaliency()}, metrics=[Deletion(steps=8), Insertion(steps=8)],
        probe_size=6, log_images=3, print_table=False,
    )
    module, data = TinyModule(), TinyData()
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback],
    )
    trainer.validate(module, data, verbose=False)
    (key, figure), = [(k, f) for k, f in figures if k.endswith("overlays")]
    assert key == "xai/validate_overlays"
    inputs, labels = data.val.tensors[0][callback.probe_indices[:3]], data.val.tensors[1][callback.probe_indices[:3]]
    predictions = module.eval()(inputs).argmax(1)
    assert [ax.get_ylabel() for ax in figure.axes[::3]] == [f"label {int(l)}\npred {int(p)}" for l, p in zip(labels, predictions)]
    for column, name in ((1, "gradcam"), (2, "random")):
        saliency = callback.explainers[name](module, inputs, predictions)
        for row in range(3):  # each sample's Deletion on its own, as written under its overlay
            direct = Deletion(steps=8)
            direct.update(module, inputs[row : row + 1], saliency[row : row + 1], predictions[row : row + 1])
            assert callback._shown_scores[name][row].item() == pytest.approx(direct.compute().item(), abs=1e-6)
            assert figure.axes[3 * row + column].get_xlabel() == f"deletion {direct.compute().item():.3f}"
