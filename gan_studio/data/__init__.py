"""Datasets: load and validate labeled image folders, and split them once per run."""

from gan_studio.data.common import DatasetError
from gan_studio.data.folder import (
    ImageRecord,
    LabeledImages,
    ValidationReport,
    load_labeled_images,
    resolve_dataset_source,
    scan_image_folder,
)
from gan_studio.data.split import Split, few_shot_paths, load_split, make_split, save_split

__all__ = [
    "DatasetError",
    "ImageRecord",
    "LabeledImages",
    "Split",
    "ValidationReport",
    "few_shot_paths",
    "load_labeled_images",
    "load_split",
    "make_split",
    "resolve_dataset_source",
    "save_split",
    "scan_image_folder",
]
