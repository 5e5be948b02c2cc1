"""LightningDataModules: what `lit-xai fit/test` trains and explains on."""

from lit_xai.datamodules.cifar import CIFARDataModule
from lit_xai.datamodules.cmapss import CMAPSSDataModule, RULWindows
from lit_xai.datamodules.cub import CUBDataModule
from lit_xai.datamodules.digits import DigitsDataModule
from lit_xai.datamodules.food101 import Food101DataModule
from lit_xai.datamodules.imagenet import ImageNetDataModule
from lit_xai.datamodules.shapes import ShapesDataModule, ShapesDataset
from lit_xai.datamodules.vision import (
    DatasetNotFoundError,
    MalformedDatasetError,
    TransformedSubset,
    VisionDataModule,
    eval_transforms,
    pixel_centre_boxes,
    seeded_split,
    train_transforms,
)

__all__ = [
    "CIFARDataModule",
    "CMAPSSDataModule",
    "CUBDataModule",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "Food101DataModule",
    "ImageNetDataModule",
    "MalformedDatasetError",
    "RULWindows",
    "ShapesDataModule",
    "ShapesDataset",
    "TransformedSubset",
    "VisionDataModule",
    "eval_transforms",
    "pixel_centre_boxes",
    "seeded_split",
    "train_transforms",
]
