"""The camera: a pinhole that frames the part like a hand-held shot, and traces it coarse to fine."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gan_studio.data.demo.geometry import Shape, len3
from gan_studio.data.demo.tracing import ray_box, sphere_trace


@dataclass(frozen=True)
class Camera:
    """Pinhole camera; the frame spans centre +- half_width in tangent units (zoom and framing)."""

    position: np.ndarray
    forward: np.ndarray
    right: np.ndarray
    up: np.ndarray
    centre: tuple[float, float] = (0.0, 0.0)
    half_width: float = 1.0

    def rays(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit ray directions through the centres of an n x n pixel grid, row-major from the top."""
        ticks = ((np.arange(n, dtype=np.float32) + 0.5) / n * 2.0 - 1.0) * self.half_width
        a = np.tile(self.centre[0] + ticks, n)
        b = np.repeat(self.centre[1] - ticks, n)
        f, r, u = (v.astype(np.float32) for v in (self.forward, self.right, self.up))
        dirs = [f[k] + a * r[k] + b * u[k] for k in range(3)]
        norm = 1.0 / len3(*dirs)
        return tuple(d * norm for d in dirs)

    def project(self, points: np.ndarray) -> np.ndarray:
        rel = points - self.position
        depth = rel @ self.forward
        return np.stack([rel @ self.right / depth, rel @ self.up / depth], axis=1)

    def pixel_angle(self, n: int) -> float:
        return 2.0 * self.half_width / n

    def trace(self, shape: Shape, n: int):
        """Rays of an n x n frame and where they first meet the part (hit mask and distance).

        Coarse to fine: a frame of n >= 128 first traces n/2. A coarse ray stops within one of its
        (wide) pixels of any surface, so fine rays far from every coarse hit are known misses, and
        a fine ray inside a hit coarse pixel can start just before its parent's hit distance.
        """
        origin = self.position.astype(np.float32)
        dirs = self.rays(n)
        t_ground = -origin[2] / dirs[2]  # the camera looks down: every ray reaches the table
        t_start, t_far = ray_box(origin, dirs, shape.lo, shape.hi)
        t_end = np.minimum(t_far, t_ground)
        if n % 2 == 0 and n >= 128:
            m = n // 2
            _, _, _, coarse_hit, coarse_t = self.trace(shape, m)
            coarse_hit, coarse_t = coarse_hit.reshape(m, m), coarse_t.reshape(m, m)
            near = ndimage.binary_dilation(coarse_hit, structure=np.ones((3, 3), dtype=bool))
            t_end = np.where(_expand(near), t_end, np.float32(0))
            seed = coarse_t * np.float32(1 - 2 * self.pixel_angle(m))  # two coarse pixels early
            t_start = np.where(_expand(coarse_hit), np.maximum(t_start, _expand(seed)), t_start)
        hit, t = sphere_trace(shape, origin, dirs, t_start, t_end, self.pixel_angle(n))
        return origin, dirs, t_ground, hit, t


def _expand(coarse: np.ndarray) -> np.ndarray:
    """Each coarse pixel to its 2 x 2 block of fine pixels, flattened row-major."""
    return coarse.repeat(2, axis=0).repeat(2, axis=1).ravel()


def random_camera(rng: np.random.Generator, shape: Shape) -> Camera:
    """A hand-held shot: top or 3/4 view, random heading, the silhouette spanning 50-85% of the frame."""
    lo, hi = np.array(shape.lo), np.array(shape.hi)
    target = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[2] * 0.3])
    top_view = rng.random() < 0.3
    elevation = math.radians(rng.uniform(72, 88) if top_view else rng.uniform(35, 70))
    heading = rng.uniform(0, 2 * math.pi)
    forward = -np.array(
        [
            math.cos(elevation) * math.cos(heading),
            math.cos(elevation) * math.sin(heading),
            math.sin(elevation),
        ]
    )
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    roll = rng.normal(0, 0.06)
    right, up = right * math.cos(roll) + up * math.sin(roll), up * math.cos(roll) - right * math.sin(roll)
    position = target - forward * shape.extent * rng.uniform(3.0, 6.0)

    # Frame the silhouette, not the bounding box: trace a small preview that holds the whole box.
    camera = Camera(position, forward, right, up)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    projected = camera.project(corners)
    centre = (projected.min(axis=0) + projected.max(axis=0)) / 2
    half_width = float((projected.max(axis=0) - projected.min(axis=0)).max()) / 2 * 1.05
    preview = Camera(position, forward, right, up, (float(centre[0]), float(centre[1])), half_width)
    n = 40
    hit = preview.trace(shape, n)[3].reshape(n, n)
    rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
    if rows.size:
        ticks = ((np.arange(n) + 0.5) / n * 2 - 1) * half_width
        pad = half_width / n
        box_lo = np.array([centre[0] + ticks[cols[0]] - pad, centre[1] - ticks[rows[-1]] - pad])
        box_hi = np.array([centre[0] + ticks[cols[-1]] + pad, centre[1] - ticks[rows[0]] + pad])
    else:  # a preview too coarse to see the part: fall back to the bounding box
        box_lo, box_hi = projected.min(axis=0), projected.max(axis=0)

    box_size = box_hi - box_lo
    half_width = float(box_size.max()) / (2.0 * rng.uniform(0.5, 0.85))
    slack = half_width - box_size / 2  # how far the part may move before the frame cuts it
    if rng.random() < 0.05:  # rarely, a careless shot that cuts the part
        shift = slack * 1.15
    else:  # usually roughly centred, like a photo taken on purpose
        shift = np.minimum(slack, 0.3 * half_width)
    centre = (box_lo + box_hi) / 2 + rng.uniform(-1, 1, size=2) * shift
    return Camera(position, forward, right, up, (float(centre[0]), float(centre[1])), half_width)
