"""Tiny copies of ImageNet, CIFAR-10/100, CUB-200-2011 and Food-101 in their exact on-disk formats.

Each image's colour encodes its class (red = 40 + 60 * label, so a test can read the label back from the
pixels), and the sizes differ so that resizing and cropping are exercised. Nothing here is downloaded.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_xai.datamodules.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES

IMAGENET_CLASSES = {
    "n01440764": ("tench", "Tinca tinca"),
    "n01443537": ("goldfish", "Carassius auratus"),
    "n01484850": ("great white shark", "white shark", "man-eater", "man-eating shark", "Carcharodon carcharias"),
}
# sizes (width, height) cycled through the images
SIZES = [(48, 40), (40, 56), (64, 48), (36, 36)]


@pytest.fixture(autouse=True)
def one_torch_thread() -> object:
    """Tests on tiny tensors run with one intra-op thread (faster, and steady when the machine is busy);
    the previous setting comes back after each test. Import it into a test module to use it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def red_of(label: int) -> int:
    """The red value of every pixel of an image of class `label`."""
    return 40 + 60 * label


def solid(label: int, size: tuple[int, int], index: int, mode: str = "RGB") -> Image.Image:
    """A flat image of class `label`: red encodes the label, green the index (blue 128)."""
    if mode == "L":
        return Image.new("L", size, red_of(label))
    return Image.new("RGB", size, (red_of(label), (17 * index) % 256, 128))


def write_imagenet(root: Path, train_per_class: int = 4, val_per_class: int = 2, torchvision_layout: bool = True) -> Path:
    """torchvision's ImageNet layout (meta.bin + train/<wnid>/*.JPEG + val/<wnid>/ILSVRC2012_val_*.JPEG), or
    with `torchvision_layout=False` a plain ImageFolder with class folders "cat", "dog", "fox"."""
    root.mkdir(parents=True, exist_ok=True)
    wnids = sorted(IMAGENET_CLASSES) if torchvision_layout else ["cat", "dog", "fox"]
    val_wnids: list[str] = []
    counter = 0
    for label, wnid in enumerate(wnids):
        for k in range(train_per_class):
            path = root / "train" / wnid / f"{wnid}_{k + 1}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            solid(label, SIZES[(label + k) % 4], k).save(path, format="JPEG", quality=95)
        for k in range(val_per_class):
            counter += 1
            path = root / "val" / wnid / f"ILSVRC2012_val_{counter:08d}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            solid(label, SIZES[(label + k + 1) % 4], k).save(path, format="JPEG", quality=95)
            val_wnids.append(wnid)
    if torchvision_layout:
        torch.save((dict(IMAGENET_CLASSES), val_wnids), root / "meta.bin")
    return root


def cifar_batch(labels: list[int], start: int, key: str) -> dict:
    """A CIFAR pickle batch: uint8 data (N, 3072) as R, G, B planes of 32x32; red = red_of(label), green = index."""
    data = np.zeros((len(labels), 3, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        data[i, 0] = red_of(label % 4)
        data[i, 1] = (start + i) % 256
        data[i, 2] = 128
    return {"batch_label": "fixture", key: labels, "data": data.reshape(len(labels), 3072), "filenames": [f"img_{start + i}.png" for i in range(len(labels))]}


def write_cifar10(root: Path, per_batch: int = 4, test_size: int = 6) -> Path:
    """cifar-10-batches-py/ with data_batch_1..5 (`per_batch` images each), test_batch and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for b in range(5):
        labels = [(b * per_batch + i) % 4 for i in range(per_batch)]
        with (folder / f"data_batch_{b + 1}").open("wb") as handle:
            pickle.dump(cifar_batch(labels, b * per_batch, "labels"), handle, protocol=2)
    with (folder / "test_batch").open("wb") as handle:
        pickle.dump(cifar_batch([i % 4 for i in range(test_size)], 100, "labels"), handle, protocol=2)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({"label_names": CIFAR10_CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}, handle, protocol=2)
    return root


def write_cifar100(root: Path, train_size: int = 12, test_size: int = 5) -> Path:
    """cifar-100-python/ with train, test (fine and coarse labels) and meta."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, size, start in (("train", train_size, 0), ("test", test_size, 100)):
        labels = [(start + i) % 4 for i in range(size)]
        batch = cifar_batch(labels, start, "fine_labels")
        batch["coarse_labels"] = [label // 5 for label in labels]
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    with (folder / "meta").open("wb") as handle:
        pickle.dump({"fine_label_names": CIFAR100_CLASSES, "coarse_label_names": [f"super_{i}" for i in range(20)]}, handle, protocol=2)
    return root


CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
# image id -> (class index, (width, height), box x y w h, is_train, mode)
CUB_IMAGES = {
    1: (0, (60, 40), (2.0, 5.0, 30.0, 20.0), 1, "RGB"),
    2: (0, (40, 50), (0.0, 10.0, 40.0, 30.0), 0, "RGB"),
    3: (0, (48, 48), (8.0, 8.0, 24.0, 24.0), 1, "L"),  # grey-scale, as a few real CUB images are
    4: (0, (64, 40), (4.0, 4.0, 50.0, 30.0), 1, "RGB"),
    5: (1, (60, 40), (10.0, 5.0, 30.0, 20.0), 1, "RGB"),
    6: (1, (40, 50), (5.0, 5.0, 20.0, 30.0), 0, "RGB"),
    7: (1, (50, 50), (0.0, 0.0, 50.0, 50.0), 1, "RGB"),
    8: (1, (44, 36), (6.0, 6.0, 20.0, 20.0), 1, "RGB"),
    9: (2, (60, 40), (20.0, 10.0, 30.0, 25.0), 1, "RGB"),
    10: (2, (40, 50), (3.0, 3.0, 30.0, 40.0), 0, "L"),
    11: (2, (56, 42), (10.0, 2.0, 36.0, 36.0), 1, "RGB"),
    12: (2, (36, 48), (1.0, 1.0, 33.0, 45.0), 1, "RGB"),
}


def write_cub(root: Path) -> Path:
    """CUB_200_2011/ with images.txt, image_class_labels.txt, train_test_split.txt, bounding_boxes.txt,
    classes.txt and images/<class folder>/<file>.jpg (9 training and 3 test images of 3 species)."""
    folder = root / "CUB_200_2011"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {"images": [], "labels": [], "split": [], "boxes": []}
    for image_id, (label, size, box, is_train, mode) in CUB_IMAGES.items():
        name = f"{CUB_CLASSES[label]}/{CUB_CLASSES[label].split('.')[1]}_{image_id:04d}_{100 + image_id}.jpg"
        path = folder / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        solid(label, size, image_id, mode).save(path, format="JPEG", quality=95)
        lines["images"].append(f"{image_id} {name}")
        lines["labels"].append(f"{image_id} {label + 1}")
        lines["split"].append(f"{image_id} {is_train}")
        lines["boxes"].append(f"{image_id} " + " ".join(f"{v:.1f}" for v in box))
    (folder / "images.txt").write_text("\n".join(lines["images"]) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(lines["labels"]) + "\n")
    (folder / "train_test_split.txt").write_text("\n".join(lines["split"]) + "\n")
    (folder / "bounding_boxes.txt").write_text("\n".join(lines["boxes"]) + "\n")
    (folder / "classes.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(CUB_CLASSES)))
    return root


FOOD_CLASSES = ["apple_pie", "baklava", "ramen"]


def write_food101(root: Path, train_per_class: int = 4, test_per_class: int = 2) -> Path:
    """food-101/ with meta/train.json, meta/test.json, meta/classes.txt, meta/labels.txt and images/<class>/<id>.jpg."""
    folder = root / "food-101"
    (folder / "meta").mkdir(parents=True, exist_ok=True)
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    image_id = 1000
    for label, name in enumerate(FOOD_CLASSES):
        for k in range(train_per_class + test_per_class):
            image_id += 1
            path = folder / "images" / name / f"{image_id}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            solid(label, SIZES[(label + k) % 4], k).save(path, format="JPEG", quality=95)
            (train if k < train_per_class else test).setdefault(name, []).append(f"{name}/{image_id}")
    # json key order differs from the sorted class order on purpose (labels follow the sorted names)
    (folder / "meta" / "train.json").write_text(json.dumps(dict(reversed(list(train.items())))))
    (folder / "meta" / "test.json").write_text(json.dumps(test))
    (folder / "meta" / "classes.txt").write_text("\n".join(FOOD_CLASSES) + "\n")
    (folder / "meta" / "labels.txt").write_text("\n".join(n.replace("_", " ").capitalize() for n in FOOD_CLASSES) + "\n")
    return root


def write_run_config(
    path: Path, data_class: str, data_args: dict, save_dir: Path, model_args: dict | None = None, name: str = "run"
) -> Path:
    """A small `lit-xai` config: CPU, one epoch, a CSVLogger in `save_dir`, Grad-CAM and a random baseline
    scored by 4-step Insertion / Deletion on a probe of 4 samples, `ImageClassifier` (small_cnn width 8 unless
    `model_args` say otherwise) and `lit_xai.datamodules.<data_class>` with `data_args` (num_workers 0)."""
    model = {"backbone": "small_cnn", "width": 8, "lr": 0.01, **(model_args or {})}
    data = {"num_workers": 0, **data_args}

    def inline(values: dict) -> str:
        return "{" + ", ".join(f"{k}: {json.dumps(str(v)) if isinstance(v, Path) else json.dumps(v)}" for k, v in values.items()) + "}"

    path.write_text(
        f"""seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  max_epochs: 1
  enable_progress_bar: false
  enable_model_summary: false
  log_every_n_steps: 1
  default_root_dir: {json.dumps(str(save_dir))}
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {{save_dir: {json.dumps(str(save_dir))}, name: {name}}}
  callbacks:
    - class_path: lit_xai.callbacks.ExplainerCallback
      init_args:
        probe_size: 4
        baseline_bank_size: 4
        print_table: true
        explainers:
          gradcam: {{class_path: lit_xai.explainers.GradCAM}}
          random: {{class_path: lit_xai.explainers.RandomSaliency}}
        metrics:
          - {{class_path: lit_xai.metrics.Insertion, init_args: {{steps: 4}}}}
          - {{class_path: lit_xai.metrics.Deletion, init_args: {{steps: 4}}}}
model:
  class_path: lit_xai.models.ImageClassifier
  init_args: {inline(model)}
data:
  class_path: lit_xai.datamodules.{data_class}
  init_args: {inline(data)}
"""
    )
    return path
