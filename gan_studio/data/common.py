"""What every dataset source (a folder, a zip, the built-in demo) shares, in a module that imports none.

The folder loader and the demo renderer both raise `DatasetError` and keep things in the cache folder;
holding both here lets each depend on this module instead of on the other.
"""

from __future__ import annotations

import os
from pathlib import Path


class DatasetError(ValueError):
    """A dataset the user supplied cannot be used; the message names the path and says how to fix it."""


def cache_root() -> Path:
    """$GAN_STUDIO_CACHE, default ~/.cache/gan_studio: extracted zips and the demo dataset live below it."""
    return Path(os.environ.get("GAN_STUDIO_CACHE") or Path.home() / ".cache" / "gan_studio").expanduser()
