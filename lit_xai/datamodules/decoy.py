"""How much a shapes model relies on the decoy, measured by intervention (Decoy-MNIST, Ross et al. 2017).

The ground truth of the decoy benchmark is interventional, not assumed: every test image is rendered
again with one thing changed and everything else (position, size, colour, distractors, corner, noise)
kept, and the model's prediction on the copy is compared with its prediction on the original:

    decoy_changed = mean_i 1[f(x_i with decoy class c_i + s_i) != f(x_i)]
    shape_changed = mean_i 1[f(x_i with shape class y_i + s_i) != f(x_i)]          (classes mod K)

for a shift s_i drawn uniformly from 1 .. K - 1 per image (seeded), and the share of images whose
prediction changed to the new class (`decoy_followed`, `shape_followed`, at most the changed share). A model that reads the shape has
shape_changed near its accuracy and decoy_changed near 0; a model that reads the decoy the reverse.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from lit_xai.datamodules.shapes import ShapesDataset, render_shapes
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import model_outputs


class InterventionRates(NamedTuple):
    """Shares of predictions that change (and that follow the new class) when only the decoy, or only the
    shape, of each image is changed; `images` the images used."""

    decoy_changed: float
    decoy_followed: float
    shape_changed: float
    shape_followed: float
    images: int


def predictions(model: nn.Module, images: Tensor, batch_size: int) -> Tensor:
    """The model's argmax classes of `images`, in eval mode, without gradients, state restored."""
    device = next(model.parameters()).device
    chunks = []
    with torch.no_grad(), preserved_model_state(model):
        for start in range(0, len(images), batch_size):
            chunks.append(model_outputs(model, images[start : start + batch_size].to(device)).argmax(dim=1).cpu())
    return torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.long)


def intervention_rates(model: nn.Module, dataset: ShapesDataset, limit: int | None = None, seed: int = 0, batch_size: int = 256) -> InterventionRates:
    """Intervene on the decoy and on the shape of the first `limit` (default all) images of `dataset`
    (a `ShapesDataset` with a decoy) and measure how the model's predictions move (module docstring)."""
    if not isinstance(dataset, ShapesDataset) or dataset.decoy is None:
        raise ValueError("intervention_rates needs a ShapesDataset with a decoy (ShapesDataModule(decoy=...).dataset('test'))")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count < 1:
        raise ValueError(f"intervention_rates needs at least one image, the dataset has {len(dataset)} and limit is {limit}")
    num_classes = dataset.settings[1]
    shifts = torch.randint(1, num_classes, (count,), generator=torch.Generator().manual_seed(seed))
    new_decoys = (dataset.decoy_classes[:count] + shifts) % num_classes
    new_shapes = (dataset.labels[:count] + shifts) % num_classes
    original = predictions(model, dataset.images[:count], batch_size)
    rates = []
    for changed in ({"decoy_classes": new_decoys}, {"shapes": new_shapes, "decoy_classes": dataset.decoy_classes[:count]}):
        raw = render_shapes(range(count), dataset.split, *dataset.settings, decoy=dataset.decoy, decoy_size=dataset.decoy_size, **changed).images
        moved = predictions(model, (raw - dataset.mean) / dataset.std, batch_size)
        target = changed.get("shapes", new_decoys)
        rates += [float((moved != original).double().mean()), float(((moved != original) & (moved == target)).double().mean())]
    return InterventionRates(*rates, count)
