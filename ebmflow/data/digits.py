"""An imbalanced set of real digits in the space of their principal components, with the classifier that reads
class labels off decoded samples (the class-weight study, chapter 06)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..seeding import make_generator
from .classify import RejectingClassifier
from .images import Dequantize, ImageData, imbalanced_subset, load_digits
from .pca import PrincipalComponents

__all__ = ["ImbalancedDigits"]


@dataclass(frozen=True)
class ImbalancedDigits:
    digits: ImageData  # all of scikit-learn's digits, split into train and test
    subset: Tensor  # the imbalanced training set: intensity levels (n, 1, 8, 8)
    labels: Tensor  # its digits (n,)
    pca: PrincipalComponents  # whitened components of all training digits (not only the subset's classes)
    classifier: RejectingClassifier  # over all ten digits, fitted and calibrated on projected digits

    @classmethod
    def build(cls, classes: tuple[int, ...], proportions: tuple[float, ...], *, n_components: int,
              test_fraction: float, confidence: float, seed: int) -> "ImbalancedDigits":
        digits = load_digits(test_fraction, make_generator(seed, stream="data"))
        subset, index = imbalanced_subset(digits.train, digits.train_labels, classes, proportions,
                                          make_generator(seed, stream="subset"))
        centres = Dequantize(digits.levels, digits.image_shape).centres(digits.train.flatten(1))
        pca = PrincipalComponents.fit(centres, n_components)
        classifier = RejectingClassifier.fit(digits, make_generator(seed, stream="classifier"), confidence,
                                             project=pca.project)
        return cls(digits, subset, torch.tensor(classes)[index], pca, classifier)

    @property
    def truth(self) -> Tensor:
        """The training set's class proportions over all ten digits."""
        return torch.bincount(self.labels, minlength=10).double() / len(self.labels)

    def centres(self) -> Tensor:
        """The training images' level centres, encoded (n, k): the data the EBMs train on (the noise of the
        dequantisation is added per batch by ``pca.dequantizer``)."""
        return self.pca.encode(Dequantize(self.digits.levels, self.digits.image_shape).centres(self.subset.flatten(1)))

    def images(self, generator: torch.Generator) -> Tensor:
        """The training images, dequantised with fresh noise and encoded (n, k), on the generator's device."""
        return self.pca.dequantizer(self.digits.levels)(self.centres().to(generator.device), generator)

    def labeller(self, z: Tensor) -> Tensor:
        """Labels (or REJECTED) of encoded samples, read off their decoded images."""
        return self.classifier.labels(self.pca.decode(z))
