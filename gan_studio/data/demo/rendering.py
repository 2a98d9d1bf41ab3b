"""From a part to a photo: shade the table and the part, then degrade the picture like a phone camera.

The part is traced at twice the output size and downsampled with LANCZOS in linear light, which
anti-aliases its edges and threads; the smooth table is shaded at output size.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from gan_studio.data.demo.camera import Camera, random_camera
from gan_studio.data.demo.geometry import Shape, len3
from gan_studio.data.demo.materials import Lighting, plastic_colours, random_lighting, wood_albedo
from gan_studio.data.demo.parts import BUILDERS, DEMO_CLASS_NAMES
from gan_studio.data.demo.tracing import ambient_occlusion, soft_shadow, surface_normals

_LANCZOS = Image.Resampling.LANCZOS
_SUPERSAMPLE = 2  # render at 2x and downsample with LANCZOS: anti-aliased edges and threads


def _upsample(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of a coarse 2-D field to `shape`."""
    zoom = (shape[0] / field.shape[0], shape[1] / field.shape[1])
    return ndimage.zoom(field, zoom, order=1, mode="nearest", grid_mode=True)[: shape[0], : shape[1]]


def _shade_table(rng, shape: Shape, camera: Camera, lighting: Lighting, size: int) -> np.ndarray:
    """Linear RGB (size, size, 3) of the table: wood lit by the lamp, with the part's soft shadow.

    Computed at output resolution (the part's edges are what needs supersampling); the shadow and
    the contact occlusion at half of that, because they are soft.
    """
    origin = camera.position.astype(np.float32)
    dirs = camera.rays(size)
    t_ground = -origin[2] / dirs[2]
    gx, gy = origin[0] + dirs[0] * t_ground, origin[1] + dirs[1] * t_ground
    albedo = wood_albedo(rng, gx, gy, shape.extent)

    coarse_x, coarse_y = gx.reshape(size, size)[::2, ::2], gy.reshape(size, size)[::2, ::2]
    cx, cy = coarse_x.ravel(), coarse_y.ravel()
    cz = np.full(cx.shape, 0.005 * shape.extent, dtype=np.float32)
    shadow = soft_shadow(shape, cx, cy, cz, lighting.direction, lighting.sharpness)
    contact = np.clip(shape.distance(cx, cy, cz) / (0.15 * shape.extent), 0, 1) ** 0.7
    shadow = _upsample(shadow.reshape(coarse_x.shape), (size, size)).ravel()
    contact = _upsample(contact.reshape(coarse_x.shape), (size, size)).ravel()

    # Varnish: a broad, faint reflection of the lamp; and the lamp's light falls off across the desk.
    light = lighting.direction
    hx, hy, hz = light[0] - dirs[0], light[1] - dirs[1], light[2] - dirs[2]
    n_dot_h = hz / len3(hx, hy, hz)
    sheen = rng.uniform(0.02, 0.1) * n_dot_h ** rng.uniform(8, 40) * shadow
    falloff = 1.0 + 0.12 * np.tanh((gx * light[0] + gy * light[1]) / (2 * shape.extent))
    irradiance = light[2] * shadow[:, None] * lighting.lamp + (0.5 + 0.5 * contact)[:, None] * lighting.sky
    table = albedo * irradiance * falloff[:, None] + sheen[:, None] * lighting.lamp
    return table.reshape(size, size, 3)


def _shade_part(rng, shape: Shape, camera: Camera, lighting: Lighting, n: int, bounce: np.ndarray):
    """Sphere-trace the part at n x n; returns (flat indices of hit pixels, their linear RGB)."""
    origin, dirs, _, hit, t_hit = camera.trace(shape, n)
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return idx, np.zeros((0, 3), dtype=np.float32)
    th = t_hit[idx]
    point = tuple(origin[k] + dirs[k][idx] * th for k in range(3))
    view = tuple(-dirs[k][idx] for k in range(3))
    eps = camera.pixel_angle(n) * th * 0.5
    normal = surface_normals(shape, *point, eps)
    min_layer = 4.5 * camera.pixel_angle(n) * float(th.mean())
    normal, texture = _printed_layers(rng, shape.extent, min_layer, point, normal)
    albedo = plastic_colours(rng)[shape.material(*point)]
    albedo *= texture[:, None]
    shadow, occlusion = _soft_light(shape, lighting, idx, n, eps, point, normal)
    return idx, _lit_plastic(rng, lighting, albedo, normal, view, shadow, occlusion, bounce)


def _printed_layers(rng, scale: float, min_layer: float, point, normal):
    """Printed plastic: horizontal layer ridges on the walls, diagonal infill lines on top faces.

    Returns the normals bumped by the ridges and the albedo factor of both patterns. A layer is at
    least `min_layer` (about 4.5 pixels) thick, so small renders show lines rather than noise.
    """
    px, py, pz = point
    nx, ny, nz = normal
    layer = max(scale / rng.uniform(45, 70), min_layer)
    wall = np.clip(1.0 - np.abs(nz), 0, 1)
    top = np.clip(np.abs(nz) * 1.5 - 0.5, 0, 1) ** 2
    ridge = np.cos(pz * (2 * math.pi / layer))
    infill_angle = rng.choice([math.pi / 4, -math.pi / 4])
    infill = np.cos(
        (px * math.cos(infill_angle) + py * math.sin(infill_angle)) * (2 * math.pi / (1.1 * layer))
    )
    bump = 0.12 * wall * ridge
    nx, ny, nz = nx - bump * nx * nz, ny - bump * ny * nz, nz + bump
    norm = 1.0 / len3(nx, ny, nz)
    return (nx * norm, ny * norm, nz * norm), 1.0 + 0.06 * wall * ridge + 0.05 * top * infill


def _soft_light(shape: Shape, lighting: Lighting, idx: np.ndarray, n: int, eps: np.ndarray, point, normal):
    """How much of the lamp each hit sample sees (shadow) and how open its surroundings are (occlusion).

    Both are soft, so they are computed once per output pixel (one sample per 2x2 block), and the
    shadow only for samples facing the lamp.
    """
    px, py, pz = point
    nx, ny, nz = normal
    light = lighting.direction
    blocks = (idx // n // _SUPERSAMPLE) * n + (idx % n) // _SUPERSAMPLE
    _, first, block_of = np.unique(blocks, return_index=True, return_inverse=True)
    facing = first[nx[first] * light[0] + ny[first] * light[1] + nz[first] * light[2] > 0]
    offset = 2.0 * eps[facing]
    block_shadow = np.ones(first.shape, dtype=np.float32)
    block_shadow[np.searchsorted(first, facing)] = soft_shadow(
        shape,
        px[facing] + nx[facing] * offset,
        py[facing] + ny[facing] * offset,
        pz[facing] + nz[facing] * offset,
        light,
        lighting.sharpness,
        steps=18,
    )
    shadow = block_shadow[block_of]
    occlusion = ambient_occlusion(
        shape, px[first], py[first], pz[first], nx[first], ny[first], nz[first], 0.25 * shape.extent
    )[block_of]
    return shadow, occlusion


def _lit_plastic(rng, lighting: Lighting, albedo, normal, view, shadow, occlusion, bounce):
    """Linear RGB of the plastic: lamp, room and table light on its colour, a gloss highlight, reflections."""
    nx, ny, nz = normal
    vx, vy, vz = view
    light = lighting.direction
    n_dot_l = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, 1) * shadow
    sky = (0.6 + 0.4 * nz) * occlusion
    from_table = np.clip(-nz, 0, 1) * occlusion * 0.6
    diffuse = n_dot_l[:, None] * lighting.lamp + sky[:, None] * lighting.sky + from_table[:, None] * bounce

    hx, hy, hz = vx + light[0], vy + light[1], vz + light[2]
    n_dot_h = np.clip((nx * hx + ny * hy + nz * hz) / len3(hx, hy, hz), 0, 1)
    gloss, shininess = rng.uniform(0.25, 0.6), rng.uniform(18, 60)
    specular = gloss * n_dot_h**shininess * shadow * np.clip(n_dot_l * 4, 0, 1)
    fresnel = 0.04 + 0.96 * np.clip(1.0 - (nx * vx + ny * vy + nz * vz), 0, 1) ** 5
    reflection = fresnel * occlusion * (0.35 * np.clip(nz, 0, 1) + 0.1)
    return albedo * diffuse + specular[:, None] * lighting.lamp + reflection[:, None] * lighting.sky * 3


def _tonemap(linear: np.ndarray) -> np.ndarray:
    """Linear light to sRGB in [0, 1], with a soft shoulder so highlights do not clip hard."""
    knee = np.float32(0.8)
    over = np.maximum(linear - knee, 0)
    shoulder = (1 - knee) * (1 - np.exp(-over / (1 - knee)))
    return np.clip(np.minimum(linear, knee) + shoulder, 0, 1) ** np.float32(1 / 2.2)


def _photograph(rng: np.random.Generator, linear: np.ndarray, size: int) -> Image.Image:
    """Make a clean render look like a phone photo: white balance, vignette, defocus, noise, JPEG.

    The supersampled render is downsampled in linear light (LANCZOS), as a sensor integrates light.
    """
    channels = [Image.fromarray(np.ascontiguousarray(linear[..., c], dtype=np.float32)) for c in range(3)]
    linear = np.stack([np.asarray(c.resize((size, size), _LANCZOS)) for c in channels], axis=-1)
    ticks = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    vignette = 1.0 - np.float32(rng.uniform(0.12, 0.3)) * (ticks[None, :] ** 2 + ticks[:, None] ** 2) / 2
    balance = (1.0 + rng.normal(0, 0.03, size=3)).astype(np.float32) * np.float32(rng.uniform(0.85, 1.1))
    srgb = _tonemap(np.maximum(linear, 0) * vignette[..., None] * balance)
    img = Image.fromarray((srgb * 255 + 0.5).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.25, 0.75)))

    pixels = np.asarray(img, dtype=np.float32)
    sigma = rng.uniform(0.6, 2.0) + rng.uniform(0.1, 0.3) * np.sqrt(pixels)  # read + shot noise
    colour_noise = rng.standard_normal(pixels.shape).astype(np.float32)
    luma_noise = rng.standard_normal(pixels.shape[:2]).astype(np.float32)[..., None]
    pixels += sigma * (0.5 * colour_noise + 0.85 * luma_noise)
    img = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))

    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(rng.integers(75, 94)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def render_with_coverage(
    class_name: str, rng: np.random.Generator, size: int
) -> tuple[Image.Image, np.ndarray]:
    """The photo and the part's coverage (fraction of each output pixel covered by the part)."""
    shape = BUILDERS[class_name](rng)
    camera = random_camera(rng, shape)
    lighting = random_lighting(rng)
    table = _shade_table(rng, shape, camera, lighting, size)
    bounce = table.reshape(-1, 3).mean(axis=0) * 0.6

    n = size * _SUPERSAMPLE
    image = np.repeat(np.repeat(table, _SUPERSAMPLE, axis=0), _SUPERSAMPLE, axis=1).reshape(-1, 3)
    idx, colour = _shade_part(rng, shape, camera, lighting, n, bounce)
    image[idx] = colour
    mask = np.zeros(n * n, dtype=np.float32)
    mask[idx] = 1.0
    coverage = mask.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
    return _photograph(rng, image.reshape(n, n, 3), size), coverage


def render_part(class_name: str, rng: np.random.Generator, size: int) -> Image.Image:
    """One RGB photo (size x size) of a random instance of `class_name` on a wooden table."""
    if class_name not in BUILDERS:
        raise ValueError(f"Unknown demo class {class_name!r}; choose one of {', '.join(DEMO_CLASS_NAMES)}.")
    if size < 16:
        raise ValueError(f"Demo image size must be at least 16 pixels, got {size}.")
    return render_with_coverage(class_name, rng, size)[0]
