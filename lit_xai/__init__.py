"""lit-xai: train with PyTorch Lightning and measure how faithful visual explanations are."""

__version__ = "0.1.0"
