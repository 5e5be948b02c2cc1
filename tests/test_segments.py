"""lit_xai.segments: patch grids, SLIC superpixels, given id tensors, channel handling (C-MAPSS sensors)."""

from __future__ import annotations

import sys

import pytest
import torch

from lit_xai.segments import segment_counts, segments


def test_patches_are_a_row_major_grid_cut_at_the_border() -> None:
    inputs = torch.zeros(2, 3, 5, 7)
    ids = segments(inputs, "patches", patch_size=(2, 3))
    # rows 0-1, 2-3, 4 and columns 0-2, 3-5, 6: 3 x 3 patches, row-major
    expected = torch.tensor(
        [
            [0, 0, 0, 1, 1, 1, 2],
            [0, 0, 0, 1, 1, 1, 2],
            [3, 3, 3, 4, 4, 4, 5],
            [3, 3, 3, 4, 4, 4, 5],
            [6, 6, 6, 7, 7, 7, 8],
        ]
    )
    assert ids.dtype == torch.long and ids.shape == (2, 5, 7)
    assert torch.equal(ids[0], expected) and torch.equal(ids[1], expected)
    assert segment_counts(ids).tolist() == [9, 9]


def test_default_patches_cut_each_axis_in_eight() -> None:
    ids = segments(torch.zeros(1, 3, 32, 32))
    assert segment_counts(ids).tolist() == [64]
    assert torch.equal(ids[0, :4, :4], torch.zeros(4, 4, dtype=torch.long))
    assert ids[0, 4, 4].item() == 9 and ids[0, 31, 31].item() == 63
    # an axis shorter than 8 gets one-element patches
    assert segment_counts(segments(torch.zeros(1, 1, 3, 16))).tolist() == [3 * 8]


def test_series_segment_by_cycle_window_sensor_or_both() -> None:
    series = torch.randn(2, 3, 10)  # (B, sensors, cycles)
    windows = segments(series, patch_size=4)
    assert windows.shape == (2, 10)
    assert windows[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    sensors = segments(series, by="channel")
    assert sensors.shape == (2, 3, 10)
    assert torch.equal(sensors[1], torch.arange(3).view(3, 1).expand(3, 10))
    both = segments(series, patch_size=4, by="both")
    assert both.shape == (2, 3, 10)
    assert both[0, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert both[0, 2].tolist() == [6, 6, 6, 6, 7, 7, 7, 7, 8, 8]
    assert segment_counts(both).tolist() == [9, 9]


def test_given_tensor_is_checked_broadcast_and_renumbered_per_sample() -> None:
    inputs = torch.zeros(2, 1, 2, 3)
    given = torch.tensor([[[5, 5, 9], [9, 40, 40]], [[7, 7, 7], [2, 2, 2]]])
    ids = segments(inputs, given)
    assert ids.tolist() == [[[0, 0, 1], [1, 2, 2]], [[1, 1, 1], [0, 0, 0]]]
    assert segment_counts(ids).tolist() == [3, 2]
    one = segments(inputs, torch.tensor([[0, 3, 3], [1, 1, 0]]))  # one sample's (*spatial) for every sample
    assert one.shape == (2, 2, 3) and one[1].tolist() == [[0, 2, 2], [1, 1, 0]]
    per_channel = segments(torch.zeros(1, 2, 1, 2), torch.tensor([[[[4, 6]], [[6, 8]]]]))
    assert per_channel.tolist() == [[[[0, 1]], [[1, 2]]]]


def test_errors_say_what_was_wrong() -> None:
    inputs = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="integer segment ids"):
        segments(inputs, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="must have shape"):
        segments(inputs, torch.zeros(5, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=">= 0"):
        segments(inputs, -torch.ones(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="features must be one of"):
        segments(inputs, "quickshift")
    with pytest.raises(ValueError, match="patch_size"):
        segments(inputs, patch_size=(2, 0))
    with pytest.raises(ValueError, match="by must be one of"):
        segments(inputs, by="sensor")
    with pytest.raises(ValueError, match="images"):
        segments(torch.zeros(1, 2, 8), "slic")
    with pytest.raises(ValueError, match='by="space"'):
        segments(inputs, torch.zeros(2, 3, 4, 4, dtype=torch.long), by="both")


def test_slic_matches_scikit_image_called_as_quantus_does() -> None:
    skimage_segmentation = pytest.importorskip("skimage.segmentation")
    generator = torch.Generator().manual_seed(0)
    # 4 x 4 blocks of 8 x 8 pixels of one colour each, plus a little noise
    blocks = torch.rand(2, 3, 4, 4, generator=generator).repeat_interleave(8, 2).repeat_interleave(8, 3)
    images = blocks + 0.05 * torch.rand(2, 3, 32, 32, generator=generator)
    ids = segments(images, "slic", n_segments=16)
    assert ids.shape == (2, 32, 32)
    for image, got in zip(images, ids):
        reference = skimage_segmentation.slic(image.permute(1, 2, 0).double().numpy(), n_segments=16, start_label=0, channel_axis=-1)
        # same partition; our ids renumbered 0 .. n - 1 in the order of scikit-image's
        _, expected = torch.unique(torch.from_numpy(reference), return_inverse=True)
        assert torch.equal(got, expected)
    assert segment_counts(ids).tolist() == [16, 16]


def test_slic_without_scikit_image_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage.segmentation", None)
    with pytest.raises(ImportError, match="pip install scikit-image"):
        segments(torch.zeros(1, 3, 8, 8), "slic")
