"""The evaluator classifier (its network and fitting live in gan_studio.models): trained on the real train split, its features are the metrics' feature space."""

from gan_studio.models.classifier import (
    ARCHITECTURES,
    EvaluatorClassifier,
    load_evaluator,
    read_training_info,
    save_evaluator,
)
from gan_studio.models.classifier_fit import evaluate_classifier, train_classifier

__all__ = [
    "ARCHITECTURES",
    "EvaluatorClassifier",
    "evaluate_classifier",
    "load_evaluator",
    "read_training_info",
    "save_evaluator",
    "train_classifier",
]
