"""The ten vise parts, one builder each: random proportions in, a `Shape` resting on the table out.

Every builder draws all of its random numbers before it defines its distance function, so a part
depends only on the generator's state when the builder is called.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gan_studio.data.demo.geometry import (
    Shape,
    box,
    box2,
    cylinder,
    extrude,
    hexagon,
    len2,
    len3,
    make_shape,
    polar_repeat,
    subtract,
    thread,
    triangle_wave,
)

# The order is the class index, which seeds every image: reordering it would change the dataset.
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


def _vise_screw(rng: np.random.Generator) -> Shape:
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
        radial = len2(y, zz)
        threaded = thread(radial, x, np.arctan2(zz, y), radius, pitch, 0.24 * radius)
        rod = np.maximum(threaded, cylinder(radial, x - rod_cx, radius, rod_half, 0.4 * radius))
        hub = cylinder(radial, x - hub_x, hub_r, hub_len / 2, 0.07)
        xh = x - hub_x
        bar = cylinder(len2(xh, zz), y, bar_r, bar_half)
        balls = len3(xh, np.abs(y) - bar_half, zz) - ball_r
        return np.minimum(np.minimum(rod, hub), np.minimum(bar, balls))

    return make_shape(
        (part, 0),
        lo=(-length / 2, -bar_half - ball_r, 0.0),
        hi=(length / 2, bar_half + ball_r, axis_z + max(hub_r, ball_r)),
    )


def _clamp(rng: np.random.Generator) -> Shape:
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
        outer = box2(x, y, hx, hy, corner)
        inner = box2(x - back / 2 - 0.5, y, hx - back / 2 + 0.5, hy - wall, 0.12)
        frame = subtract(outer, inner)
        jaw_pad = box2(x - (hx - 0.25), np.abs(y) - (hy - wall - pad / 2), 0.22, pad / 2, 0.03)
        body = extrude(np.minimum(frame, jaw_pad), z - thick / 2, thick / 2, 0.06)
        boss = cylinder(len2(x - boss_x, y - boss_y), z - thick / 2 - 0.08, boss_r, thick / 2 + 0.08, 0.06)
        radial = len2(x - boss_x, y - boss_y)
        hole = -thread(radial, z, np.arctan2(y - boss_y, x - boss_x), hole_r, 0.12, 0.05)
        return np.maximum(np.minimum(body, boss), hole)

    return make_shape((part, 0), lo=(-hx, -hy, 0.0), hi=(hx, hy, thick + 0.16))


def _nut(rng: np.random.Generator) -> Shape:
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
        body = np.maximum(hexagon(a, b, apothem), np.abs(c) - half_h)
        radial = len2(a, b)
        cone = (radial + chamfer_k * np.abs(c) - (apothem * 1.02 + chamfer_k * half_h)) / math.sqrt(
            1 + chamfer_k**2
        )
        hole = thread(radial, c, np.arctan2(b, a), hole_r, pitch, 0.06)
        return subtract(np.maximum(body, cone), hole)

    circum = apothem * 1.1548
    if standing:
        return make_shape((part, 0), lo=(-circum, -half_h, 0.0), hi=(circum, half_h, 2 * apothem))
    return make_shape((part, 0), lo=(-circum, -circum, 0.0), hi=(circum, circum, 2 * half_h))


def _base(rng: np.random.Generator) -> Shape:
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
        plate = extrude(box2(x, y, hx, hy, corner), z - thick / 2, thick / 2, 0.05)
        hx_l, hy_l = np.abs(x) - (hx - inset), np.abs(y) - (hy - inset)
        radial = len2(hx_l, hy_l)
        holes = np.minimum(radial - hole_r, np.maximum(radial - 1.8 * hole_r, thick * 0.55 - z))
        slot = box2(x, y, slot_half, slot_w, slot_w * 0.99)
        body = subtract(subtract(plate, holes), slot)
        if rails:
            rail = box(
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

    return make_shape((part, 0), lo=(-hx, -hy, 0.0), hi=(hx, hy, thick + (rail_h if rails else 0.0)))


def _assembly(rng: np.random.Generator) -> Shape:
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
        plate = box(x, y, z - thick / 2, hx, hy, thick / 2, 0.05)
        fixed = box(x - fixed_x, y, z - thick - jaw_h / 2 + 0.02, jaw_w / 2, hy, jaw_h / 2, 0.05)
        moving = box(
            x - moving_x, y, z - thick - jaw_h * 0.45 + 0.02, jaw_w / 2, hy * 0.97, jaw_h * 0.45, 0.05
        )
        return np.minimum(plate, np.minimum(fixed, moving))

    def spindle(x, y, z):
        zz = z - screw_z
        radial = len2(y, zz)
        centre = (hub_x + moving_x) / 2
        rod = np.maximum(
            thread(radial, x, np.arctan2(zz, y), screw_r, 0.14, 0.035),
            cylinder(radial, x - centre, screw_r, (moving_x - hub_x) / 2),
        )
        hub = cylinder(radial, x - hub_x, screw_r * 1.9, 0.2, 0.05)
        bar = cylinder(len2(x - hub_x, zz), y, bar_r, bar_half)
        balls = len3(x - hub_x, np.abs(y) - bar_half, zz) - bar_r * 1.8
        return np.minimum(np.minimum(rod, hub), np.minimum(bar, balls))

    top = max(thick + jaw_h, screw_z + bar_r * 1.8)
    return make_shape(
        (frame, 0),
        (spindle, screw_material),
        lo=(hub_x - 0.25, -max(hy, bar_half + 0.15), 0.0),
        hi=(hx, max(hy, bar_half + 0.15), top),
    )


def _head_plate(rng: np.random.Generator) -> Shape:
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
        outline = box2(x, y, radius, radius, corner) if square else len2(x, y) - radius
        plate = extrude(outline, z - thick / 2, thick / 2, 0.04)
        rim = extrude(
            np.abs(outline + rim_w / 2) - rim_w / 2, z - (thick + rim_h) / 2, (thick + rim_h) / 2, 0.04
        )
        bx, by = polar_repeat(x, y, bolts, bolt_circle)
        bolt_radial = len2(bx, by)
        boss = cylinder(bolt_radial, z - (thick + 0.1) / 2, boss_r, (thick + 0.1) / 2, 0.04)
        radial = len2(x, y)
        hub = cylinder(radial, z - (thick + hub_h) / 2, hub_r, (thick + hub_h) / 2, 0.05)
        body = np.minimum(np.minimum(plate, rim), np.minimum(boss, hub))
        return subtract(subtract(body, bolt_radial - bolt_r), radial - hub_r * 0.45)

    return make_shape(
        (part, 0),
        lo=(-1.42 * radius, -1.42 * radius, 0.0),
        hi=(1.42 * radius, 1.42 * radius, thick + max(rim_h, hub_h)),
    )


def _ball_joint(rng: np.random.Generator) -> Shape:
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
        outline = hexagon(x, y, socket_r) if hex_socket else len2(x, y) - socket_r
        cup = extrude(outline, z - socket_h / 2, socket_h / 2, 0.05)
        return subtract(cup, len3(x, y, z - ball_z) - ball_r * 1.04)

    def ball(x, y, z):
        px, py, pz = x, y, z - ball_z
        along = np.clip(px * axis[0] + py * axis[1] + pz * axis[2], 0.0, stem_len)
        stem = len3(px - axis[0] * along, py - axis[1] * along, pz - axis[2] * along) - stem_r
        knob = len3(px - end[0], py - end[1], pz - end[2]) - stem_r * 1.5
        return np.minimum(np.minimum(len3(px, py, pz) - ball_r, stem), knob)

    reach = stem_len + stem_r * 1.5
    lo = (min(-socket_r * 1.16, end[0] - stem_r * 1.5), min(-socket_r * 1.16, end[1] - stem_r * 1.5), 0.0)
    hi = (
        max(socket_r * 1.16, end[0] + stem_r * 1.5),
        max(socket_r * 1.16, end[1] + stem_r * 1.5),
        ball_z + reach,
    )
    return make_shape((socket, materials[0]), (ball, materials[1]), lo=lo, hi=hi)


def _screw(rng: np.random.Generator) -> Shape:
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
        radial = len2(v, w)
        shank_axial = -u - shank_len / 2
        shank = np.maximum(
            thread(radial, u, np.arctan2(w, v), radius, pitch, 0.22 * radius),
            cylinder(radial, shank_axial, radius, shank_len / 2, 0.35 * radius),
        )
        hu = u - head_h / 2
        if head == "button":
            cap = len3(v / head_r, w / head_r, np.maximum(u, 0) / head_h) - 1.0
            head_d = np.maximum(cap * min(head_r, head_h) * 0.9, -u)
        elif head == "cheese":
            head_d = cylinder(radial, hu, head_r, head_h / 2, 0.08)
        else:
            head_d = np.maximum(hexagon(v, w, head_r * 0.9), np.abs(hu) - head_h / 2)
        if recess_slot:
            recess = np.maximum(box2(v, w, head_r * 1.1, head_r * 0.14), head_h * 0.55 - u)
        else:
            recess = np.maximum(hexagon(v, w, head_r * 0.42), head_h * 0.45 - u)
        return np.minimum(subtract(head_d, recess), shank)

    if standing:
        return make_shape(
            (part, 0), lo=(-head_r * 1.16, -head_r * 1.16, 0.0), hi=(head_r * 1.16, head_r * 1.16, total)
        )
    return make_shape(
        (part, 0), lo=(-total / 2, -head_r * 1.16, 0.0), hi=(total / 2, head_r * 1.16, 2 * head_r + lift)
    )


def _clamp_screw(rng: np.random.Generator) -> Shape:
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
        radial = len2(y, zz)
        angle = np.arctan2(zz, y)
        rod_lo, rod_hi = neck_x, knob_x
        rod = np.maximum(
            thread(radial, x, angle, radius, pitch, 0.22 * radius),
            cylinder(radial, x - (rod_lo + rod_hi) / 2, radius, (rod_hi - rod_lo) / 2),
        )
        knurl = radial - (knob_r - 0.05 * triangle_wave(angle * (ridges / (2 * math.pi))))
        knob = np.maximum(cylinder(radial, x - knob_x, knob_r, knob_len / 2, 0.08), knurl)
        pad = cylinder(radial, x - pad_x, pad_r, pad_h / 2, 0.05)
        neck = len3(x - neck_x, y, zz) - radius * 1.45
        return np.minimum(np.minimum(rod, knob), np.minimum(pad, neck))

    side = max(knob_r, pad_r)
    return make_shape((part, 0), lo=(-length / 2, -side, 0.0), hi=(length / 2, side, 2 * axis_z))


def _slider(rng: np.random.Generator) -> Shape:
    """Sliding block with a dovetail groove along its top and often a bore in one end."""
    hx, hy, height = rng.uniform(1.0, 1.4), rng.uniform(0.7, 0.95), rng.uniform(0.75, 1.05)
    top_w = hy * rng.uniform(0.5, 0.7)
    depth = height * rng.uniform(0.38, 0.5)
    flare = rng.uniform(0.35, 0.6)  # dovetail: groove widens with depth
    hole_r = rng.uniform(0.13, 0.18)
    has_hole = rng.random() < 0.7
    norm = math.sqrt(1 + flare**2)

    def part(x, y, z):
        block = box(x, y, z - height / 2, hx, hy, height / 2, 0.06)
        zt = z - height  # 0 at the top face, negative below
        groove = np.maximum(-zt - depth, (np.abs(y) - top_w / 2 + zt * flare) / norm)
        body = subtract(block, groove)
        if has_hole:
            radial = len2(y, z - (height - depth) / 2)
            body = subtract(body, np.maximum(radial - hole_r, hx * 0.4 - x))
        return body

    return make_shape((part, 0), lo=(-hx, -hy, 0.0), hi=(hx, hy, height))


BUILDERS: dict[str, Callable[[np.random.Generator], Shape]] = {
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
assert tuple(BUILDERS) == DEMO_CLASS_NAMES
