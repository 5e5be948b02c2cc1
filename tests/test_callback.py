"""ExplainerCallback inside Lightning's loops: real gradients, same maps everywhere, no effect on training."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import ExpectedGradCAM, GradCAM, GuidedBackprop, RandomSaliency, ScoreCAM, SmoothGradCAMPlusPlus
from lit_xai.metrics import Deletion, Insertion
from tests.helpers import FailingExplainer, RecordingGradCAM, TinyData, TinyModule


def trainer(callbacks: list[pl.Callback], max_epochs: int = 1, **kwargs: object) -> pl.Trainer:
    options = dict(
        max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


def test_same_gradcam_maps_in_fit_validation_validate_and_test() -> None:
    pl.seed_everything(0)
    recorder = RecordingGradCAM()
    callback = ExplainerCallback(explainers={"gradcam": recorder}, metrics=[Deletion(steps=8)], probe_size=100, print_table=False)
    module, data = TinyModule(), TinyData()
    run = trainer([callback])
    run.fit(module, data)
    fit_maps = torch.cat(recorder.maps)
    recorder.maps.clear()
    run.validate(module, data, verbose=False)
    validate_maps = torch.cat(recorder.maps)
    recorder.maps.clear()
    run.test(module, data, verbose=False)
    test_maps = torch.cat(recorder.maps)

    assert fit_maps.shape == (20, 8, 8)  # the probe is the whole (20-image) validation set
    assert (fit_maps.flatten(1).sum(1) > 0).all(), "every map must come from real gradients"
    torch.testing.assert_close(validate_maps, fit_maps)
    torch.testing.assert_close(test_maps, fit_maps)
    direct = GradCAM()(module.eval(), data.val.tensors[0])
    torch.testing.assert_close(fit_maps, direct)
    assert callback.results["validate"]["gradcam"]["deletion"] == pytest.approx(callback.results["test"]["gradcam"]["deletion"], abs=1e-6)
    assert run.callback_metrics["xai/gradcam/deletion"].item() == pytest.approx(callback.results["test"]["gradcam"]["deletion"], abs=1e-6)


def test_training_is_identical_with_and_without_the_callback() -> None:
    runs = []
    explainers = {
        "gradcam": GradCAM(), "scorecam": ScoreCAM(), "guided_backprop": GuidedBackprop(),
        "expected_gradcam": ExpectedGradCAM(draws=4), "smooth": SmoothGradCAMPlusPlus(samples=2), "random": RandomSaliency(),
    }
    for callbacks in ([], [ExplainerCallback(explainers, metrics=[Insertion(steps=8), Deletion(steps=8)], probe_size=12, print_table=False)]):
        pl.seed_everything(0)
        module = TinyModule()
        trainer(callbacks, max_epochs=3).fit(module, TinyData())
        runs.append(module)
    plain, explained = runs
    assert len(plain.losses) == 18
    assert explained.losses == plain.losses  # exactly, step by step
    for (name, a), (_, b) in zip(plain.state_dict().items(), explained.state_dict().items()):
        assert torch.equal(a, b), name
    assert all(not m._forward_hooks and not m._backward_hooks for m in explained.modules())
    assert all(p.requires_grad for p in explained.parameters())


def test_resumed_run_explains_the_same_probe(tmp_path: Path) -> None:
    pl.seed_everything(0)
    first = ExplainerCallback({"gradcam": GradCAM()}, metrics=[Deletion(steps=4)], probe_size=7, probe_seed=1, print_table=False)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="last")
    trainer([first, checkpoint], enable_checkpointing=True).fit(TinyModule(), TinyData())
    assert first.probe_indices is not None and len(first.probe_indices) == 7

    resumed = ExplainerCallback({"gradcam": GradCAM()}, metrics=[Deletion(steps=4)], probe_size=7, probe_seed=2, print_table=False)
    trainer([resumed], max_epochs=2).fit(TinyModule(), TinyData(), ckpt_path=tmp_path / "last.ckpt")
    assert resumed.probe_indices.tolist() == first.probe_indices.tolist()
    fresh = ExplainerCallback({"gradcam": GradCAM()}, probe_size=7, probe_seed=2)
    trainer([fresh]).validate(TinyModule(), TinyData(), verbose=False)
    assert fresh.probe_indices.tolist() != first.probe_indices.tolist()


def test_failing_explainer_is_reported_and_training_goes_on() -> None:
    callback = ExplainerCallback(
        explainers={"broken": FailingExplainer(), "gradcam": GradCAM()}, metrics=[Deletion(steps=4)], probe_size=6, print_table=False
    )
    module = TinyModule()
    with pytest.warns(UserWarning, match="explainer 'broken' failed.*RuntimeError: boom"):
        run = trainer([callback], max_epochs=2)
        run.fit(module, TinyData())
    assert len(module.losses) == 12
    assert callback.errors == {"broken": "RuntimeError: boom"}
    assert "xai/gradcam/deletion" in run.callback_metrics
    assert [key for key in run.callback_metrics if key.startswith("xai/broken")] == ["xai/broken/failed"]
    assert run.callback_metrics["xai/broken/failed"].item() == 1.0


def test_label_targets_and_limit_test_samples() -> None:
    recorder = RecordingGradCAM()
    callback = ExplainerCallback(explainers={"gradcam": recorder}, metrics=[Deletion(steps=4)], targets="label", limit_test_samples=12, print_table=False)
    data = TinyData()
    trainer([callback]).test(TinyModule(), data, verbose=False)
    assert sum(len(m) for m in recorder.maps) == 12
    assert torch.equal(torch.cat(recorder.targets), data.val.tensors[1][:12])


def test_results_table_written_to_the_log_dir(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    callback = ExplainerCallback({"gradcam": GradCAM(), "random": RandomSaliency()}, metrics=[Deletion(steps=4)], probe_size=6)
    run = trainer([callback], logger=CSVLogger(tmp_path, name="run"))
    run.test(TinyModule(), TinyData(), verbose=False)
    lines = (Path(run.log_dir) / "xai_results.csv").read_text().splitlines()
    assert lines[0] == "explainer,deletion,deletion_se,seconds_per_sample"
    assert [line.split(",")[0] for line in lines[1:]] == ["gradcam", "random"]
    value, error = map(float, lines[1].split(",")[1:3])
    metric = callback.metrics["gradcam"]["deletion"]
    assert value == pytest.approx(metric.compute().item()) and error == pytest.approx(metric.standard_error().item())
    assert 0 < error < 0.5
    assert (Path(run.log_dir) / "xai_results.md").read_text().startswith("| explainer | deletion |")
    scores = (Path(run.log_dir) / "xai_scores.csv").read_text().splitlines()
    assert scores[0] == "explainer,metric,sample,value"
    rows = [line.split(",") for line in scores[1:]]
    assert [(e, m, int(i)) for e, m, i, _ in rows] == [(e, "deletion", i) for e in ("gradcam", "random") for i in range(20)]
    per_image = torch.tensor([float(v) for e, _, _, v in rows if e == "gradcam"], dtype=torch.float64)
    assert float(per_image.mean()) == pytest.approx(value, rel=1e-6)  # the table holds float32 means
    assert float(per_image.std() / len(per_image) ** 0.5) == pytest.approx(error, rel=1e-6)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="targets must be 'predicted' or 'label'"):
        ExplainerCallback(targets="argmax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two metrics share a name"):
        ExplainerCallback(metrics=[Deletion(), Deletion(steps=5)])


def test_expected_gradcam_and_gradients_get_their_baselines_from_the_training_data() -> None:
    from lit_xai.explainers import ExpectedGradCAM, ExpectedGradients

    explainer, input_space = ExpectedGradCAM(draws=4), ExpectedGradients(draws=4)
    callback = ExplainerCallback(
        explainers={"egc": explainer, "eg": input_space}, metrics=[Deletion(steps=4)], probe_size=6, baseline_bank_size=5, print_table=False
    )
    data = TinyData()
    run = trainer([callback])
    run.validate(TinyModule(), data, verbose=False)
    assert torch.equal(explainer.baselines.data, data.train.tensors[0][:5])
    assert input_space.baselines is explainer.baselines  # Expected Gradients shares the bank
    assert 0 <= run.callback_metrics["xai/eg/deletion"].item() <= 1
    assert 0 <= run.callback_metrics["xai/egc/deletion"].item() <= 1


def test_default_explainers_are_every_registered_method_that_applies() -> None:
    from torch import nn

    from lit_xai.explainers.registry import REGISTRY, default_explainers

    vit_only = {"attention_rollout", "legrad", "head_decomposition"}  # tests/explainers/transformers/test_vit_shapes.py
    assert set(default_explainers(TinyModule())) == set(REGISTRY) - vit_only
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    input_space = {"saliency", "input_x_gradient", "integrated_gradients", "expected_gradients", "smoothgrad", "smoothgrad_sq",
                   "vargrad", "spectral_lens", "arglens", "rise", "occlusion", "deeplift", "deeplift_shap", "gradient_shap",
                   "noise_tunnel_deeplift", "feature_ablation", "shapley_value_sampling", "kernel_shap", "lime"}
    assert set(default_explainers(mlp)) == {"random", "center", "spectral_residual"} | input_space
    callback = ExplainerCallback(metrics=[Deletion(steps=2)], probe_size=2, print_table=False)
    trainer([callback]).validate(TinyModule(), TinyData(), verbose=False)
    assert set(callback.results["validate"]) == set(REGISTRY) - vit_only and not callback.errors
    assert all(row["deletion"] == row["deletion"] for row in callback.results["validate"].values())  # no NaN


def test_probe_is_stratified_by_class() -> None:
    from torch.utils.data import Subset, TensorDataset

    from lit_xai.callbacks.probe import choose_probe, dataset_labels

    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 5)
    probe = choose_probe(85, 12, 0, labels)
    assert labels[probe].bincount().tolist() == [4, 4, 4]
    probe = choose_probe(85, 20, 3, labels)
    assert sorted(labels[probe].bincount().tolist()) == [5, 7, 8]  # class 2 has only 5; the others alternate
    assert torch.equal(choose_probe(85, 20, 3, labels), probe) and len(set(probe.tolist())) == 20
    data = TensorDataset(torch.zeros(6, 1), torch.tensor([2, 0, 1, 2, 0, 1]))
    assert dataset_labels(data).tolist() == [2, 0, 1, 2, 0, 1]
    assert dataset_labels(Subset(data, [5, 0])).tolist() == [1, 2]
    assert dataset_labels(TensorDataset(torch.zeros(3, 1))) is None


def test_time_budget_skips_the_slowest_explainers() -> None:
    import time as clock

    class Slow(GradCAM):
        def explain(self, model, inputs, targets):  # type: ignore[no-untyped-def]
            clock.sleep(0.3)
            return super().explain(model, inputs, targets)

    callback = ExplainerCallback(
        {"slow": Slow(), "gradcam": GradCAM(), "random": RandomSaliency()}, metrics=[Deletion(steps=2)], probe_size=4,
        max_seconds=0.2, print_table=False,
    )
    with pytest.warns(UserWarning, match=r"skipped \['slow'\]"):
        trainer([callback], max_epochs=2).fit(TinyModule(), TinyData())
    # epoch 1 runs everything (no timings yet) and measures "slow" at 0.3 s; epoch 2's plan skips it
    assert callback.skipped == ["slow"]
    assert set(callback.results["validate"]) == {"slow", "gradcam", "random"}
    assert callback.results["validate"]["slow"]["deletion"] != callback.results["validate"]["slow"]["deletion"]  # NaN


def test_csv_and_tensorboard_loggers_get_png_figures(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    for logger in (CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")):
        callback = ExplainerCallback(
            {"gradcam": GradCAM(), "random": RandomSaliency()}, metrics=[Insertion(steps=4), Deletion(steps=4)], probe_size=6,
            log_images=3, print_table=False,
        )
        run = trainer([callback], max_epochs=2, logger=logger)
        run.fit(TinyModule(), TinyData())
        run.test(TinyModule(), TinyData(), verbose=False)
        files = sorted(p.name for p in Path(logger.log_dir).glob("*.png"))
        assert files == ["xai_test_curves_step000012.png", "xai_test_overlays_step000012.png"] or len(files) >= 4, files
        assert {"xai_validate_overlays_step000006.png", "xai_validate_curves_step000012.png"} <= set(files)
        assert all((Path(logger.log_dir) / f).stat().st_size > 5000 for f in files)
    events = list(Path(tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events and max(e.stat().st_size for e in events) > 20000  # the figures went into the event file too


def test_wandb_offline_run_holds_images_and_the_results_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(project="lit-xai-test", save_dir=str(tmp_path))
    callback = ExplainerCallback({"gradcam": GradCAM(), "random": RandomSaliency()}, metrics=[Deletion(steps=4)], probe_size=6, log_images=2)
    run = trainer([callback], max_epochs=1, logger=logger)
    run.fit(TinyModule(), TinyData())
    run.test(TinyModule(), TinyData(), verbose=False)
    logger.experiment.finish()
    media = list(tmp_path.rglob("media/images/**/*.png"))
    tables = list(tmp_path.rglob("media/table/**/*.table.json"))
    assert len(media) >= 5 and len(tables) == 2  # the results and the ranking tables
    texts = [t.read_text() for t in tables]
    assert any('"gradcam"' in t and "deletion_se" in t for t in texts)
    assert any('"gradcam"' in t and "krippendorff_alpha" in t for t in texts)


def test_localisation_metrics_read_the_masks_of_annotated_batches() -> None:
    from lit_xai.datamodules import ShapesDataModule
    from lit_xai.metrics import EnergyPointingGame, ModelRandomizationSimilarity, PointingGame
    from lit_xai.models import ImageClassifier

    data = ShapesDataModule(train_size=16, val_size=12, test_size=8, batch_size=4, return_annotations=True)
    model = ImageClassifier(num_classes=data.num_classes, input_shape=data.input_shape, width=8)
    callback = ExplainerCallback(
        {"gradcam": GradCAM(), "random": RandomSaliency()},
        metrics=[PointingGame(tolerance=0), EnergyPointingGame(), Deletion(steps=4)], probe_size=12, print_table=False,
    )
    run = trainer([callback])
    run.validate(model, data, verbose=False)
    run.test(model, data, verbose=False)
    assert not callback.errors
    dataset = data.dataset("test")
    maps = RandomSaliency()(model.eval(), torch.stack([dataset[i][0] for i in range(8)]))
    expected = EnergyPointingGame()
    expected.update(maps, torch.stack([dataset.mask(i) for i in range(8)]))
    assert callback.results["test"]["random"]["energy_pointing_game"] == pytest.approx(expected.compute().item(), abs=1e-6)
    assert 0 <= callback.results["validate"]["gradcam"]["pointing_game"] <= 1
    with pytest.raises(ValueError, match=r"has update\(model, inputs, targets, forward_args\).*Run this metric on its own"):
        ExplainerCallback(metrics=[ModelRandomizationSimilarity(GradCAM())])
    plain = ExplainerCallback({"random": RandomSaliency()}, metrics=[PointingGame()], probe_size=4, print_table=False)
    trainer([plain]).validate(TinyModule(), TinyData(), verbose=False)
    assert "masks_or_boxes" in plain.errors["random"]
