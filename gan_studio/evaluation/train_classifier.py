"""Compatibility: training and scoring a classifier now live in gan_studio.models.classifier_fit."""

from gan_studio.models.classifier_fit import (
    AUGMENTATIONS,
    BatchSampler,
    classic_augmentation,
    evaluate_classifier,
    train_classifier,
)

__all__ = ["AUGMENTATIONS", "BatchSampler", "classic_augmentation", "evaluate_classifier", "train_classifier"]
