"""The built-in "vise-parts" demo dataset: photo-like renders of 3D-printed vise parts on a wooden desk.

Why procedural: the app and the tests need a labeled few-shot dataset that looks like real photos, yet
nothing may be downloaded. Each image is sphere-traced from a signed-distance model of one part (threads,
holes, knurls, dovetails), lit by a lamp with soft shadows and ambient occlusion, shown with filament
layer lines on a procedural wood table, and degraded like a phone photo (defocus, vignetting, sensor
noise, JPEG). Every class draws its plastic colour from the same palette, so only shape tells them apart.

    geometry       signed-distance primitives and the Shape they build
    parts          the ten part builders (one per class)
    tracing        ray queries on a distance field: hits, normals, shadows, occlusion
    camera         the hand-held camera that frames a part
    materials      the lamp, the filament palette and the wood
    rendering      a part to a photo (render_part)
    writer         the dataset on disk, rendered by worker processes and cached
    contact_sheet  one PNG showing the first images of every class
"""

from gan_studio.data.demo.contact_sheet import make_contact_sheet
from gan_studio.data.demo.parts import DEMO_CLASS_NAMES
from gan_studio.data.demo.rendering import render_part
from gan_studio.data.demo.writer import (
    DATASET_NAME,
    GENERATOR,
    GENERATOR_VERSION,
    ensure_demo_dataset,
    make_demo_dataset,
)

__all__ = [
    "DATASET_NAME",
    "DEMO_CLASS_NAMES",
    "GENERATOR",
    "GENERATOR_VERSION",
    "ensure_demo_dataset",
    "make_contact_sheet",
    "make_demo_dataset",
    "render_part",
]
