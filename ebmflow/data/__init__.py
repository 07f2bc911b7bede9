"""Data sets read from local files or shipped inside installed packages (no downloads), and the instruments that
read class proportions off image samples."""
from .classify import (REJECTED, Measurement, RejectingClassifier, class_switches, label_rhat, measure_mix, refit,
                       sampler_switches)
from .digits import ImbalancedDigits
from .images import (CIFAR10_FILES, ImageData, ImageDataError, Dequantize, cifar10_folder, imbalanced_subset,
                     load_cifar10, load_digits, load_images, read_cifar10_batch)
from .pca import PrincipalComponents
from .standin import write_cifar10_standin

__all__ = ["CIFAR10_FILES", "ImageData", "ImageDataError", "Dequantize", "imbalanced_subset", "load_cifar10",
           "cifar10_folder", "read_cifar10_batch",
           "load_digits", "load_images", "REJECTED", "RejectingClassifier", "Measurement", "label_rhat",
           "class_switches", "sampler_switches", "measure_mix", "refit", "PrincipalComponents", "ImbalancedDigits",
           "write_cifar10_standin"]
