"""Static PNG export of plotly figures, shared by every report that ships a plot (augment-bench, study).

Why optional: kaleido drives a Chrome, which a machine may lack; a report then says why its PNG is
missing instead of failing after hours of training.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_plot_png(fig, path: Path) -> str | None:
    """Static PNG through kaleido (which drives a Chrome); returns why it was skipped, or None."""
    try:
        import kaleido  # noqa: F401 - plotly's static export backend
    except ImportError:
        return f"{path.name} skipped: static export needs the kaleido package and a Chrome/Chromium."
    try:
        png = fig.to_image(format="png", scale=2)
    except Exception as error:  # noqa: BLE001 - any kaleido/Chrome failure just means no PNG
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{path.name} skipped: kaleido could not render it ({reason})."
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png)
    os.replace(tmp, path)
    return None
