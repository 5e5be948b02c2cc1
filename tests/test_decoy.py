"""The decoy shortcut benchmark: Decoy-MNIST-style patches on the shapes, DecoyMass, and the interventional
ground truth (a model trained with the decoy follows it, one trained without ignores it)."""

from __future__ import annotations

import functools
import warnings

import lightning.pytorch as pl
import pytest
import torch

from lit_xai.datamodules import ShapesDataModule, ShapesDataset
from lit_xai.datamodules.decoy import InterventionRates, intervention_rates
from lit_xai.datamodules.shapes import decoy_level, render_shapes
from lit_xai.metrics import DecoyMass, EnergyPointingGame
from lit_xai.models import ImageClassifier
from tests.shapes_helpers import single_thread


def test_decoy_patch_is_added_to_the_same_sample_at_a_free_corner() -> None:
    plain = render_shapes(range(200), "train", noise=0.0)
    decoyed = render_shapes(range(200), "train", noise=0.0, decoy=1.0)
    masks = decoyed.decoy_masks
    assert masks.flatten(1).sum(1).tolist() == [16] * 200  # 32 px images: a 4 x 4 patch
    corners = torch.stack([masks[:, :4, :4].all((1, 2)), masks[:, :4, -4:].all((1, 2)), masks[:, -4:, :4].all((1, 2)), masks[:, -4:, -4:].all((1, 2))], 1)
    assert corners.sum(1).tolist() == [1] * 200 and (corners.sum(0) > 30).all()  # one corner each, all four used
    assert not (masks & plain.masks).any()  # never on the shape
    outside = ~masks.unsqueeze(1).expand_as(plain.images)
    assert torch.equal(decoyed.images[outside], plain.images[outside])  # the rest of the image is the same sample
    assert torch.equal(decoyed.decoy_classes, decoyed.labels)  # decoy = 1: the patch encodes the label
    inside = decoyed.images.permute(1, 0, 2, 3)[:, masks].view(3, 200, 16)
    expected = decoy_level(decoyed.labels, 4)
    assert torch.equal(inside, expected.view(1, 200, 1).expand(3, 200, 16))
    assert decoy_level(torch.arange(4), 4).tolist() == pytest.approx([-0.3, -0.7, -1.1, -1.5])
    assert torch.equal(plain.decoy_classes, torch.full((200,), -1)) and not plain.decoy_masks.any()


def test_decoy_correlation_in_training_and_random_at_test() -> None:
    share = {}
    for decoy in (0.0, 0.5, 1.0):
        for split in ("train", "test"):
            rendered = render_shapes(range(2000), split, decoy=decoy, noise=0.0, distractors=0)
            share[(decoy, split)] = float((rendered.decoy_classes == rendered.labels).double().mean())
    # a random decoy matches the label with probability 1/4; a share p of encoded ones gives p + (1 - p) / 4
    assert share[(1.0, "train")] == 1.0
    assert share[(0.5, "train")] == pytest.approx(0.5 + 0.5 / 4, abs=0.03)
    assert share[(0.0, "train")] == pytest.approx(0.25, abs=0.03)
    for decoy in (0.0, 0.5, 1.0):
        assert share[(decoy, "test")] == pytest.approx(0.25, abs=0.03)
    # the same test images whatever the training correlation
    assert torch.equal(render_shapes(range(50), "test", decoy=0.0).images, render_shapes(range(50), "test", decoy=1.0).images)


def test_interventions_change_only_the_decoy_or_only_the_shape() -> None:
    original = render_shapes(range(64), "test", decoy=0.0, noise=0.0)
    other_decoy = render_shapes(range(64), "test", decoy=0.0, noise=0.0, decoy_classes=(original.decoy_classes + 1) % 4)
    changed = (other_decoy.images != original.images).any(1)
    assert torch.equal(changed, original.decoy_masks)
    other_shape = render_shapes(range(64), "test", decoy=0.0, noise=0.0, shapes=(original.labels + 1) % 4, decoy_classes=original.decoy_classes)
    changed = (other_shape.images != original.images).any(1)
    assert (changed <= (original.masks | other_shape.masks)).all() and changed.any(dim=(1, 2)).all()
    assert torch.equal(other_shape.labels, (original.labels + 1) % 4)


def test_annotations_and_bad_arguments() -> None:
    data = ShapesDataModule(train_size=8, val_size=8, test_size=8, decoy=1.0, return_annotations=True, annotated="decoy")
    test = data.dataset("test")
    image, label, mask, box = test[3]
    assert torch.equal(mask, test.decoy_masks[3]) and mask.sum() == 16
    rows, cols = mask.nonzero().unbind(1)
    assert box.tolist() == [cols.min().item(), rows.min().item(), cols.max().item(), rows.max().item()]
    shape_data = ShapesDataModule(train_size=8, val_size=8, test_size=8, decoy=1.0, return_annotations=True)
    assert not (shape_data.dataset("test")[3][2] & mask).any()  # the default annotation is the shape
    with pytest.raises(ValueError, match="decoy must be None"):
        ShapesDataModule(decoy=1.5)
    with pytest.raises(ValueError, match="decoy_size must be None"):
        ShapesDataModule(decoy=0.5, decoy_size=9)
    with pytest.raises(ValueError, match="annotated='decoy' needs a decoy"):
        ShapesDataModule(annotated="decoy")
    with pytest.raises(ValueError, match="needs a ShapesDataset with a decoy"):
        intervention_rates(torch.nn.Linear(2, 2), ShapesDataset(4, "test"))


def test_decoy_mass_by_hand() -> None:
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True
    saliency = torch.zeros(2, 4, 4)
    saliency[0, 0, 0], saliency[0, 3, 3], saliency[0, 2, 2] = 3.0, 1.0, -5.0  # negative values carry no mass
    saliency[1] = 1.0  # uniform: the decoy's area share
    metric = DecoyMass()
    metric.update(saliency, masks)
    assert metric.last_values.tolist() == pytest.approx([0.75, 0.25])
    assert metric.compute().item() == pytest.approx(0.5) and metric.chance().item() == pytest.approx(0.25)
    reference = EnergyPointingGame()
    reference.update(saliency, masks)
    assert torch.equal(reference.last_values, metric.last_values)
    assert DecoyMass.higher_is_better is None


@functools.lru_cache(maxsize=2)
def trained(decoy: float) -> tuple[ImageClassifier, ShapesDataModule]:
    """small_cnn (width 16), 6 epochs on 1,500 training shapes whose decoy encodes the label in a share `decoy`."""
    data = ShapesDataModule(train_size=1500, val_size=32, test_size=200, batch_size=32, seed=0, decoy=decoy)
    with single_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.seed_everything(0, verbose=False)
        model = ImageClassifier(num_classes=4, input_shape=data.input_shape, width=16, lr=5e-3)
        pl.Trainer(
            max_epochs=6, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        ).fit(model, data)
    return model.eval(), data


def test_a_model_trained_with_the_decoy_follows_it_and_one_without_ignores_it() -> None:
    with single_thread():
        follows = intervention_rates(*(lambda m, d: (m, d.dataset("test")))(*trained(1.0)))
        ignores = intervention_rates(*(lambda m, d: (m, d.dataset("test")))(*trained(0.0)))
    assert isinstance(follows, InterventionRates) and follows.images == 200
    assert follows.decoy_changed > 0.9 and follows.decoy_followed > 0.9  # predictions follow the decoy
    assert follows.shape_changed < 0.1
    assert ignores.decoy_changed < 0.05  # almost none move with the decoy...
    assert ignores.shape_changed > 0.9 and ignores.shape_followed > 0.9  # ...and nearly all with the shape
    assert follows.decoy_followed <= follows.decoy_changed
