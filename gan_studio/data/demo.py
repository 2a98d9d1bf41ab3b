"""The built-in "vise-parts" demo dataset: photo-like renders of 3D-printed vise parts on a wooden desk.

Why procedural: the app and the tests need a labeled few-shot dataset that looks like real photos, yet
nothing may be downloaded. Each image is sphere-traced from a signed-distance model of one part (threads,
holes, knurls, dovetails), lit by a lamp with soft shadows and ambient occlusion, shown with filament
layer lines on a procedural wood table, and degraded like a phone photo (defocus, vignetting, sensor
noise, JPEG). Every class draws its plastic colour from the same palette, so only shape tells them apart.

An image depends only on (seed, class index, image index), so any number of worker processes writes
byte-identical datasets.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage
from tqdm.auto import tqdm

DEMO_CLASS_NAMES: tuple[str, ...] = (
    "ViseScrew",
    "Clamp",
    "Nut",
    "Base",
    "Assembly",
    "HeadPlate",
    "BallJoint",
    "Screw",
    "ClampScrew",
    "Slider",
)
DATASET_NAME = "vise-parts"
GENERATOR = "gan_studio.data.demo"
GENERATOR_VERSION = 1  # bump whenever the pixels change, so cached copies are rebuilt

_LANCZOS = Image.Resampling.LANCZOS
_SUPERSAMPLE = 2  # render at 2x and downsample with LANCZOS: anti-aliased edges and threads

# Filament colours (sRGB) shared by every class: colour must never give the class away.
_PLASTIC_PALETTE = (
    (30, 82, 172),  # royal blue
    (46, 116, 200),  # azure
    (74, 130, 186),  # steel blue
    (108, 160, 214),  # light blue
    (26, 56, 124),  # cobalt
    (24, 32, 70),  # navy
    (32, 44, 94),  # dark navy
    (26, 26, 29),  # black
    (48, 49, 53),  # charcoal
    (96, 99, 104),  # dark grey
    (142, 144, 148),  # grey
    (190, 192, 194),  # light grey
)
# Table woods (sRGB): (early wood, late wood). Each image blends two species for variety.
_WOODS = (
    ((206, 160, 108), (158, 108, 62)),  # light oak
    ((222, 186, 134), (184, 138, 86)),  # pine / birch
    ((168, 108, 70), (118, 70, 40)),  # cherry
    ((126, 86, 58), (74, 48, 30)),  # walnut
)


# --------------------------------------------------------------------------------------------------
# Signed distance primitives. Coordinates are float32 arrays; z points up and the table is z = 0.


def _len2(a, b):
    return np.sqrt(a * a + b * b)


def _len3(a, b, c):
    return np.sqrt(a * a + b * b + c * c)


def _box2(x, y, hx, hy, rounding=0.0):
    qx = np.abs(x) - (hx - rounding)
    qy = np.abs(y) - (hy - rounding)
    outside = _len2(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - rounding


def _extrude(d2, z, half_height, rounding=0.0):
    """Turn a 2-D distance into a slab of `half_height` about z = 0, with rounded edges."""
    w1 = d2 + rounding
    w2 = np.abs(z) - (half_height - rounding)
    outside = _len2(np.maximum(w1, 0), np.maximum(w2, 0))
    return outside + np.minimum(np.maximum(w1, w2), 0) - rounding


def _box(x, y, z, hx, hy, hz, rounding=0.0):
    return _extrude(_box2(x, y, hx - rounding, hy - rounding), z, hz, rounding)


def _cylinder(radial, axial, radius, half_length, rounding=0.0):
    """Capped cylinder from its radial distance and axial coordinate (any axis)."""
    return _extrude(radial - radius, axial, half_length, rounding)


def _hexagon(x, y, apothem):
    """Regular hexagon with flats at y = +-apothem (a lower bound of the distance: safe to trace)."""
    ax, ay = np.abs(x), np.abs(y)
    return np.maximum(ax * 0.8660254 + ay * 0.5, ay) - apothem


def _triangle_wave(phase):
    """0 at integers, 1 half-way: the V profile of a thread or knurl."""
    return np.abs(phase - np.floor(phase) - 0.5) * 2.0


def _thread(radial, axial, angle, radius, pitch, depth):
    """Distance to a helical V-thread of outer `radius` (flattened crests like a printed thread)."""
    phase = axial / pitch + angle * (1.0 / (2.0 * math.pi))
    profile = np.clip(1.25 * _triangle_wave(phase) - 0.1, 0.0, 1.0)
    return radial - (radius - depth * (1.0 - profile))


def _polar_repeat(x, y, count, radius):
    """Fold the plane into one of `count` sectors and move the sector centre (at `radius`) to 0."""
    angle = np.arctan2(y, x)
    sector = 2.0 * math.pi / count
    local = angle - sector * np.round(angle / sector)
    rho = _len2(x, y)
    return rho * np.cos(local) - radius, rho * np.sin(local)


def _subtract(a, b):
    return np.maximum(a, -b)


# --------------------------------------------------------------------------------------------------
# The ten parts. Each builder draws its own proportions and returns a _Shape resting on the table.

_Distance = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Shape:
    """A part as a union of signed-distance components, each with its material (filament colour)."""

    components: tuple[tuple[_Distance, int], ...]  # (distance function, material index)
    lo: tuple[float, float, float]  # axis-aligned bounds of the part
    hi: tuple[float, float, float]

    def distance(self, x, y, z):
        d = self.components[0][0](x, y, z)
        for fn, _ in self.components[1:]:
            d = np.minimum(d, fn(x, y, z))
        return d

    def material(self, x, y, z):
        if len(self.components) == 1:
            return np.zeros(x.shape, dtype=np.int64)
        distances = np.stack([fn(x, y, z) for fn, _ in self.components])
        materials = np.array([m for _, m in self.components])
        return materials[np.argmin(distances, axis=0)]

    @property
    def extent(self) -> float:
        return float(max(h - lo for lo, h in zip(self.lo, self.hi)))


def _shape(*components, lo, hi, margin=0.05) -> _Shape:
    return _Shape(
        tuple(components), tuple(float(v) - margin for v in lo), tuple(float(v) + margin for v in hi)
    )


def _vise_screw(rng: np.random.Generator) -> _Shape:
    """Long threaded spindle with a hub and a T-handle ending in balls."""
    length = rng.uniform(3.6, 4.8)
    radius = rng.uniform(0.2, 0.26)
    pitch = rng.uniform(0.17, 0.24)
    hub_r, hub_len = radius * rng.uniform(1.7, 2.1), rng.uniform(0.4, 0.6)
    bar_half, bar_r = rng.uniform(0.9, 1.3), rng.uniform(0.08, 0.11)
    ball_r = bar_r * rng.uniform(1.6, 2.0)
    axis_z = max(hub_r, ball_r)
    hub_x = length / 2 - hub_len / 2
    rod_cx, rod_half = -hub_len / 2, (length - hub_len) / 2

    def part(x, y, z):
        zz = z - axis_z
        radial = _len2(y, zz)
        thread = _thread(radial, x, np.arctan2(zz, y), radius, pitch, 0.24 * radius)
        rod = np.maximum(thread, _cylinder(radial, x - rod_cx, radius, rod_half, 0.4 * radius))
        hub = _cylinder(radial, x - hub_x, hub_r, hub_len / 2, 0.07)
        xh = x - hub_x
        bar = _cylinder(_len2(xh, zz), y, bar_r, bar_half)
        balls = _len3(xh, np.abs(y) - bar_half, zz) - ball_r
        return np.minimum(np.minimum(rod, hub), np.minimum(bar, balls))

    return _shape(
        (part, 0),
        lo=(-length / 2, -bar_half - ball_r, 0.0),
        hi=(length / 2, bar_half + ball_r, axis_z + max(hub_r, ball_r)),
    )


def _clamp(rng: np.random.Generator) -> _Shape:
    """C-shaped clamp frame lying flat: thick back, two arms, a threaded boss on one arm."""
    hx, hy = rng.uniform(1.2, 1.55), rng.uniform(0.95, 1.25)
    wall = rng.uniform(0.32, 0.45)
    back = wall * rng.uniform(1.3, 1.7)
    thick = rng.uniform(0.45, 0.7)
    boss_r = wall * rng.uniform(0.95, 1.15)
    boss_x, boss_y = hx - boss_r, hy - wall / 2
    hole_r = boss_r * 0.45
    pad = rng.uniform(0.12, 0.2)
    corner = rng.uniform(0.15, 0.45)

    def part(x, y, z):
        outer = _box2(x, y, hx, hy, corner)
        inner = _box2(x - back / 2 - 0.5, y, hx - back / 2 + 0.5, hy - wall, 0.12)
        frame = _subtract(outer, inner)
        jaw_pad = _box2(x - (hx - 0.25), np.abs(y) - (hy - wall - pad / 2), 0.22, pad / 2, 0.03)
        body = _extrude(np.minimum(frame, jaw_pad), z - thick / 2, thick / 2, 0.06)
        boss = _cylinder(_len2(x - boss_x, y - boss_y), z - thick / 2 - 0.08, boss_r, thick / 2 + 0.08, 0.06)
        radial = _len2(x - boss_x, y - boss_y)
        hole = -_thread(radial, z, np.arctan2(y - boss_y, x - boss_x), hole_r, 0.12, 0.05)
        return np.maximum(np.minimum(body, boss), hole)

    return _shape((part, 0), lo=(-hx, -hy, 0.0), hi=(hx, hy, thick + 0.16))


def _nut(rng: np.random.Generator) -> _Shape:
    """Hex nut with chamfered corners and an internal thread; sometimes standing on a flat."""
    apothem = rng.uniform(0.75, 0.95)
    half_h = apothem * rng.uniform(0.38, 0.5)
    hole_r = apothem * rng.uniform(0.5, 0.6)
    pitch = rng.uniform(0.12, 0.17)
    standing = rng.random() < 0.2
    spin = rng.uniform(0, math.pi / 3)
    cos_s, sin_s = math.cos(spin), math.sin(spin)
    chamfer_k = 0.9

    def part(x, y, z):
        if standing:  # axis along y, a flat face down on the table
            a, b, c = x, z - apothem, y
        else:
            a, b, c = x * cos_s - y * sin_s, x * sin_s + y * cos_s, z - half_h
        body = np.maximum(_hexagon(a, b, apothem), np.abs(c) - half_h)
        radial = _len2(a, b)
        cone = (radial + chamfer_k * np.abs(c) - (apothem * 1.02 + chamfer_k * half_h)) / math.sqrt(
            1 + chamfer_k**2
        )
        hole = _thread(radial, c, np.arctan2(b, a), hole_r, pitch, 0.06)
        return _subtract(np.maximum(body, cone), hole)

    circum = apothem * 1.1548
    if standing:
        return _shape((part, 0), lo=(-circum, -half_h, 0.0), hi=(circum, half_h, 2 * apothem))
    return _shape((part, 0), lo=(-circum, -circum, 0.0), hi=(circum, circum, 2 * half_h))


def _base(rng: np.random.Generator) -> _Shape:
    """Flat base plate with counterbored corner holes, a long slot and sometimes guide rails."""
    hx, hy = rng.uniform(1.7, 2.2), rng.uniform(1.0, 1.35)
    thick = rng.uniform(0.25, 0.38)
    corner = rng.uniform(0.1, 0.4)
    inset = rng.uniform(0.3, 0.4)
    hole_r = rng.uniform(0.11, 0.15)
    slot_half, slot_w = hx * rng.uniform(0.35, 0.55), rng.uniform(0.12, 0.18)
    rails = rng.random() < 0.5
    rail_y, rail_h = hy * rng.uniform(0.5, 0.62), rng.uniform(0.12, 0.2)

    def part(x, y, z):
        plate = _extrude(_box2(x, y, hx, hy, corner), z - thick / 2, thick / 2, 0.05)
        hx_l, hy_l = np.abs(x) - (hx - inset), np.abs(y) - (hy - inset)
        radial = _len2(hx_l, hy_l)
        holes = np.minimum(radial - hole_r, np.maximum(radial - 1.8 * hole_r, thick * 0.55 - z))
        slot = _box2(x, y, slot_half, slot_w, slot_w * 0.99)
        body = _subtract(_subtract(plate, holes), slot)
        if rails:
            rail = _box(
                x,
                np.abs(y) - rail_y,
                z - thick - rail_h / 2 + 0.02,
                hx - inset * 1.8,
                0.09,
                rail_h / 2 + 0.02,
                0.03,
            )
            body = np.minimum(body, rail)
        return body

    return _shape((part, 0), lo=(-hx, -hy, 0.0), hi=(hx, hy, thick + (rail_h if rails else 0.0)))


def _assembly(rng: np.random.Generator) -> _Shape:
    """The assembled vise: base plate, fixed jaw, sliding jaw and the spindle with its T-handle."""
    hx, hy = rng.uniform(1.7, 2.1), rng.uniform(0.75, 0.95)
    thick = rng.uniform(0.25, 0.32)
    jaw_h, jaw_w = rng.uniform(0.9, 1.25), rng.uniform(0.45, 0.6)
    moving_x = rng.uniform(-hx + jaw_w + 0.6, hx - jaw_w)
    screw_r = rng.uniform(0.12, 0.16)
    screw_z = thick + jaw_h * rng.uniform(0.45, 0.6)
    overhang = rng.uniform(0.45, 0.7)
    hub_x = -hx - overhang
    bar_half, bar_r = rng.uniform(0.6, 0.9), rng.uniform(0.06, 0.08)
    screw_material = int(rng.random() < 0.5)
    fixed_x = -hx + jaw_w / 2

    def frame(x, y, z):
        plate = _box(x, y, z - thick / 2, hx, hy, thick / 2, 0.05)
        fixed = _box(x - fixed_x, y, z - thick - jaw_h / 2 + 0.02, jaw_w / 2, hy, jaw_h / 2, 0.05)
        moving = _box(
            x - moving_x, y, z - thick - jaw_h * 0.45 + 0.02, jaw_w / 2, hy * 0.97, jaw_h * 0.45, 0.05
        )
        return np.minimum(plate, np.minimum(fixed, moving))

    def spindle(x, y, z):
        zz = z - screw_z
        radial = _len2(y, zz)
        centre = (hub_x + moving_x) / 2
        rod = np.maximum(
            _thread(radial, x, np.arctan2(zz, y), screw_r, 0.14, 0.035),
            _cylinder(radial, x - centre, screw_r, (moving_x - hub_x) / 2),
        )
        hub = _cylinder(radial, x - hub_x, screw_r * 1.9, 0.2, 0.05)
        bar = _cylinder(_len2(x - hub_x, zz), y, bar_r, bar_half)
        balls = _len3(x - hub_x, np.abs(y) - bar_half, zz) - bar_r * 1.8
        return np.minimum(np.minimum(rod, hub), np.minimum(bar, balls))

    top = max(thick + jaw_h, screw_z + bar_r * 1.8)
    return _shape(
        (frame, 0),
        (spindle, screw_material),
        lo=(hub_x - 0.25, -max(hy, bar_half + 0.15), 0.0),
        hi=(hx, max(hy, bar_half + 0.15), top),
    )


def _head_plate(rng: np.random.Generator) -> _Shape:
    """Round or square plate with a raised rim, a bolt circle of bosses and a central hub."""
    radius = rng.uniform(1.15, 1.5)
    thick = rng.uniform(0.22, 0.32)
    square = rng.random() < 0.5
    corner = radius * rng.uniform(0.15, 0.4)
    rim_w, rim_h = rng.uniform(0.14, 0.22), rng.uniform(0.15, 0.3)
    bolts = int(rng.choice([4, 5, 6, 8]))
    bolt_circle = radius * rng.uniform(0.55, 0.65)
    boss_r, bolt_r = rng.uniform(0.17, 0.22), rng.uniform(0.07, 0.1)
    hub_r, hub_h = rng.uniform(0.3, 0.42), rng.uniform(0.25, 0.45)
    spin = rng.uniform(0, math.pi)
    cos_s, sin_s = math.cos(spin), math.sin(spin)

    def part(x, y, z):
        x, y = x * cos_s - y * sin_s, x * sin_s + y * cos_s
        outline = _box2(x, y, radius, radius, corner) if square else _len2(x, y) - radius
        plate = _extrude(outline, z - thick / 2, thick / 2, 0.04)
        rim = _extrude(
            np.abs(outline + rim_w / 2) - rim_w / 2, z - (thick + rim_h) / 2, (thick + rim_h) / 2, 0.04
        )
        bx, by = _polar_repeat(x, y, bolts, bolt_circle)
        bolt_radial = _len2(bx, by)
        boss = _cylinder(bolt_radial, z - (thick + 0.1) / 2, boss_r, (thick + 0.1) / 2, 0.04)
        radial = _len2(x, y)
        hub = _cylinder(radial, z - (thick + hub_h) / 2, hub_r, (thick + hub_h) / 2, 0.05)
        body = np.minimum(np.minimum(plate, rim), np.minimum(boss, hub))
        return _subtract(_subtract(body, bolt_radial - bolt_r), radial - hub_r * 0.45)

    return _shape(
        (part, 0),
        lo=(-1.42 * radius, -1.42 * radius, 0.0),
        hi=(1.42 * radius, 1.42 * radius, thick + max(rim_h, hub_h)),
    )


def _ball_joint(rng: np.random.Generator) -> _Shape:
    """Ball seated in a cup-shaped socket, with a stem leaving the ball at an angle."""
    socket_r, socket_h = rng.uniform(0.62, 0.8), rng.uniform(0.55, 0.8)
    hex_socket = rng.random() < 0.4
    ball_r = socket_r * rng.uniform(0.72, 0.85)
    ball_z = socket_h + ball_r * rng.uniform(0.1, 0.35)
    stem_r, stem_len = rng.uniform(0.16, 0.22), rng.uniform(1.2, 1.7)
    tilt, heading = rng.uniform(0.5, 1.25), rng.uniform(0, 2 * math.pi)
    axis = (math.sin(tilt) * math.cos(heading), math.sin(tilt) * math.sin(heading), math.cos(tilt))
    end = tuple(a * stem_len for a in axis)
    materials = (0, int(rng.random() < 0.4))

    def socket(x, y, z):
        outline = _hexagon(x, y, socket_r) if hex_socket else _len2(x, y) - socket_r
        cup = _extrude(outline, z - socket_h / 2, socket_h / 2, 0.05)
        return _subtract(cup, _len3(x, y, z - ball_z) - ball_r * 1.04)

    def ball(x, y, z):
        px, py, pz = x, y, z - ball_z
        along = np.clip(px * axis[0] + py * axis[1] + pz * axis[2], 0.0, stem_len)
        stem = _len3(px - axis[0] * along, py - axis[1] * along, pz - axis[2] * along) - stem_r
        knob = _len3(px - end[0], py - end[1], pz - end[2]) - stem_r * 1.5
        return np.minimum(np.minimum(_len3(px, py, pz) - ball_r, stem), knob)

    reach = stem_len + stem_r * 1.5
    lo = (min(-socket_r * 1.16, end[0] - stem_r * 1.5), min(-socket_r * 1.16, end[1] - stem_r * 1.5), 0.0)
    hi = (
        max(socket_r * 1.16, end[0] + stem_r * 1.5),
        max(socket_r * 1.16, end[1] + stem_r * 1.5),
        ball_z + reach,
    )
    return _shape((socket, materials[0]), (ball, materials[1]), lo=lo, hi=hi)


def _screw(rng: np.random.Generator) -> _Shape:
    """Short machine screw: threaded shank and a button, cheese or hex head with a recess."""
    shank_len, radius = rng.uniform(1.2, 2.0), rng.uniform(0.2, 0.27)
    head = str(rng.choice(["button", "cheese", "hex"]))
    head_r = radius * rng.uniform(1.8, 2.2)
    head_h = head_r * rng.uniform(0.55, 0.75)
    pitch = rng.uniform(0.13, 0.18)
    standing = head != "button" and rng.random() < 0.25  # a domed head cannot stand on its top
    # Lying down, the screw rests on its head rim and the tip of its shank, so the axis tilts.
    total = shank_len + head_h
    tilt = 0.0 if standing else math.asin((head_r - radius) / total)
    cos_t, sin_t = math.cos(tilt), math.sin(tilt)
    lift = max(0.0, head_h * sin_t - head_r * (1 - cos_t))
    recess_slot = rng.random() < 0.35

    def part(x, y, z):
        # Local frame: u runs along the axis, u = head_h on the head's top face, 0 under the head,
        # -shank_len at the tip; (v, w) is the cross-section.
        if standing:  # head top face down on the table, shank up
            u, v, w = head_h - z, x, y
        else:
            xs, zs = x + total / 2, z - head_r - lift
            u, v, w = head_h - (xs * cos_t - zs * sin_t), y, xs * sin_t + zs * cos_t
        radial = _len2(v, w)
        shank_axial = -u - shank_len / 2
        shank = np.maximum(
            _thread(radial, u, np.arctan2(w, v), radius, pitch, 0.22 * radius),
            _cylinder(radial, shank_axial, radius, shank_len / 2, 0.35 * radius),
        )
        hu = u - head_h / 2
        if head == "button":
            cap = _len3(v / head_r, w / head_r, np.maximum(u, 0) / head_h) - 1.0
            head_d = np.maximum(cap * min(head_r, head_h) * 0.9, -u)
        elif head == "cheese":
            head_d = _cylinder(radial, hu, head_r, head_h / 2, 0.08)
        else:
            head_d = np.maximum(_hexagon(v, w, head_r * 0.9), np.abs(hu) - head_h / 2)
        if recess_slot:
            recess = np.maximum(_box2(v, w, head_r * 1.1, head_r * 0.14), head_h * 0.55 - u)
        else:
            recess = np.maximum(_hexagon(v, w, head_r * 0.42), head_h * 0.45 - u)
        return np.minimum(_subtract(head_d, recess), shank)

    if standing:
        return _shape(
            (part, 0), lo=(-head_r * 1.16, -head_r * 1.16, 0.0), hi=(head_r * 1.16, head_r * 1.16, total)
        )
    return _shape(
        (part, 0), lo=(-total / 2, -head_r * 1.16, 0.0), hi=(total / 2, head_r * 1.16, 2 * head_r + lift)
    )


def _clamp_screw(rng: np.random.Generator) -> _Shape:
    """Threaded rod with a knurled knob at one end and a swivel pad on a ball neck at the other."""
    length, radius = rng.uniform(2.4, 3.3), rng.uniform(0.16, 0.21)
    knob_r, knob_len = rng.uniform(0.45, 0.58), rng.uniform(0.4, 0.6)
    ridges = int(rng.integers(16, 26))
    pad_r, pad_h = rng.uniform(0.4, 0.52), rng.uniform(0.13, 0.2)
    pitch = rng.uniform(0.14, 0.2)
    axis_z = max(knob_r, pad_r)
    knob_x = length / 2 - knob_len / 2
    pad_x = -length / 2 + pad_h / 2
    neck_x = pad_x + pad_h / 2 + radius * 1.1

    def part(x, y, z):
        zz = z - axis_z
        radial = _len2(y, zz)
        angle = np.arctan2(zz, y)
        rod_lo, rod_hi = neck_x, knob_x
        rod = np.maximum(
            _thread(radial, x, angle, radius, pitch, 0.22 * radius),
            _cylinder(radial, x - (rod_lo + rod_hi) / 2, radius, (rod_hi - rod_lo) / 2),
        )
        knurl = radial - (knob_r - 0.05 * _triangle_wave(angle * (ridges / (2 * math.pi))))
        knob = np.maximum(_cylinder(radial, x - knob_x, knob_r, knob_len / 2, 0.08), knurl)
        pad = _cylinder(radial, x - pad_x, pad_r, pad_h / 2, 0.05)
        neck = _len3(x - neck_x, y, zz) - radius * 1.45
        return np.minimum(np.minimum(rod, knob), np.minimum(pad, neck))

    side = max(knob_r, pad_r)
    return _shape((part, 0), lo=(-length / 2, -side, 0.0), hi=(length / 2, side, 2 * axis_z))


def _slider(rng: np.random.Generator) -> _Shape:
    """Sliding block with a dovetail groove along its top and often a bore in one end."""
    hx, hy, height = rng.uniform(1.0, 1.4), rng.uniform(0.7, 0.95), rng.uniform(0.75, 1.05)
    top_w = hy * rng.uniform(0.5, 0.7)
    depth = height * rng.uniform(0.38, 0.5)
    flare = rng.uniform(0.35, 0.6)  # dovetail: groove widens with depth
    hole_r = rng.uniform(0.13, 0.18)
    has_hole = rng.random() < 0.7
    norm = math.sqrt(1 + flare**2)

    def part(x, y, z):
        block = _box(x, y, z - height / 2, hx, hy, height / 2, 0.06)
        zt = z - height  # 0 at the top face, negative below
        groove = np.maximum(-zt - depth, (np.abs(y) - top_w / 2 + zt * flare) / norm)
        body = _subtract(block, groove)
        if has_hole:
            radial = _len2(y, z - (height - depth) / 2)
            body = _subtract(body, np.maximum(radial - hole_r, hx * 0.4 - x))
        return body

    return _shape((part, 0), lo=(-hx, -hy, 0.0), hi=(hx, hy, height))


_BUILDERS: dict[str, Callable[[np.random.Generator], _Shape]] = {
    "ViseScrew": _vise_screw,
    "Clamp": _clamp,
    "Nut": _nut,
    "Base": _base,
    "Assembly": _assembly,
    "HeadPlate": _head_plate,
    "BallJoint": _ball_joint,
    "Screw": _screw,
    "ClampScrew": _clamp_screw,
    "Slider": _slider,
}
assert tuple(_BUILDERS) == DEMO_CLASS_NAMES


# --------------------------------------------------------------------------------------------------
# Camera and sphere tracing


@dataclass(frozen=True)
class _Camera:
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
        norm = 1.0 / _len3(*dirs)
        return tuple(d * norm for d in dirs)

    def project(self, points: np.ndarray) -> np.ndarray:
        rel = points - self.position
        depth = rel @ self.forward
        return np.stack([rel @ self.right / depth, rel @ self.up / depth], axis=1)

    def pixel_angle(self, n: int) -> float:
        return 2.0 * self.half_width / n

    def trace(self, shape: _Shape, n: int):
        """Rays of an n x n frame and where they first meet the part (hit mask and distance).

        Coarse to fine: a frame of n >= 128 first traces n/2. A coarse ray stops within one of its
        (wide) pixels of any surface, so fine rays far from every coarse hit are known misses, and
        a fine ray inside a hit coarse pixel can start just before its parent's hit distance.
        """
        origin = self.position.astype(np.float32)
        dirs = self.rays(n)
        t_ground = -origin[2] / dirs[2]  # the camera looks down: every ray reaches the table
        t_start, t_far = _ray_box(origin, dirs, shape.lo, shape.hi)
        t_end = np.minimum(t_far, t_ground)
        if n % 2 == 0 and n >= 128:
            m = n // 2
            _, _, _, coarse_hit, coarse_t = self.trace(shape, m)
            coarse_hit, coarse_t = coarse_hit.reshape(m, m), coarse_t.reshape(m, m)
            near = ndimage.binary_dilation(coarse_hit, structure=np.ones((3, 3), dtype=bool))
            t_end = np.where(_expand(near), t_end, np.float32(0))
            seed = coarse_t * np.float32(1 - 2 * self.pixel_angle(m))  # two coarse pixels early
            t_start = np.where(_expand(coarse_hit), np.maximum(t_start, _expand(seed)), t_start)
        hit, t = _sphere_trace(shape, origin, dirs, t_start, t_end, self.pixel_angle(n))
        return origin, dirs, t_ground, hit, t


def _expand(coarse: np.ndarray) -> np.ndarray:
    """Each coarse pixel to its 2 x 2 block of fine pixels, flattened row-major."""
    return coarse.repeat(2, axis=0).repeat(2, axis=1).ravel()


def _random_camera(rng: np.random.Generator, shape: _Shape) -> _Camera:
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
    camera = _Camera(position, forward, right, up)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    projected = camera.project(corners)
    centre = (projected.min(axis=0) + projected.max(axis=0)) / 2
    half_width = float((projected.max(axis=0) - projected.min(axis=0)).max()) / 2 * 1.05
    preview = _Camera(position, forward, right, up, (float(centre[0]), float(centre[1])), half_width)
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
    return _Camera(position, forward, right, up, (float(centre[0]), float(centre[1])), half_width)


def _ray_box(origin, dirs, lo, hi):
    """Entry and exit distance of every ray through an axis-aligned box (exit < entry: a miss)."""
    t_near = np.zeros(dirs[0].shape, dtype=np.float32)
    t_far = np.full(dirs[0].shape, np.inf, dtype=np.float32)
    for o, d, a, b in zip(origin, dirs, lo, hi):
        inv = 1.0 / np.where(np.abs(d) < 1e-9, np.float32(1e-9), d)
        t1, t2 = (a - o) * inv, (b - o) * inv
        t_near = np.maximum(t_near, np.minimum(t1, t2))
        t_far = np.minimum(t_far, np.maximum(t1, t2))
    return t_near, t_far


def _sphere_trace(shape, origin, dirs, t_start, t_end, pixel_angle, max_steps=64):
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


def _normals(shape, x, y, z, eps):
    """Surface normal by the tetrahedron technique (4 distance evaluations)."""
    nx = np.zeros_like(x)
    ny, nz = nx.copy(), nx.copy()
    for sx, sy, sz in ((1, -1, -1), (-1, -1, 1), (-1, 1, -1), (1, 1, 1)):
        d = shape.distance(x + sx * eps, y + sy * eps, z + sz * eps)
        nx += sx * d
        ny += sy * d
        nz += sz * d
    norm = 1.0 / np.maximum(_len3(nx, ny, nz), 1e-12)
    return nx * norm, ny * norm, nz * norm


def _soft_shadow(shape, x, y, z, light, sharpness, steps=24):
    """Fraction of the lamp visible from each point (penumbra from the closest miss along the ray).

    Only rays that cross the part's bounding box are marched; the rest see the whole lamp.
    """
    lit = np.ones(x.shape, dtype=np.float32)
    dirs = tuple(np.full(x.shape, c, dtype=np.float32) for c in light)
    t_near, t_far = _ray_box((x, y, z), dirs, shape.lo, shape.hi)
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


def _ambient_occlusion(shape, x, y, z, nx, ny, nz, scale):
    """Darkening in creases: compare the distance field with the free distance along the normal."""
    occlusion = np.zeros(x.shape, dtype=np.float32)
    for i, h in enumerate((0.04, 0.12, 0.3)):
        h *= scale
        d = shape.distance(x + nx * h, y + ny * h, z + nz * h)
        occlusion += (h - d) / scale * (0.5**i)
    return np.clip(1.0 - 2.0 * occlusion, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Lighting and materials: a desk lamp, printed plastic and a wooden table


@dataclass(frozen=True)
class _Lighting:
    """A desk lamp (directional, with a soft shadow edge) plus the room's ambient light."""

    direction: np.ndarray  # unit vector towards the lamp
    lamp: np.ndarray  # lamp irradiance on a surface facing it (linear RGB)
    sky: np.ndarray  # ambient light from the room (linear RGB)
    sharpness: float  # soft-shadow parameter: larger means a smaller lamp and crisper shadows


def _random_lighting(rng: np.random.Generator) -> _Lighting:
    heading, elevation = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(30, 65))
    direction = np.array(
        [
            math.cos(elevation) * math.cos(heading),
            math.cos(elevation) * math.sin(heading),
            math.sin(elevation),
        ],
        dtype=np.float32,
    )
    warmth = rng.uniform(-1, 1)
    tint = np.array([1.0 + 0.06 * warmth, 1.0, 1.0 - 0.1 * warmth], dtype=np.float32)
    ambient = rng.uniform(0.22, 0.38)
    lamp = (rng.uniform(0.9, 1.15) - ambient) / direction[2]  # the table receives ~1 in total
    sky = ambient * np.array([0.92, 0.96, 1.05], dtype=np.float32)
    return _Lighting(direction, lamp * tint, sky, rng.uniform(4.0, 10.0))


def _srgb_to_linear(rgb) -> np.ndarray:
    return (np.asarray(rgb, dtype=np.float32) / 255.0) ** 2.2


def _value_noise(rng: np.random.Generator, grid_shape: tuple[int, int], u, v) -> np.ndarray:
    """Smooth random field: a random grid, smoothstep-interpolated at float grid coordinates (wraps)."""
    rows, cols = grid_shape
    grid = rng.standard_normal(rows * cols).astype(np.float32)
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = u - u0, v - v0
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    i0, j0 = u0.astype(np.int32) % rows, v0.astype(np.int32) % cols
    i1, j1 = (i0 + 1) % rows * cols, (j0 + 1) % cols
    i0 *= cols
    g00, g01, g10, g11 = grid[i0 + j0], grid[i0 + j1], grid[i1 + j0], grid[i1 + j1]
    near = g00 + (g01 - g00) * fv
    return near + (g10 + (g11 - g10) * fv - near) * fu


def _wood(rng: np.random.Generator, gx: np.ndarray, gy: np.ndarray, scale: float) -> np.ndarray:
    """Linear-RGB albedo of a table top at ground points: growth rings, fibres, knots, plank seams.

    The rings are where cylinders around a trunk axis (slightly tilted to the board) cut the surface,
    which gives straight grain and cathedral arches; noise warps them like a real log.
    """
    first, second = rng.choice(len(_WOODS), size=2)
    mix = np.float32(rng.uniform(0, 1) ** 2)
    early = (1 - mix) * _srgb_to_linear(_WOODS[first][0]) + mix * _srgb_to_linear(_WOODS[second][0])
    late = (1 - mix) * _srgb_to_linear(_WOODS[first][1]) + mix * _srgb_to_linear(_WOODS[second][1])

    angle = rng.uniform(0, math.pi)
    along = (gx * math.cos(angle) + gy * math.sin(angle)) / scale
    across = (-gx * math.sin(angle) + gy * math.cos(angle)) / scale

    seam = rng.uniform(-0.7, 0.7) if rng.random() < 0.3 else None
    plank = np.zeros(along.shape, np.int64) if seam is None else (across > seam).astype(np.int64)
    offset = rng.uniform(-2.0, 2.0, size=2).astype(np.float32)[plank]
    depth = rng.uniform(0.3, 1.5, size=2).astype(np.float32)[plank]
    slope = rng.uniform(-0.25, 0.25, size=2).astype(np.float32)[plank]
    tone = (1.0 + rng.normal(0, 0.07, size=2)).astype(np.float32)[plank]
    spacing = rng.uniform(0.07, 0.16)

    warp = 0.25 * _value_noise(rng, (16, 16), along * 0.5, across * 1.5)
    warp += 0.05 * _value_noise(rng, (32, 64), along * 1.5, across * 6.0)
    radius = np.sqrt((across - offset + warp * 0.3) ** 2 + (depth + slope * along) ** 2) + warp * spacing
    knot_dark = np.zeros(along.shape, dtype=np.float32)
    for _ in range(int(rng.choice([0, 0, 0, 1, 1, 2]))):
        ka, kc, size = rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.0), rng.uniform(0.03, 0.09)
        dist2 = ((along - ka) * 0.4) ** 2 + (across - kc) ** 2
        radius += size * 2.0 * np.exp(-dist2 / (size * 5) ** 2)
        knot_dark = np.maximum(knot_dark, np.exp(-dist2 / size**2))
    phase = radius / spacing
    ring = phase - np.floor(phase)
    latewood = np.clip((ring - 0.6) / 0.4, 0, 1) ** 2  # a darker band closes each growth ring
    fibres = _value_noise(rng, (16, 256), along * 3.0, across * 90.0)
    pores = _value_noise(rng, (64, 512), along * 20.0, across * 220.0)
    blotches = _value_noise(rng, (8, 8), gx / scale * 0.8, gy / scale * 0.8)

    amount = 0.25 + 0.4 * latewood + 0.07 * fibres + 0.04 * pores + 0.7 * knot_dark
    if seam is not None:
        amount += 0.8 * np.exp(-(((across - seam) / 0.01) ** 2))
    amount = np.clip(amount, 0, 1.3)[:, None]
    albedo = early * (1 - amount) + late * amount
    albedo *= (tone * (1.0 + 0.05 * blotches))[:, None]
    return np.clip(albedo, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Rendering


def _upsample(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of a coarse 2-D field to `shape`."""
    zoom = (shape[0] / field.shape[0], shape[1] / field.shape[1])
    return ndimage.zoom(field, zoom, order=1, mode="nearest", grid_mode=True)[: shape[0], : shape[1]]


def _shade_table(rng, shape: _Shape, camera: _Camera, lighting: _Lighting, size: int) -> np.ndarray:
    """Linear RGB (size, size, 3) of the table: wood lit by the lamp, with the part's soft shadow.

    Computed at output resolution (the part's edges are what needs supersampling); the shadow and
    the contact occlusion at half of that, because they are soft.
    """
    origin = camera.position.astype(np.float32)
    dirs = camera.rays(size)
    t_ground = -origin[2] / dirs[2]
    gx, gy = origin[0] + dirs[0] * t_ground, origin[1] + dirs[1] * t_ground
    albedo = _wood(rng, gx, gy, shape.extent)

    coarse_x, coarse_y = gx.reshape(size, size)[::2, ::2], gy.reshape(size, size)[::2, ::2]
    cx, cy = coarse_x.ravel(), coarse_y.ravel()
    cz = np.full(cx.shape, 0.005 * shape.extent, dtype=np.float32)
    shadow = _soft_shadow(shape, cx, cy, cz, lighting.direction, lighting.sharpness)
    contact = np.clip(shape.distance(cx, cy, cz) / (0.15 * shape.extent), 0, 1) ** 0.7
    shadow = _upsample(shadow.reshape(coarse_x.shape), (size, size)).ravel()
    contact = _upsample(contact.reshape(coarse_x.shape), (size, size)).ravel()

    # Varnish: a broad, faint reflection of the lamp; and the lamp's light falls off across the desk.
    light = lighting.direction
    hx, hy, hz = light[0] - dirs[0], light[1] - dirs[1], light[2] - dirs[2]
    n_dot_h = hz / _len3(hx, hy, hz)
    sheen = rng.uniform(0.02, 0.1) * n_dot_h ** rng.uniform(8, 40) * shadow
    falloff = 1.0 + 0.12 * np.tanh((gx * light[0] + gy * light[1]) / (2 * shape.extent))
    irradiance = light[2] * shadow[:, None] * lighting.lamp + (0.5 + 0.5 * contact)[:, None] * lighting.sky
    table = albedo * irradiance * falloff[:, None] + sheen[:, None] * lighting.lamp
    return table.reshape(size, size, 3)


def _shade_part(rng, shape: _Shape, camera: _Camera, lighting: _Lighting, n: int, bounce: np.ndarray):
    """Sphere-trace the part at n x n; returns (flat indices of hit pixels, their linear RGB)."""
    origin, dirs, _, hit, t_hit = camera.trace(shape, n)
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return idx, np.zeros((0, 3), dtype=np.float32)
    scale, light = shape.extent, lighting.direction
    th = t_hit[idx]
    px, py, pz = (origin[k] + dirs[k][idx] * th for k in range(3))
    vx, vy, vz = (-dirs[k][idx] for k in range(3))
    eps = camera.pixel_angle(n) * th * 0.5
    nx, ny, nz = _normals(shape, px, py, pz, eps)

    # Printed plastic: horizontal layer ridges on the walls, diagonal infill lines on top faces.
    layer = max(scale / rng.uniform(45, 70), 4.5 * camera.pixel_angle(n) * float(th.mean()))
    wall = np.clip(1.0 - np.abs(nz), 0, 1)
    top = np.clip(np.abs(nz) * 1.5 - 0.5, 0, 1) ** 2
    ridge = np.cos(pz * (2 * math.pi / layer))
    infill_angle = rng.choice([math.pi / 4, -math.pi / 4])
    infill = np.cos(
        (px * math.cos(infill_angle) + py * math.sin(infill_angle)) * (2 * math.pi / (1.1 * layer))
    )
    bump = 0.12 * wall * ridge
    nx, ny, nz = nx - bump * nx * nz, ny - bump * ny * nz, nz + bump
    norm = 1.0 / _len3(nx, ny, nz)
    nx, ny, nz = nx * norm, ny * norm, nz * norm

    colours = rng.choice(len(_PLASTIC_PALETTE), size=2)
    palette = np.stack([_srgb_to_linear(_PLASTIC_PALETTE[c]) for c in colours])
    palette *= (1.0 + rng.normal(0, 0.05, size=(2, 3))).astype(np.float32)
    albedo = palette[shape.material(px, py, pz)]
    albedo *= (1.0 + 0.06 * wall * ridge + 0.05 * top * infill)[:, None]

    # Shadow and occlusion are soft: compute them once per output pixel (one sample per 2x2 block),
    # and only for samples facing the lamp.
    blocks = (idx // n // _SUPERSAMPLE) * n + (idx % n) // _SUPERSAMPLE
    _, first, block_of = np.unique(blocks, return_index=True, return_inverse=True)
    facing = first[nx[first] * light[0] + ny[first] * light[1] + nz[first] * light[2] > 0]
    offset = 2.0 * eps[facing]
    block_shadow = np.ones(first.shape, dtype=np.float32)
    block_shadow[np.searchsorted(first, facing)] = _soft_shadow(
        shape,
        px[facing] + nx[facing] * offset,
        py[facing] + ny[facing] * offset,
        pz[facing] + nz[facing] * offset,
        light,
        lighting.sharpness,
        steps=18,
    )
    shadow = block_shadow[block_of]
    occlusion = _ambient_occlusion(
        shape, px[first], py[first], pz[first], nx[first], ny[first], nz[first], 0.25 * scale
    )[block_of]
    n_dot_l = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, 1) * shadow
    sky = (0.6 + 0.4 * nz) * occlusion
    from_table = np.clip(-nz, 0, 1) * occlusion * 0.6
    diffuse = n_dot_l[:, None] * lighting.lamp + sky[:, None] * lighting.sky + from_table[:, None] * bounce

    hx, hy, hz = vx + light[0], vy + light[1], vz + light[2]
    n_dot_h = np.clip((nx * hx + ny * hy + nz * hz) / _len3(hx, hy, hz), 0, 1)
    gloss, shininess = rng.uniform(0.25, 0.6), rng.uniform(18, 60)
    specular = gloss * n_dot_h**shininess * shadow * np.clip(n_dot_l * 4, 0, 1)
    fresnel = 0.04 + 0.96 * np.clip(1.0 - (nx * vx + ny * vy + nz * vz), 0, 1) ** 5
    reflection = fresnel * occlusion * (0.35 * np.clip(nz, 0, 1) + 0.1)
    colour = albedo * diffuse + specular[:, None] * lighting.lamp + reflection[:, None] * lighting.sky * 3
    return idx, colour


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


def _render(class_name: str, rng: np.random.Generator, size: int) -> tuple[Image.Image, np.ndarray]:
    """The photo and the part's coverage (fraction of each output pixel covered by the part)."""
    shape = _BUILDERS[class_name](rng)
    camera = _random_camera(rng, shape)
    lighting = _random_lighting(rng)
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
    if class_name not in _BUILDERS:
        raise ValueError(f"Unknown demo class {class_name!r}; choose one of {', '.join(DEMO_CLASS_NAMES)}.")
    if size < 16:
        raise ValueError(f"Demo image size must be at least 16 pixels, got {size}.")
    return _render(class_name, rng, size)[0]


# --------------------------------------------------------------------------------------------------
# The dataset on disk


def _cache_root() -> Path:
    return Path(os.environ.get("GAN_STUDIO_CACHE") or Path.home() / ".cache" / "gan_studio").expanduser()


def _dataset_error(message: str) -> Exception:
    # Imported here: gan_studio.data.folder pulls in torch, which the render workers never need.
    from gan_studio.data.folder import DatasetError

    return DatasetError(message)


def _metadata(per_class: int, size: int, seed: int) -> dict:
    return {
        "name": DATASET_NAME,
        "generator": GENERATOR,
        "seed": seed,
        "size": size,
        "per_class": per_class,
        "class_names": list(DEMO_CLASS_NAMES),
        "version": GENERATOR_VERSION,
    }


def _read_metadata(root: Path) -> dict | None:
    try:
        meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _image_name(class_name: str, index: int, per_class: int) -> str:
    return f"{class_name.lower()}_{index:0{max(4, len(str(per_class - 1)))}d}.png"


def _is_complete(root: Path, expected: dict) -> bool:
    """dataset.json is written last, so its presence (and every image) means a finished run."""
    if _read_metadata(root) != expected:
        return False
    per_class = expected["per_class"]
    return all(
        (root / name / _image_name(name, per_class - 1, per_class)).is_file()
        and sum(1 for p in (root / name).iterdir() if p.suffix == ".png") == per_class
        for name in DEMO_CLASS_NAMES
    )


def _render_job(job: tuple[int, int, int, int, str]) -> None:
    seed, class_index, index, size, path = job
    rng = np.random.default_rng([seed, class_index, index])
    render_part(DEMO_CLASS_NAMES[class_index], rng, size).save(path, format="PNG", compress_level=3)


def _process_context() -> multiprocessing.context.BaseContext:
    """fork when the caller is single-threaded (the CLI, a test): workers start at once.

    A threaded caller (the Gradio app) gets spawn, because forking while another thread holds a lock
    can deadlock the child; spawned workers pay a few seconds of imports instead. tqdm's monitor
    thread does not count: it only sleeps and takes tqdm's own lock, which the workers never use.
    """
    others = [
        t for t in threading.enumerate() if t is not threading.current_thread() and t.name != "tqdm_monitor"
    ]
    if not others and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _render_all(jobs: list[tuple], workers: int, progress: bool, desc: str) -> None:
    workers = min(workers, len(jobs))
    if workers == 1:
        for job in tqdm(jobs, desc=desc, unit="img", disable=not progress):
            _render_job(job)
        return
    with _process_context().Pool(workers) as pool:
        results = pool.imap_unordered(_render_job, jobs, chunksize=8)
        for _ in tqdm(results, total=len(jobs), desc=desc, unit="img", disable=not progress):
            pass


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished folder to `out`, retiring (then deleting) a previous dataset there."""
    if not out.exists():
        os.rename(staging, out)
        return
    retired = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(out, retired)
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(retired, out)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _check_arguments(per_class: int, size: int, seed: int, workers: int | None) -> None:
    """Refuse impossible requests up front, before a folder is created (ValueError: the CLI prints it)."""
    if not (isinstance(per_class, int) and per_class >= 1):
        raise ValueError(f"The number of images per class (per-class) must be at least 1, got {per_class!r}.")
    if not (isinstance(size, int) and 16 <= size <= 1024):
        raise ValueError(f"The image size must be between 16 and 1024 pixels, got {size!r}.")
    if not (isinstance(seed, int) and seed >= 0):
        raise ValueError(f"The seed must be a non-negative integer, got {seed!r}.")
    if workers is not None and not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"The number of worker processes must be at least 1, got {workers!r}.")


def make_demo_dataset(
    out_dir: str | os.PathLike,
    *,
    per_class: int = 200,
    size: int = 128,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write the vise-parts dataset: OUT_DIR/<ClassName>/<classname>_0000.png plus dataset.json.

    The images are rendered into a hidden folder next to `out_dir` that is renamed into place at the
    end, so an interrupted run never leaves a half dataset behind. A previous vise-parts dataset in
    `out_dir` is replaced; any other non-empty folder is refused.
    """
    _check_arguments(per_class, size, seed, workers)
    out = Path(out_dir).expanduser().absolute()
    if out.exists():
        if not out.is_dir():
            raise _dataset_error(f"'{out}' is a file; pass a new folder name for the demo dataset.")
        previous = _read_metadata(out)
        if any(out.iterdir()) and not (previous and previous.get("name") == DATASET_NAME):
            raise _dataset_error(
                f"'{out}' already exists and holds other files; pass a new (or empty) folder for the demo "
                "dataset, or delete that folder first."
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        jobs = []
        for class_index, name in enumerate(DEMO_CLASS_NAMES):
            (staging / name).mkdir(parents=True)
            for index in range(per_class):
                path = staging / name / _image_name(name, index, per_class)
                jobs.append((seed, class_index, index, size, str(path)))
        _render_all(jobs, workers or min(2, os.cpu_count() or 1), progress, f"vise-parts {size}px")
        meta = json.dumps(_metadata(per_class, size, seed), indent=2) + "\n"
        (staging / "dataset.json").write_text(meta, encoding="utf-8")
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


_ENSURE_LOCK = threading.Lock()


def ensure_demo_dataset(
    *, per_class: int = 200, size: int = 128, seed: int = 0, progress: bool = True
) -> Path:
    """The demo dataset from the cache ($GAN_STUDIO_CACHE, default ~/.cache/gan_studio), built once."""
    _check_arguments(per_class, size, seed, None)
    root = _cache_root() / "datasets" / f"{DATASET_NAME}-s{size}-n{per_class}-seed{seed}"
    expected = _metadata(per_class, size, seed)
    if _is_complete(root, expected):
        return root
    with _ENSURE_LOCK:  # two threads of one app (a warm-up and a click) render it once, not twice
        if _is_complete(root, expected):
            return root
        try:
            return make_demo_dataset(root, per_class=per_class, size=size, seed=seed, progress=progress)
        except OSError:
            if _is_complete(root, expected):  # another process finished the same dataset first
                return root
            raise


def make_contact_sheet(
    dataset_dir: str | os.PathLike, out_path: str | os.PathLike, per_class: int = 8, tile: int = 96
) -> Path:
    """A PNG grid of the first `per_class` images of every class (one row each, name on the left)."""
    root = Path(dataset_dir).expanduser()
    if not root.is_dir():
        raise _dataset_error(
            f"Dataset folder '{root}' does not exist; pass the folder that holds the class folders."
        )
    names = (_read_metadata(root) or {}).get("class_names") or sorted(
        p.name for p in root.iterdir() if p.is_dir()
    )
    if not names:
        raise _dataset_error(
            f"'{root}' has no class folders; make one with `python -m gan_studio demo-data {root}`."
        )
    rows = []
    for name in names:
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
        if not files:
            raise _dataset_error(f"Class folder '{root / name}' has no images; regenerate the dataset.")
        rows.append((name, files[:per_class]))

    font = ImageFont.load_default(size=max(10, tile // 7))
    gap, margin = 3, 8
    label_width = max(int(font.getlength(name)) for name in names) + 2 * margin
    width = label_width + per_class * (tile + gap) - gap + margin
    height = len(rows) * (tile + gap) - gap + 2 * margin
    sheet = Image.new("RGB", (width, height), (246, 246, 244))
    draw = ImageDraw.Draw(sheet)
    for row, (name, files) in enumerate(rows):
        y = margin + row * (tile + gap)
        draw.text((margin, y + tile // 2), name, fill=(30, 30, 30), font=font, anchor="lm")
        for column, file in enumerate(files):
            with Image.open(file) as img:
                thumb = img.convert("RGB").resize((tile, tile), _LANCZOS)
            sheet.paste(thumb, (label_width + column * (tile + gap), y))

    out = Path(out_path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        sheet.save(partial, format="PNG", optimize=True)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out
