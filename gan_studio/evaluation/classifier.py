"""Compatibility: the evaluator classifier network now lives in gan_studio.models.classifier."""

from gan_studio.models.classifier import (
    ARCHITECTURES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TRAINING_FILE,
    EvaluatorClassifier,
    default_stem_stride,
    load_evaluator,
    read_training_info,
    save_evaluator,
)

__all__ = [
    "ARCHITECTURES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TRAINING_FILE",
    "EvaluatorClassifier",
    "default_stem_stride",
    "load_evaluator",
    "read_training_info",
    "save_evaluator",
]
