"""Image datamodules on tiny fixtures in the real on-disk formats: counts, labels, names, transforms, boxes,
seeded splits, baseline banks and the errors for missing or malformed data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision.datasets.cifar

from lit_xai.callbacks.probe import dataset_labels
from lit_xai.datamodules import (
    CIFARDataModule,
    CUBDataModule,
    DatasetNotFoundError,
    Food101DataModule,
    ImageNetDataModule,
    MalformedDatasetError,
    VisionDataModule,
    pixel_centre_boxes,
    seeded_split,
)
from lit_xai.datamodules.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES
from tests.dataset_fixtures import (
    one_torch_thread,  # noqa: F401  (autouse)
    CUB_IMAGES,
    FOOD_CLASSES,
    write_cifar10,
    write_cifar100,
    write_cub,
    write_food101,
    write_imagenet,
)


@pytest.fixture
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture's CIFAR files cannot match the real md5 sums: skip torchvision's check (in the test only)."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)


def pixels(dm: VisionDataModule, image: torch.Tensor) -> torch.Tensor:
    """Undo the datamodule's normalisation: values back in 0..255."""
    mean = torch.tensor(dm.mean).view(3, 1, 1)
    std = torch.tensor(dm.std).view(3, 1, 1)
    return (image * std + mean) * 255


def label_from_red(dm: VisionDataModule, image: torch.Tensor) -> int:
    """The fixture paints class c with red = 40 + 60 c."""
    return round((pixels(dm, image)[0].mean().item() - 40) / 60)


# ---- ImageNet ----------------------------------------------------------------------------------------
def test_imagenet_torchvision_layout(tmp_path: Path) -> None:
    root = write_imagenet(tmp_path / "imagenet")
    dm = ImageNetDataModule(root, image_size=32, batch_size=4)
    # metadata only (meta.bin): no image has been read yet
    assert dm.num_classes == 3 and dm.input_shape == (3, 32, 32)
    assert dm.class_names == ["tench", "goldfish", "great white shark"]
    assert dm.wnids == ["n01440764", "n01443537", "n01484850"]
    dm.setup("fit")
    train, val, test = dm.dataset("train"), dm.dataset("val"), dm.dataset("test")
    assert (len(train), len(val), len(test)) == (12, 6, 6)
    assert [val[i][1] for i in range(6)] == [0, 0, 1, 1, 2, 2]
    # labels without reading images (the explainer callback stratifies its probe with them)
    assert val.targets == [0, 0, 1, 1, 2, 2] and dataset_labels(val).tolist() == [0, 0, 1, 1, 2, 2]
    # val/test are resized + centre-cropped (deterministic): the colour gives the label back
    for image, label in (val[i] for i in range(6)):
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert label_from_red(dm, image) == label
    assert torch.equal(test[3][0], val[3][0])  # test = the official validation split
    assert sorted(train.dataset.targets) == [0] * 4 + [1] * 4 + [2] * 4
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (4, 3, 32, 32) and batch[1].dtype == torch.int64


def test_imagenet_plain_image_folder_and_val_only(tmp_path: Path) -> None:
    root = write_imagenet(tmp_path / "folder", torchvision_layout=False)
    dm = ImageNetDataModule(root, image_size=24)
    assert dm.class_names == ["cat", "dog", "fox"] and dm.num_classes == 3
    assert len(dm.dataset("train")) == 12 and len(dm.dataset("val")) == 6
    # an evaluation-only copy (val/ alone) works for test, and baselines fall back to val with a warning
    import shutil

    shutil.rmtree(root / "train")
    dm = ImageNetDataModule(root, image_size=24)
    dm.setup("test")
    assert len(dm.dataset("test")) == 6 and dm.num_classes == 3
    with pytest.warns(UserWarning, match="baselines come from the validation split"):
        bank = dm.baseline_bank(4)
    assert bank.shape == (4, 3, 24, 24)
    with pytest.raises(DatasetNotFoundError, match="train split not found"):
        dm.setup("fit")


def test_imagenet_missing_and_malformed(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as info:
        ImageNetDataModule(missing).num_classes
    message = str(info.value)
    assert str(missing) in message and "meta.bin" in message and "train/<wnid>/*.JPEG" in message
    assert "ImageFolder" in message and "image-net.org" in message

    root = write_imagenet(tmp_path / "imagenet")
    (root / "val" / "n01484850").rename(root / "val" / "n09999999")  # a class folder meta.bin does not know
    dm = ImageNetDataModule(root, image_size=32)
    with pytest.raises(MalformedDatasetError, match=r"3 class folders but .*meta.bin lists 3 classes \(extra e.g. \['n09999999'\]"):
        dm.setup("test")
    (root / "meta.bin").write_bytes(b"not a torch file")
    with pytest.raises(MalformedDatasetError, match="cannot read .*meta.bin"):
        ImageNetDataModule(root).class_names


# ---- CIFAR -------------------------------------------------------------------------------------------
def test_cifar10_counts_labels_and_seeded_split(tmp_path: Path, no_md5: None) -> None:
    root = write_cifar10(tmp_path)
    dm = CIFARDataModule(root, variant=10, val_fraction=0.25, seed=3, augment=False)
    assert dm.num_classes == 10 and dm.input_shape == (3, 32, 32) and dm.class_names == CIFAR10_CLASSES
    dm.setup()
    train, val, test = dm.dataset("train"), dm.dataset("val"), dm.dataset("test")
    assert (len(train), len(val), len(test)) == (15, 5, 6)
    # the split: seeded, disjoint, covering the 20 training images
    expected_train, expected_val = seeded_split(20, 0.25, 3)
    assert train.indices == expected_train and val.indices == expected_val
    assert not set(train.indices) & set(val.indices) and sorted(train.indices + val.indices) == list(range(20))
    again = CIFARDataModule(root, variant=10, val_fraction=0.25, seed=3)
    assert again.dataset("val").indices == val.indices
    assert CIFARDataModule(root, variant=10, val_fraction=0.25, seed=4).dataset("val").indices != val.indices
    # the fixture's green channel is the image's index over the 5 batches, red encodes the label (i % 4)
    assert val.targets == [index % 4 for index in val.indices] == [val[k][1] for k in range(len(val))]
    for k, index in enumerate(val.indices):
        image, label = val[k]
        assert label == index % 4 and label_from_red(dm, image) == label
        assert pixels(dm, image)[1].mean().item() == pytest.approx(index, abs=1e-3)
    assert [test[i][1] for i in range(6)] == [0, 1, 2, 3, 0, 1]
    assert pixels(dm, test[5][0])[1].mean().item() == pytest.approx(105, abs=1e-3)
    # normalisation with CIFAR-10 statistics: red 40 -> (40/255 - 0.4914) / 0.2470
    assert test[0][0][0, 0, 0].item() == pytest.approx((40 / 255 - 0.4914) / 0.2470, abs=1e-5)


def test_cifar100_and_resize(tmp_path: Path, no_md5: None) -> None:
    root = write_cifar100(tmp_path)
    dm = CIFARDataModule(root / "cifar-100-python", variant=100, image_size=48, val_fraction=0.25)  # the batches folder itself works too
    assert dm.num_classes == 100 and len(dm.class_names) == 100 and dm.class_names == CIFAR100_CLASSES
    assert dm.class_names[:3] == ["apple", "aquarium_fish", "baby"] and dm.class_names[-1] == "worm"
    assert (len(dm.dataset("train")), len(dm.dataset("val")), len(dm.dataset("test"))) == (9, 3, 5)
    image, label = dm.dataset("test")[2]
    assert image.shape == (3, 48, 48) and label == 2
    assert dm.dataset("train")[0][0].shape == (3, 48, 48)  # augmented: pad, random crop, flip at 48
    bank = dm.baseline_bank(4, seed=1)
    assert bank.shape == (4, 3, 48, 48) and torch.equal(bank, dm.baseline_bank(4, seed=1))
    assert not torch.equal(bank, dm.baseline_bank(4, seed=2))


def test_cifar_missing_and_corrupted(tmp_path: Path) -> None:
    dm = CIFARDataModule(tmp_path / "empty", variant=10)
    assert dm.num_classes == 10 and dm.class_names[0] == "airplane"  # known before any download
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "empty" / "cifar-10-batches-py") in message and "data_batch_1" in message and "test_batch" in message
    assert "download=True" in message and "cs.toronto.edu" in message
    # the files exist but are not the real ones: torchvision's md5 check (never bypassed here) rejects them
    write_cifar10(tmp_path / "fake")
    with pytest.raises(MalformedDatasetError, match="corrupted"):
        CIFARDataModule(tmp_path / "fake", variant=10).setup("fit")


# ---- CUB ---------------------------------------------------------------------------------------------
def test_cub_counts_labels_names_and_grayscale(tmp_path: Path) -> None:
    root = write_cub(tmp_path)
    dm = CUBDataModule(root, image_size=32, val_fraction=0.25, seed=0)
    assert dm.num_classes == 3 and dm.input_shape == (3, 32, 32)
    assert dm.class_names == ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross"]
    dm.setup()
    train, val, test = dm.dataset("train"), dm.dataset("val"), dm.dataset("test")
    assert (len(train), len(val), len(test)) == (7, 2, 3)
    assert [test[i][1] for i in range(3)] == [0, 1, 2] == test.targets  # ids 2, 6, 10 are the test images
    assert train.targets == [train[k][1] for k in range(len(train))]
    assert sorted(r.label for r in train.dataset.records) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # image 10 is grey-scale: read as RGB (three equal channels), red = its class colour
    raw_image, raw_label, _ = test.dataset[2]
    assert raw_image.mode == "RGB" and raw_label == 2
    image = pixels(dm, test[2][0])
    assert image.shape == (3, 32, 32)
    assert torch.allclose(image[0], image[1], atol=1e-3) and torch.allclose(image[1], image[2], atol=1e-3)
    assert image[0].mean().item() == pytest.approx(160, abs=2)
    assert set(train.indices).isdisjoint(val.indices) and sorted(train.indices + val.indices) == list(range(9))


def test_cub_boxes_scale_with_the_transforms(tmp_path: Path) -> None:
    root = write_cub(tmp_path)
    dm = CUBDataModule(root, image_size=32, crop_fraction=1.0, return_boxes=True)
    test = dm.dataset("test")
    # image 2: 40x50 (w x h), box x=0 y=10 w=40 h=30 -> xyxy (0, 10, 40, 40)
    # resize shorter side 40 -> 32 (scale 0.8): 32x40, box (0, 8, 32, 32); centre crop 32: top = (40-32)/2 = 4
    image, label, box = test[0]
    assert image.shape == (3, 32, 32) and label == 0
    assert box.tolist() == pytest.approx([0.0, 4.0, 32.0, 28.0], abs=1e-4)
    # in the localisation metrics' inclusive pixel-centre convention: columns 0..31, rows 4..27
    centred = pixel_centre_boxes(box)
    assert centred.tolist() == pytest.approx([-0.5, 3.5, 31.5, 27.5], abs=1e-4)
    columns = [x for x in range(32) if centred[0] <= x <= centred[2]]
    rows = [y for y in range(32) if centred[1] <= y <= centred[3]]
    assert (columns[0], columns[-1], rows[0], rows[-1]) == (0, 31, 4, 27)
    # the same rule for a landscape training image through box_dataset (evaluation transform):
    # image 1: 60x40, box x=2 y=5 w=30 h=20 -> (2, 5, 32, 25); scale 0.8 -> 48x32, (1.6, 4, 25.6, 20);
    # crop left = (48-32)/2 = 8 -> (-6.4, 4, 17.6, 20), clamped to the crop -> (0, 4, 17.6, 20)
    boxes = dm.box_dataset("train")
    position = boxes.dataset.records.index(next(r for r in boxes.dataset.records if r.box == CUB_IMAGES[1][2]))
    k = boxes.indices.index(position) if position in boxes.indices else None
    if k is None:  # image 1 fell in the validation part of the seeded split
        boxes = dm.box_dataset("val")
        k = boxes.indices.index(position)
    _, label, box = boxes[k]
    assert label == 0 and box.tolist() == pytest.approx([0.0, 4.0, 17.6, 20.0], abs=1e-4)
    # with crop_fraction 0.8 the resize is to 40: image 2 -> scale 1.0, 40x50, crop top 9, left 4
    # box (0, 10, 40, 40) -> (-4, 1, 36, 31) -> clamped (0, 1, 32, 31)
    dm = CUBDataModule(root, image_size=32, crop_fraction=0.8, return_boxes=True)
    assert dm.dataset("test")[0][2].tolist() == pytest.approx([0.0, 1.0, 32.0, 31.0], abs=1e-4)
    # the default samples are (image, label); a batch with boxes collates to (B, 4)
    plain = CUBDataModule(root, image_size=32)
    assert len(plain.dataset("test")[0]) == 2
    images, labels, batch_boxes = next(iter(dm.test_dataloader()))
    assert images.shape == (3, 3, 32, 32) and batch_boxes.shape == (3, 4) and labels.tolist() == [0, 1, 2]
    # training augmentation moves boxes with the image and keeps them inside it
    torch.manual_seed(0)
    for image, _, box in (dm.dataset("train")[i] for i in range(len(dm.dataset("train")))):
        assert image.shape == (3, 32, 32) and 0 <= box[0] <= box[2] <= 32 and 0 <= box[1] <= box[3] <= 32


def test_cub_missing_and_malformed(tmp_path: Path) -> None:
    root = write_cub(tmp_path)
    (root / "CUB_200_2011" / "bounding_boxes.txt").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        CUBDataModule(root).num_classes
    message = str(info.value)
    assert "missing bounding_boxes.txt" in message and str(root / "CUB_200_2011") in message
    assert "train_test_split.txt" in message and "<image_id> <x> <y> <width> <height>" in message
    assert "vision.caltech.edu" in message

    root = write_cub(tmp_path / "bad")
    (root / "CUB_200_2011" / "bounding_boxes.txt").write_text("1 2.0 5.0 30.0\n")
    with pytest.raises(MalformedDatasetError, match=r"bounding_boxes.txt line 1: 4 fields instead of 5"):
        CUBDataModule(root / "CUB_200_2011").class_names  # the CUB_200_2011 folder itself is accepted too
    with pytest.raises(DatasetNotFoundError, match="searched: .*CUB_200_2011"):
        CUBDataModule(tmp_path / "absent").class_names


# ---- Food-101 ----------------------------------------------------------------------------------------
def test_food101_counts_labels_and_split(tmp_path: Path) -> None:
    root = write_food101(tmp_path)
    dm = Food101DataModule(root, image_size=32, val_fraction=0.25, seed=0)
    assert dm.class_names == FOOD_CLASSES and dm.num_classes == 3 and dm.input_shape == (3, 32, 32)
    dm.setup()
    train, val, test = dm.dataset("train"), dm.dataset("val"), dm.dataset("test")
    assert (len(train), len(val), len(test)) == (9, 3, 6)
    assert [test[i][1] for i in range(6)] == [0, 0, 1, 1, 2, 2] == test.targets
    assert dataset_labels(train).tolist() == [train[k][1] for k in range(len(train))]
    # train.json lists ramen first: labels still follow the sorted class names
    for image, label in [val[i] for i in range(3)] + [test[i] for i in range(6)]:
        assert image.shape == (3, 32, 32) and label_from_red(dm, image) == label
    assert val.indices == seeded_split(12, 0.25, 0)[1]
    bank = dm.baseline_bank(20)
    assert bank.shape == (9, 3, 32, 32)  # all 9 training images when fewer than asked
    # baselines are eval-transformed training images: the same tensors as the validation transform gives
    first = torch.randperm(9, generator=torch.Generator().manual_seed(0))[0].item()
    expected = dm.eval_transform(train.dataset[train.indices[first]][0])
    assert torch.equal(bank[0], expected)


def test_food101_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        Food101DataModule(tmp_path).num_classes
    message = str(info.value)
    assert str(tmp_path / "food-101") in message and "meta/train.json" in message and "images/<class>" in message
    assert "download=True" in message and "ethz.ch" in message
    root = write_food101(tmp_path / "copy")
    (root / "food-101" / "meta" / "test.json").unlink()
    dm = Food101DataModule(root / "food-101")
    assert dm.num_classes == 3
    with pytest.raises(DatasetNotFoundError, match="missing meta/test.json"):
        dm.setup("test")


def test_seeded_split_rules() -> None:
    train, val = seeded_split(10, 0.3, 0)
    assert len(val) == 3 and len(train) == 7 and sorted(train + val) == list(range(10))
    assert seeded_split(10, 0.3, 0) == (train, val) and seeded_split(10, 0.3, 1) != (train, val)
    assert len(seeded_split(3, 0.01, 0)[1]) == 1  # at least one validation sample
    with pytest.raises(ValueError, match="val_fraction"):
        seeded_split(10, 1.0, 0)
