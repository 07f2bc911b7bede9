"""Data sets read from local files or shipped inside installed packages (no downloads)."""
from .images import (CIFAR10_FILES, ImageData, ImageDataError, Dequantize, imbalanced_subset, load_cifar10,
                     load_digits, load_images)

__all__ = ["CIFAR10_FILES", "ImageData", "ImageDataError", "Dequantize", "imbalanced_subset", "load_cifar10",
           "load_digits", "load_images"]
