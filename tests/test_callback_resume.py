"""Resumed and restarted runs: another probe_size, explainer set or dataset size resumes with one clear message
about what was kept and what was re-drawn; a corrupt or foreign callback state is an error naming the key."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lit_xai.callbacks import ExplainerCallback
from lit_xai.callbacks.probe import choose_probe
from lit_xai.explainers import GradCAM, RandomSaliency
from lit_xai.metrics import Deletion
from tests.helpers import TinyData, TinyModule, make_images


def trainer(callbacks: list[pl.Callback], max_epochs: int = 1, **kwargs: object) -> pl.Trainer:
    options = dict(
        max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


class BiggerValidation(TinyData):
    """TinyData with 30 validation images instead of 20 (a restarted run on a grown dataset)."""

    def __init__(self) -> None:
        super().__init__()
        self.val = TensorDataset(*make_images(30, 1))


def callback(**options: object) -> ExplainerCallback:
    explainers = options.pop("explainers", {"gradcam": GradCAM()})
    return ExplainerCallback(explainers, metrics=[Deletion(steps=2)], print_table=False, log_images=0, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    directory = tmp_path_factory.mktemp("ckpt")
    pl.seed_everything(0)
    first = callback(probe_size=7, probe_seed=1, explainers={"gradcam": GradCAM(), "random": RandomSaliency()})
    trainer([first, ModelCheckpoint(dirpath=directory, filename="last")], enable_checkpointing=True).fit(TinyModule(), TinyData())
    state = torch.load(directory / "last.ckpt", weights_only=False)["callbacks"][first.state_key]
    assert state["probe_size"] == 7 and state["dataset_size"] == 20 and state["explainers"] == ["gradcam", "random"]
    assert set(state["speeds"]) == {"gradcam", "random"} and all(v > 0 for v in state["speeds"].values())
    return directory / "last.ckpt", state["probe_indices"]


def resume(path: Path, resumed: ExplainerCallback, data: pl.LightningDataModule | None = None) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer([resumed], max_epochs=2).fit(TinyModule(), data or TinyData(), ckpt_path=path)
    return [w for w in record if "ExplainerCallback resumed" in str(w.message)]


def test_same_settings_resume_silently_with_the_same_probe(checkpoint: tuple[Path, list[int]]) -> None:
    path, probe = checkpoint
    resumed = callback(probe_size=7, probe_seed=1, explainers={"gradcam": GradCAM(), "random": RandomSaliency()})
    assert resume(path, resumed) == []
    assert resumed.probe_indices.tolist() == probe


def test_another_probe_size_redraws_the_probe_and_says_so(checkpoint: tuple[Path, list[int]]) -> None:
    path, probe = checkpoint
    resumed = callback(probe_size=5, probe_seed=1, explainers={"gradcam": GradCAM(), "random": RandomSaliency()})
    (message,) = resume(path, resumed)
    assert "re-drawn: the whole probe, with probe_size=5 and probe_seed=1, because probe_size is 5, the checkpoint's was 7" in str(message.message)
    labels = TinyData().val.tensors[1]
    assert resumed.probe_indices.tolist() == choose_probe(20, 5, 1, labels).tolist()


def test_another_dataset_size_redraws_the_probe_and_says_so(checkpoint: tuple[Path, list[int]]) -> None:
    path, _ = checkpoint
    resumed = callback(probe_size=7, probe_seed=1, explainers={"gradcam": GradCAM(), "random": RandomSaliency()})
    (message,) = resume(path, resumed, BiggerValidation())
    assert "the validation set has 30 samples, the checkpoint's probe was drawn from 20" in str(message.message)
    assert resumed.probe_indices.tolist() == choose_probe(30, 7, 1, BiggerValidation().val.tensors[1]).tolist()


def test_another_explainer_set_keeps_the_probe_and_common_speeds(checkpoint: tuple[Path, list[int]]) -> None:
    path, probe = checkpoint
    resumed = callback(probe_size=7, probe_seed=2, explainers={"gradcam": GradCAM(), "center": RandomSaliency()})
    (message,) = resume(path, resumed)
    text = str(message.message)
    assert "kept: the probe of 7 samples drawn with probe_seed=1 (probe_seed=2 is not used" in text
    assert "the measured speeds of ['gradcam']" in text
    assert "re-drawn: the speeds of the new explainers ['center']" in text
    assert "dropped: the state of the checkpoint's explainers ['random'], no longer configured" in text
    assert resumed.probe_indices.tolist() == probe


@pytest.mark.parametrize(
    ("state", "key"),
    [
        ({"probe_indices": "0,1,2"}, "probe_indices"),
        ({"probe_indices": [3, 3]}, "probe_indices"),
        ({"probe_indices": [1, 2], "probe_size": 0}, "probe_size"),
        ({"probe_indices": [1, 2], "speeds": {"gradcam": "fast"}}, "speeds"),
        ({"best_model_score": 0.5, "best_model_path": "x.ckpt"}, "best_model_score"),  # ModelCheckpoint's state
        ([1, 2, 3], "<state>"),
    ],
)
def test_corrupt_or_foreign_state_is_an_error_naming_the_key(state: object, key: str) -> None:
    with pytest.raises(ValueError, match=rf"ExplainerCallback state is corrupt or not this callback's: key '{key}' must be"):
        callback().load_state_dict(state)  # type: ignore[arg-type]


def test_corrupt_state_in_a_checkpoint_file_stops_the_resume_with_the_key(checkpoint: tuple[Path, list[int]], tmp_path: Path) -> None:
    path, _ = checkpoint
    saved = torch.load(path, weights_only=False)
    resumed = callback(probe_size=7)
    saved["callbacks"][resumed.state_key]["probe_indices"] = [-1, 4]
    broken = tmp_path / "broken.ckpt"
    torch.save(saved, broken)
    with pytest.raises(ValueError, match=r"key 'probe_indices' must be None or a non-empty list of sample indices >= 0, got \[-1, 4\].*delete checkpoint\['callbacks'\]\['ExplainerCallback'\]"):
        trainer([resumed], max_epochs=2).fit(TinyModule(), TinyData(), ckpt_path=broken)


def test_checkpoint_of_an_older_version_keeps_a_probe_that_fits() -> None:
    old = callback(probe_size=3)
    old.load_state_dict({"probe_indices": [2, 5, 9]})
    trainer([old]).validate(TinyModule(), TinyData(), verbose=False)
    assert old.probe_indices.tolist() == [2, 5, 9]
