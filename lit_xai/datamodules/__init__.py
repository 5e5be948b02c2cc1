"""LightningDataModules: what `lit-xai fit/test` trains and explains on."""

from lit_xai.datamodules.digits import DigitsDataModule

__all__ = ["DigitsDataModule"]
