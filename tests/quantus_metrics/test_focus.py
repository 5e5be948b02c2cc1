"""Focus: mosaics built from the batch, the score against quantus' Focus on the same mosaics and maps, and
closed forms with an explainer that returns the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_xai.explainers import InputXGradient
from lit_xai.metrics import Focus
from lit_xai.metrics.focus import quadrant_masks

quantus = pytest.importorskip("quantus")


def pooled_convnet() -> torch.nn.Module:
    """Global pooling: takes 12 x 12 mosaics of 6 x 6 images."""
    torch.manual_seed(13)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ELU(), torch.nn.AdaptiveMaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 3)
    ).eval()


def brightness(model: torch.nn.Module, inputs: torch.Tensor, targets: object = None) -> torch.Tensor:
    """A map equal to the image (first channel)."""
    return inputs[:, 0]


def test_closed_form_with_an_explainer_that_returns_the_image() -> None:
    """Class-0 images are 1 everywhere, the others 0: a class-0 mosaic has all its relevance on its two
    class-0 images (Focus 1), a class-1 or class-2 mosaic none (0)."""
    model = pooled_convnet()
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    inputs = ((labels == 0) * (1 + torch.arange(6) * 1e-3)).float().view(6, 1, 1, 1).expand(6, 1, 6, 6).clone()
    metric = Focus(explainer=brightness)
    metric.update(model, inputs, inputs[:, 0], labels)
    expected = (labels == 0).double()
    assert torch.allclose(metric.last_values, expected, atol=1e-6)
    built, flags, members, anchors = metric.mosaics(inputs, labels)
    assert anchors.tolist() == list(range(6)) and (flags.sum(dim=1) == 2).all()
    for b in range(6):  # two members of the anchor's class, flagged, two of other classes
        assert b in members[b].tolist()
        assert labels[members[b]][flags[b].bool()].eq(labels[b]).all() and labels[members[b]][~flags[b].bool()].ne(labels[b]).all()
        for k, (row, col) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            assert torch.equal(built[b, :, row * 6 : row * 6 + 6, col * 6 : col * 6 + 6], inputs[members[b, k]])
    single = Focus(explainer=brightness)
    single.update(model, inputs[:2][labels[:2] == 0], inputs[:1, 0], labels[:1])  # one class only: no mosaic
    assert single.last_values.isnan().all() and single.skipped_samples().item() == 1


def test_score_equals_quantus_focus_on_the_same_mosaics() -> None:
    model = pooled_convnet()
    generator = torch.Generator().manual_seed(3)
    inputs, labels = torch.randn(5, 1, 6, 6, generator=generator), torch.tensor([0, 1, 2, 0, 1])
    explainer = InputXGradient(reduce="sum")
    metric = Focus(explainer=explainer)
    metric.update(model, inputs, inputs[:, 0], labels)
    built, flags, _, anchors = metric.mosaics(inputs, labels)
    maps = explainer(model, built, labels[anchors])
    reference = quantus.Focus(disable_warnings=True, display_progressbar=False)(
        model=model, x_batch=built.numpy(), y_batch=labels[anchors].numpy(), a_batch=maps.unsqueeze(1).detach().numpy(),
        custom_batch=[tuple(f) for f in flags.tolist()], device="cpu",
    )
    np.testing.assert_allclose(metric.last_values.numpy(), np.asarray(reference, dtype=np.float64), atol=1e-6)
    assert quadrant_masks(flags[:1], 6, 6).sum().item() == 72
