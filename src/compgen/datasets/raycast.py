"""Vectorised ray casting of a few solids, for the 3D-looking generators (shapes3d, mpi3d).

Rays are arrays: origins and unit directions, (R, 3) each (or (3,) for a shared origin). Every
`hit_*` returns (t, normal): the distance to the first entry point along each ray (inf on a miss)
and the outward unit normal there. World axes: x right, y up, z towards the viewer.
"""

from __future__ import annotations

import numpy as np

MISS = np.inf


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def perspective_rays(eye, target, fov_deg: float, pixels: int, supersample: int):
    """Rays through a pixels x pixels image, `supersample`^2 rays per pixel (row-major, top row first)."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    forward = _unit(target - eye)
    right = _unit(np.cross(forward, [0.0, 1.0, 0.0]))
    up = np.cross(right, forward)
    n = pixels * supersample
    offsets = (np.arange(n) + 0.5) / n * 2 - 1  # in (-1, 1), pixel-centred sub-samples
    half = np.tan(np.radians(fov_deg) / 2)
    sy, sx = np.meshgrid(-offsets * half, offsets * half, indexing="ij")
    directions = forward + sx[..., None] * right + sy[..., None] * up
    return eye, _unit(directions.reshape(-1, 3))


def orthographic_rays(
    centre, elevation_deg: float, half_width: float, pixels: int, supersample: int, shift=(0.0, 0.0)
):
    """Parallel rays looking down at `elevation_deg` towards -z, covering a square of `half_width`.

    `shift` moves the object relative to the pixel grid by a fraction of a pixel (x right, y down).
    """
    e = np.radians(elevation_deg)
    forward = np.array([0.0, -np.sin(e), -np.cos(e)])
    up = np.array([0.0, np.cos(e), -np.sin(e)])
    right = np.array([1.0, 0.0, 0.0])
    n = pixels * supersample
    pixel = 2 * half_width / pixels
    offsets = (np.arange(n) + 0.5) / n * 2 * half_width - half_width
    sy, sx = np.meshgrid(-(offsets - shift[1] * pixel), offsets - shift[0] * pixel, indexing="ij")
    start = np.asarray(centre, float) - 10 * half_width * forward  # well in front of the object
    origins = start + sx[..., None] * right + sy[..., None] * up
    return origins.reshape(-1, 3), np.broadcast_to(forward, (n * n, 3))


def _first_positive(*candidates: np.ndarray) -> np.ndarray:
    ts = np.stack([np.where(c > 1e-9, c, MISS) for c in candidates])
    return ts.min(axis=0)


def hit_plane(origin, direction, normal, offset: float):
    """The plane normal . p = offset, seen from the side the normal points to."""
    normal = np.asarray(normal, float)
    denom = direction @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (offset - np.asarray(origin) @ normal) / denom
    t = np.where((denom < 0) & (t > 1e-9), t, MISS)
    return t, np.broadcast_to(normal, direction.shape)


def hit_convex(origin, direction, normals, offsets):
    """Convex polyhedron {p : normals . p <= offsets}, entered from outside."""
    normals = np.asarray(normals, float)
    offsets = np.asarray(offsets, float)
    origin = np.broadcast_to(np.asarray(origin, float), direction.shape)
    denom = direction @ normals.T  # (R, planes)
    num = offsets[None] - origin @ normals.T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / denom
    entering = np.where(denom < 0, ratio, -MISS)
    exiting = np.where(denom > 0, ratio, MISS)
    parallel_outside = ((denom == 0) & (num < 0)).any(axis=1)
    t_enter, plane = entering.max(axis=1), entering.argmax(axis=1)
    hit = (t_enter <= exiting.min(axis=1)) & (t_enter > 1e-9) & ~parallel_outside
    return np.where(hit, t_enter, MISS), normals[plane]


def hit_sphere(origin, direction, centre, radius: float):
    oc = np.asarray(origin, float) - np.asarray(centre, float)
    b = (direction * oc).sum(-1)
    c = (oc * oc).sum(-1) - radius**2
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0))
    t = np.where(disc >= 0, _first_positive(-b - root, -b + root), MISS)
    point = np.asarray(origin) + np.where(np.isfinite(t), t, 0)[:, None] * direction
    return t, (point - centre) / radius


def _side_roots(a, b, c):
    disc = b * b - 4 * a * c
    root = np.sqrt(np.maximum(disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-b - root) / (2 * a), (-b + root) / (2 * a)
    ok = (disc >= 0) & (a != 0)
    return np.where(ok, np.minimum(t1, t2), MISS), np.where(ok, np.maximum(t1, t2), MISS)


def _pick(hits):
    """The nearest of several (t, normal) hits."""
    ts = np.stack([t for t, _ in hits])
    which = ts.argmin(axis=0)
    normals = np.stack([np.broadcast_to(n, (ts.shape[1], 3)) for _, n in hits])
    return ts.min(axis=0), normals[which, np.arange(ts.shape[1])]


def _disc(origin, direction, y: float, radius: float, facing: float):
    """A horizontal disc at height y, facing up (+1) or down (-1)."""
    t, normal = hit_plane(origin, direction, [0.0, facing, 0.0], facing * y)
    point = np.asarray(origin) + np.where(np.isfinite(t), t, 0)[:, None] * direction
    inside = point[:, 0] ** 2 + point[:, 2] ** 2 <= radius**2
    return np.where(inside, t, MISS), normal


def hit_cylinder(origin, direction, radius: float, y0: float, y1: float, caps: bool = True):
    """Upright cylinder around the y axis between heights y0 and y1."""
    o = np.broadcast_to(np.asarray(origin, float), direction.shape)
    a = direction[:, 0] ** 2 + direction[:, 2] ** 2
    b = 2 * (o[:, 0] * direction[:, 0] + o[:, 2] * direction[:, 2])
    c = o[:, 0] ** 2 + o[:, 2] ** 2 - radius**2
    near, _ = _side_roots(a, b, c)  # seen from outside, a ray enters the wall at the near root
    y = o[:, 1] + np.where(np.isfinite(near), near, 0) * direction[:, 1]
    t = np.where((near > 1e-9) & (y >= y0) & (y <= y1), near, MISS)
    point = o + np.where(np.isfinite(t), t, 0)[:, None] * direction
    side = (t, point * [1.0, 0.0, 1.0] / radius)
    if not caps:
        return side
    top, bottom = _disc(origin, direction, y1, radius, 1.0), _disc(origin, direction, y0, radius, -1.0)
    return _pick([side, top, bottom])


def hit_cone(origin, direction, radius: float, y0: float, height: float):
    """Upright cone: base of `radius` at height y0, apex `height` above it."""
    o = np.broadcast_to(np.asarray(origin, float), direction.shape)
    k2 = (radius / height) ** 2
    apex = y0 + height
    ya = apex - o[:, 1]
    a = direction[:, 0] ** 2 + direction[:, 2] ** 2 - k2 * direction[:, 1] ** 2
    b = 2 * (o[:, 0] * direction[:, 0] + o[:, 2] * direction[:, 2] + k2 * ya * direction[:, 1])
    c = o[:, 0] ** 2 + o[:, 2] ** 2 - k2 * ya**2
    candidates = []
    for t in _side_roots(a, b, c):
        y = o[:, 1] + np.where(np.isfinite(t), t, 0) * direction[:, 1]
        candidates.append(np.where((t > 1e-9) & (y >= y0) & (y <= apex), t, MISS))
    t = np.minimum(*candidates)
    point = o + np.where(np.isfinite(t), t, 0)[:, None] * direction
    normal = _unit(np.stack([point[:, 0], k2 * (apex - point[:, 1]) + 1e-12, point[:, 2]], axis=1))
    return _pick([(t, normal), _disc(origin, direction, y0, radius, -1.0)])


def hit_capsule(origin, direction, radius: float, y0: float, y1: float):
    """Upright capsule: a cylinder between y0 + radius and y1 - radius with hemispherical ends."""
    lo, hi = y0 + radius, y1 - radius
    return _pick(
        [
            hit_cylinder(origin, direction, radius, lo, hi, caps=False),
            hit_sphere(origin, direction, [0.0, lo, 0.0], radius),
            hit_sphere(origin, direction, [0.0, hi, 0.0], radius),
        ]
    )


def prism_planes(sides: int, radius: float, y0: float, y1: float, rotation: float = 0.0):
    """Half-spaces of an upright regular prism (circumradius `radius`)."""
    angles = rotation + 2 * np.pi * np.arange(sides) / sides
    normals = np.stack([np.cos(angles), np.zeros(sides), np.sin(angles)], axis=1)
    offsets = np.full(sides, radius * np.cos(np.pi / sides))
    normals = np.vstack([normals, [0, 1, 0], [0, -1, 0]])
    return normals, np.concatenate([offsets, [y1, -y0]])


def pyramid_planes(half: float, y0: float, height: float, rotation: float = 0.0):
    """Half-spaces of an upright square pyramid with base half-width `half` at height y0."""
    slope = np.hypot(height, half)
    normals, offsets = [], []
    for angle in rotation + np.arange(4) * np.pi / 2:
        n = np.array([np.cos(angle) * height, half, np.sin(angle) * height]) / slope
        normals.append(n)
        offsets.append(n @ np.array([0.0, y0 + height, 0.0]))  # every side holds the apex
    normals.append(np.array([0.0, -1.0, 0.0]))
    offsets.append(-y0)
    return np.array(normals), np.array(offsets)


def box_planes(lo, hi):
    normals = np.vstack([np.eye(3), -np.eye(3)])
    return normals, np.concatenate([np.asarray(hi, float), -np.asarray(lo, float)])


def lambert(normal: np.ndarray, light: np.ndarray, ambient: float) -> np.ndarray:
    """Diffuse shading in [ambient, 1] for a unit light direction (pointing towards the light)."""
    return ambient + (1 - ambient) * np.clip(normal @ _unit(np.asarray(light, float)), 0, 1)


def hsv_to_rgb(hue: np.ndarray, saturation: float, value: float) -> np.ndarray:
    """RGB in [0, 1] (..., 3) of hues in [0, 1) at one saturation and value."""
    hue = np.asarray(hue, float)[..., None]
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return value - value * saturation * np.clip(np.minimum(k, 4 - k), 0, 1)
