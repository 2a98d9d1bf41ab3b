"""Walks through latent space (and between classes): a filmstrip, an animated GIF, an MP4 when possible.

Smooth walks are the quickest check that a generator learned a continuous space rather than a
lookup table of training images. Slerp follows the sphere where Gaussian latents live, so the
middle frames keep a typical norm (a straight lerp passes nearer the origin: blander images).
Class walks blend the class embeddings, which the generator conditions every layer on.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image

from gan_studio.sampling import generate_from_latents, latent_for_seed
from gan_studio.utils.images import make_grid, to_pil

METHODS = ("slerp", "lerp")


def interpolation_weights(frames: int) -> torch.Tensor:
    if frames < 2:
        raise ValueError(f"An interpolation needs at least 2 frames, got {frames}.")
    return torch.linspace(0.0, 1.0, frames)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """[T, D] points on the straight line from a to b."""
    return a[None] + t[:, None] * (b - a)[None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """[T, D] points on the great circle from a to b, with the norm interpolated linearly."""
    na, nb = a.norm(), b.norm()
    ua, ub = a / na.clamp_min(1e-12), b / nb.clamp_min(1e-12)
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # (anti)parallel or identical directions: lerp is exact enough
        return lerp(a, b, t)
    so = torch.sin(omega)
    directions = (torch.sin((1 - t) * omega)[:, None] * ua + torch.sin(t * omega)[:, None] * ub) / so
    return directions * ((1 - t) * na + t * nb)[:, None]


def interpolate(a: torch.Tensor, b: torch.Tensor, frames: int, method: str = "slerp") -> torch.Tensor:
    if method not in METHODS:
        raise ValueError(f"Unknown interpolation {method!r}: use {' or '.join(METHODS)}.")
    t = interpolation_weights(frames)
    return slerp(a, b, t) if method == "slerp" else lerp(a, b, t)


@contextmanager
def blended_classes(generator, class_a: int, class_b: int, weights: torch.Tensor) -> Iterator[None]:
    """Make the generator condition frame i on (1-w_i) * emb(a) + w_i * emb(b).

    A forward hook replaces the class-embedding output, so the generator's own code runs unchanged.
    The caller must hold the model's lock (the hook is visible to every thread using it).
    """
    embedding = generator.class_embedding
    with torch.no_grad():
        ea, eb = embedding.weight[class_a], embedding.weight[class_b]

    def hook(module, inputs, output):  # noqa: ARG001
        n = output.shape[0]
        w = hook.weights[hook.offset : hook.offset + n].to(output)
        hook.offset += n
        return lerp(ea.to(output), eb.to(output), w)

    hook.weights, hook.offset = weights, 0
    handle = embedding.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def render_frames(
    generator,
    seed_a: int,
    seed_b: int,
    class_a: int,
    class_b: int | None = None,
    *,
    frames: int = 16,
    method: str = "slerp",
    truncation: float = 1.0,
) -> torch.Tensor:
    """uint8 [frames, 3, R, R]: from (seed_a, class_a) to (seed_b, class_b or class_a)."""
    z = interpolate(
        latent_for_seed(seed_a, generator.z_dim, truncation),
        latent_for_seed(seed_b, generator.z_dim, truncation),
        frames,
        method,
    )
    labels = torch.full((frames,), int(class_a), dtype=torch.long)
    if class_b is None or int(class_b) == int(class_a):
        return generate_from_latents(generator, z, labels)
    with blended_classes(generator, int(class_a), int(class_b), interpolation_weights(frames)):
        return generate_from_latents(generator, z, labels, batch_size=frames)


def _display_frames(frames: torch.Tensor, size: int) -> list[Image.Image]:
    """Frames at ``size`` px, nearest neighbour: the generator's pixels enlarged, not smoothed over."""
    return [to_pil(f).resize((size, size), Image.Resampling.NEAREST) for f in frames]


FILMSTRIP_FRAME = 128  # px: smaller frames (a 64 px run's) are enlarged to at least this


def filmstrip(frames: torch.Tensor, max_columns: int = 8, min_frame: int = FILMSTRIP_FRAME) -> Image.Image:
    """The frames in rows of ``max_columns``, each enlarged by a whole factor (nearest neighbour: the
    generator's own pixels, crisp) to at least ``min_frame`` px."""
    factor = max(1, -(-min_frame // frames.shape[-1]))
    frames = frames.repeat_interleave(factor, dim=-1).repeat_interleave(factor, dim=-2)
    return make_grid(frames, ncol=min(max_columns, len(frames)))


def write_gif(
    frames: torch.Tensor, path: str | Path, *, fps: float = 12, size: int = 256, bounce: bool = True
) -> Path:
    """Looping GIF; ``bounce`` plays it forth and back so the loop has no jump."""
    images = _display_frames(frames, size)
    if bounce and len(images) > 2:
        images = images + images[-2:0:-1]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.gif")
    images[0].save(
        tmp, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, optimize=False
    )
    tmp.replace(path)
    return path


def mp4_available() -> bool:
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def write_mp4(
    frames: torch.Tensor, path: str | Path, *, fps: float = 12, size: int = 256, bounce: bool = True
) -> Path:
    if not mp4_available():
        raise RuntimeError("MP4 needs the imageio-ffmpeg package: pip install imageio-ffmpeg")
    import imageio.v2 as imageio
    import numpy as np

    images = _display_frames(frames, size)
    if bounce and len(images) > 2:
        images = images + images[-2:0:-1]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=16) as writer:
        for image in images:
            writer.append_data(np.asarray(image))
    return path
