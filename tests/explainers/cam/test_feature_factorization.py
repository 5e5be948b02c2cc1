"""Deep Feature Factorization against pytorch-grad-cam's DeepFeatureFactorization (NMF started alike)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pytorch_grad_cam import DeepFeatureFactorization
from pytorch_grad_cam.feature_factorization import deep_feature_factorization as pgc_dff
from sklearn.decomposition import NMF

from lit_xai.explainers.cam.factorization import deep_feature_factorization, nmf, random_nmf_init
from tests.explainers.cam.test_cam_parity_more_methods import inputs_for, make_resnet


class SameStartNMF:
    """scikit-learn's NMF as pytorch-grad-cam builds it (`init="random", random_state=0`), started from
    lit-xai's random W, H (scikit-learn would draw them from numpy's generator) in float64."""

    def __init__(self, n_components: int, init: str, random_state: int) -> None:
        self.n_components = n_components

    def fit_transform(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.float64(matrix)
        w, h = random_nmf_init(torch.from_numpy(matrix), self.n_components, seed=0)
        model = NMF(n_components=self.n_components, init="custom", solver="cd", max_iter=200, tol=1e-4)
        result = model.fit_transform(matrix, W=w.numpy().copy(), H=h.numpy().copy())
        self.components_ = model.components_
        return result


@pytest.fixture
def same_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgc_dff, "NMF", SameStartNMF)
    original = pgc_dff.dff
    monkeypatch.setattr(pgc_dff, "dff", lambda activations, n_components: original(np.float64(activations), n_components))


def test_nmf_matches_scikit_learn_coordinate_descent() -> None:
    matrix = torch.rand(12, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w, h = nmf(matrix, 3, seed=2)
    w0, h0 = random_nmf_init(matrix, 3, seed=2)
    reference = NMF(n_components=3, init="custom", solver="cd", max_iter=200, tol=1e-4)
    expected_w = reference.fit_transform(matrix.numpy(), W=w0.numpy().copy(), H=h0.numpy().copy())
    np.testing.assert_allclose(w.numpy(), expected_w, atol=1e-8)
    np.testing.assert_allclose(h.numpy(), reference.components_, atol=1e-8)
    assert (w >= 0).all() and (h >= 0).all()


@pytest.mark.parametrize(("layer", "size", "head"), [("layer2", 32, None), ("layer4", 64, "fc")])
def test_matches_pytorch_grad_cam(layer: str, size: int, head: str | None, same_start: None) -> None:
    model = make_resnet()
    inputs = inputs_for((2, 3, size, size))
    ours = deep_feature_factorization(model, inputs, layer, components=4, head=head)
    lib_model = copy.deepcopy(model)
    computation = (lambda concepts: lib_model.fc(concepts)) if head else None  # noqa: E731
    dff = DeepFeatureFactorization(lib_model, lib_model.get_submodule(layer), computation_on_concepts=computation)
    result = dff(inputs, n_components=4)
    concepts, maps = result[0], np.stack(result[1])
    np.testing.assert_allclose(ours.concepts.numpy(), concepts, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ours.maps.numpy(), maps, atol=1e-4)
    if head:
        np.testing.assert_allclose(ours.scores.numpy(), result[2], atol=1e-4, rtol=1e-4)
    else:
        assert ours.scores is None
    assert all(not m._forward_hooks for m in model.modules())


def test_errors_say_what_was_wrong() -> None:
    model = make_resnet()
    with pytest.raises(ValueError, match="components must be a positive int"):
        deep_feature_factorization(model, inputs_for(), "layer2", components=0)
    with pytest.raises(ValueError, match="head must be"):
        deep_feature_factorization(model, inputs_for(), "layer2", head=3)  # type: ignore[arg-type]
