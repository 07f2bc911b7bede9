"""The images chapter's measuring instrument: the class-weight claims (tests/test_claims.py) rest on a
classifier that must be accurate on held-out real images."""
from ebmflow.chapters import CHAPTERS
from ebmflow.glued import read_glued


def test_the_classifier_measuring_class_weights_is_accurate():
    assert read_glued(CHAPTERS["05_images"].notebook)["images_classifier_accuracy"] > 0.9
