"""The augmentation study: does adding synthetic images to real ones train a better classifier?"""

from gan_studio.study.runner import StudyConfig, read_study, run_study

__all__ = ["StudyConfig", "read_study", "run_study"]
