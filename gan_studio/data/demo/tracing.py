"""Ray queries on a part's distance field: where a ray meets it, its normals, shadows and occlusion.

Why marching: the parts are distance functions, so a ray can safely step by the distance to the
nearest surface (sphere tracing) instead of intersecting polygons.
"""

from __future__ import annotations

import numpy as np

from gan_studio.data.demo.geometry import Shape, len3


def ray_box(origin, dirs, lo, hi):
    """Entry and exit distance of every ray through an axis-aligned box (exit < entry: a miss)."""
    t_near = np.zeros(dirs[0].shape, dtype=np.float32)
    t_far = np.full(dirs[0].shape, np.inf, dtype=np.float32)
    for o, d, a, b in zip(origin, dirs, lo, hi):
        inv = 1.0 / np.where(np.abs(d) < 1e-9, np.float32(1e-9), d)
        t1, t2 = (a - o) * inv, (b - o) * inv
        t_near = np.maximum(t_near, np.minimum(t1, t2))
        t_far = np.minimum(t_far, np.maximum(t1, t2))
    return t_near, t_far


def sphere_trace(shape: Shape, origin, dirs, t_start, t_end, pixel_angle, max_steps=64):
    """March each ray until it is within a pixel of the surface; returns (hit, t).

    The last few grazing rays are settled by their remaining distance instead of being marched on:
    at that point every further step costs as much as the first one did for all rays.
    """
    ox, oy, oz = origin
    dx, dy, dz = dirs
    t = t_start.astype(np.float32)
    hit = np.zeros(t.shape, dtype=bool)
    active = np.flatnonzero(t_start < t_end)
    straggler_limit = max(8, active.size // 500)
    for step in range(max_steps):
        if active.size == 0:
            break
        ta = t[active]
        d = shape.distance(ox + dx[active] * ta, oy + dy[active] * ta, oz + dz[active] * ta)
        tolerance = pixel_angle * ta
        done = d < tolerance
        if step == max_steps - 1 or (step >= 24 and active.size <= straggler_limit):
            done = d < 3 * tolerance
            hit[active[done]] = True
            break
        hit[active[done]] = True
        ta = ta + 0.8 * d  # threads and knurls stretch the distance field: under-step a little
        t[active] = ta
        active = active[~done & (ta < t_end[active])]
    return hit, t


def surface_normals(shape: Shape, x, y, z, eps):
    """Surface normal by the tetrahedron technique (4 distance evaluations)."""
    nx = np.zeros_like(x)
    ny, nz = nx.copy(), nx.copy()
    for sx, sy, sz in ((1, -1, -1), (-1, -1, 1), (-1, 1, -1), (1, 1, 1)):
        d = shape.distance(x + sx * eps, y + sy * eps, z + sz * eps)
        nx += sx * d
        ny += sy * d
        nz += sz * d
    norm = 1.0 / np.maximum(len3(nx, ny, nz), 1e-12)
    return nx * norm, ny * norm, nz * norm


def soft_shadow(shape: Shape, x, y, z, light, sharpness, steps=24):
    """Fraction of the lamp visible from each point (penumbra from the closest miss along the ray).

    Only rays that cross the part's bounding box are marched; the rest see the whole lamp.
    """
    lit = np.ones(x.shape, dtype=np.float32)
    dirs = tuple(np.full(x.shape, c, dtype=np.float32) for c in light)
    t_near, t_far = ray_box((x, y, z), dirs, shape.lo, shape.hi)
    t = np.maximum(t_near, np.float32(0.01 * shape.extent))
    step_lo, step_hi = 0.01 * shape.extent, 0.08 * shape.extent
    active = np.flatnonzero(t < t_far)
    for _ in range(steps):
        if active.size == 0:
            break
        ta = t[active]
        d = shape.distance(x[active] + light[0] * ta, y[active] + light[1] * ta, z[active] + light[2] * ta)
        lit[active] = np.minimum(lit[active], sharpness * d / ta)
        ta = ta + np.clip(d, step_lo, step_hi)
        t[active] = ta
        active = active[(lit[active] > 0.02) & (ta < t_far[active])]
    return np.clip(lit, 0.0, 1.0)


def ambient_occlusion(shape: Shape, x, y, z, nx, ny, nz, scale):
    """Darkening in creases: compare the distance field with the free distance along the normal."""
    occlusion = np.zeros(x.shape, dtype=np.float32)
    for i, h in enumerate((0.04, 0.12, 0.3)):
        h *= scale
        d = shape.distance(x + nx * h, y + ny * h, z + nz * h)
        occlusion += (h - d) / scale * (0.5**i)
    return np.clip(1.0 - 2.0 * occlusion, 0.0, 1.0)
