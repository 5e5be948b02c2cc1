"""The callback on the user's own modules and batches (issue 24): dict batches, two inputs, segmentation with
region targets, multi-label and channels-last series; `fit` (its validation rounds explain) on 1 and 2 processes
(equal: the learning rate is 0, so both see the same weights; one spawn per case keeps the test short), then `test`."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lit_xai.callbacks import ExplainerCallback, XaiBatch
from lit_xai.explainers import GradCAM, RandomSaliency, Saliency
from lit_xai.metrics import Deletion, Insertion


class CaseData(Dataset):
    """16 samples of one case's batch format (all built from one seeded generator)."""

    def __init__(self, case: str, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.case, n = case, 16
        if case == "series":
            self.x = torch.randn(n, 12, 3, generator=g)  # (T, C) per sample: channels last
            self.y = self.x[:, :, 0].mean(dim=1) + 1.0
        else:
            self.x = torch.randn(n, 3, 8, 8, generator=g)
            self.y = torch.randint(0, 3, (n,), generator=g)
        self.meta = torch.randn(n, 2, generator=g)
        self.masks = torch.zeros(n, 8, 8)
        rows, cols = torch.randint(0, 4, (2, n), generator=g)
        for i in range(n):
            self.masks[i, rows[i] : rows[i] + 4, cols[i] : cols[i] + 4] = 1
        self.targets = self.y if case != "series" else None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> object:
        if self.case in ("dict", "two_inputs"):
            return {"image": self.x[i], "label": self.y[i], "meta": self.meta[i]}
        if self.case == "segmentation":
            return self.x[i], self.y[i], self.masks[i]
        if self.case == "multilabel":
            return self.x[i], F.one_hot(self.y[i], 3).float()
        return self.x[i], self.y[i]


class CaseModule(pl.LightningModule):
    def __init__(self, case: str, lr: float = 0.05) -> None:
        super().__init__()
        self.case, self.lr = case, lr
        if case == "series":
            self.lstm = nn.LSTM(3, 6, batch_first=True)
            self.head = nn.Linear(6, 1)
        else:
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.table = nn.Linear(2, 4) if case == "two_inputs" else None
            self.head = nn.Conv2d(4, 3, 1) if case == "segmentation" else nn.Linear(4, 3)

    def forward(self, x: Tensor, meta: Tensor | None = None) -> Tensor:
        if self.case == "series":
            return self.head(self.lstm(x)[0][:, -1]).squeeze(1)
        a = torch.relu(self.conv(x))
        if self.case == "segmentation":
            return self.head(a)
        pooled = a.mean(dim=(2, 3))
        if meta is not None:
            pooled = pooled * torch.tanh(self.table(meta))
        return self.head(pooled)

    def loss(self, batch: object) -> Tensor:
        if isinstance(batch, dict):
            out = self(batch["image"], batch["meta"] if self.case == "two_inputs" else None)
            return F.cross_entropy(out, batch["label"])
        x, y = batch[0], batch[1]
        if self.case == "segmentation":
            return F.cross_entropy(self(x), y.view(-1, 1, 1).expand(-1, 8, 8))
        if self.case == "multilabel":
            return F.binary_cross_entropy_with_logits(self(x), y)
        if self.case == "series":
            return F.mse_loss(self(x), y)
        return F.cross_entropy(self(x), y)

    def training_step(self, batch: object, batch_idx: int) -> Tensor:
        return self.loss(batch)

    def validation_step(self, batch: object, batch_idx: int) -> None:
        self.log("val/loss", self.loss(batch))

    def test_step(self, batch: object, batch_idx: int) -> None:
        self.log("test/loss", self.loss(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class CaseDataModule(pl.LightningDataModule):
    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case

    def train_dataloader(self) -> DataLoader:
        return DataLoader(CaseData(self.case, 0), batch_size=4)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(CaseData(self.case, 1), batch_size=4)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(CaseData(self.case, 1), batch_size=4)


def callback_for(case: str) -> ExplainerCallback:
    options: dict[str, object] = {}
    explainers: dict[str, object] = {"saliency": Saliency(), "random": RandomSaliency()}
    if case == "dict":
        options["batch_keys"] = {"inputs": "image", "labels": "label"}
    if case == "two_inputs":
        options["batch_keys"] = {"inputs": "image", "labels": "label", "forward_args": ["meta"]}
    if case == "multilabel":
        options["score"] = "sigmoid"
    if case == "series":
        options["channel_dim"] = -1
        explainers["gradcam"] = GradCAM("lstm")
    else:
        explainers["gradcam"] = GradCAM("conv")
    return ExplainerCallback(
        explainers=explainers, metrics=[Insertion(steps=4), Deletion(steps=4)], probe_size=8, log_images=0, print_table=False,
        targets="label" if case == "segmentation" else "predicted", **options,
    )


def trainer(case: str, devices: int = 1, **options: object) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback_for(case)], **options,
    )


def xai_values(run: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in run.callback_metrics.items() if k.startswith("xai/") and "seconds" not in k}


def fitted(case: str, devices: int) -> dict[str, float]:
    pl.seed_everything(0)
    run = trainer(case, devices, max_epochs=1)
    run.fit(CaseModule(case, lr=0.0), CaseDataModule(case))
    return xai_values(run)


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
@pytest.mark.parametrize("case", ["dict", "two_inputs", "segmentation", "multilabel", "series"])
def test_fit_and_test_with_the_users_batches_and_outputs_on_one_and_two_processes(case: str) -> None:
    expected = {f"xai/{e}/{m}" for e in ("saliency", "random", "gradcam") for m in ("insertion", "deletion")}
    pl.seed_everything(0)
    run = trainer(case)
    run.test(CaseModule(case), CaseDataModule(case), verbose=False)
    tested = xai_values(run)
    assert set(tested) == expected and all(math.isfinite(v) for v in tested.values())
    single, double = fitted(case, 1), fitted(case, 2)
    assert set(single) == expected and all(math.isfinite(v) for v in single.values())
    for key, value in single.items():
        assert double[key] == pytest.approx(value, abs=1e-6), key


def test_a_batch_the_callback_cannot_read_is_an_error_naming_the_options() -> None:
    callback = ExplainerCallback(explainers={"random": RandomSaliency()}, probe_size=4, log_images=0, print_table=False)
    with pytest.raises(ValueError, match="batch_keys.*batch_transform"):
        callback._read({"image": torch.zeros(2, 3, 8, 8), "label": torch.zeros(2)})
    keyed = ExplainerCallback(explainers={"random": RandomSaliency()}, batch_keys={"inputs": "pixels"}, print_table=False)
    with pytest.raises(ValueError, match="not \\['pixels'\\] named in batch_keys"):
        keyed._read({"image": torch.zeros(2, 3, 8, 8)})
    transformed = ExplainerCallback(
        explainers={"random": RandomSaliency()}, print_table=False,
        batch_transform=lambda b: XaiBatch(b["pixels"], b["y"], None, b["extra"]),
    )
    read = transformed._read({"pixels": torch.ones(2, 1, 4, 4), "y": torch.tensor([0, 1]), "extra": torch.zeros(2, 5)})
    assert read.forward_args is not None and read.forward_args[0].shape == (2, 5) and read.labels.tolist() == [0, 1]


def test_a_failing_target_pass_is_reported_like_an_explainer_failure_and_fit_goes_on() -> None:
    callback = ExplainerCallback(
        explainers={"random": RandomSaliency()}, metrics=[Deletion(steps=2)], probe_size=4, log_images=0, print_table=False,
        score="raw",  # a 3-output model scored raw has no argmax target: the target pass fails
    )
    pl.seed_everything(0)
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback],
    )
    with pytest.warns(UserWarning, match="target pass failed.*multi-output regressor"):
        trainer.fit(CaseModule("multilabel"), CaseDataModule("multilabel"))
    assert trainer.state.finished and float(trainer.callback_metrics["xai/random/failed"]) == 1.0
