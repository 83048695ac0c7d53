"""3DShapes stand-in: a room corner (floor and two walls) with a shaded object, seen by a camera
that turns about the object (orientation).

The scene geometry depends only on (scale, shape, orientation): 480 small ray-cast renders, each
kept as per-pixel weights of the three hue regions (floor, wall, object) with shading and shadows
folded in, so an image is a (pixels x 3) @ (3 x RGB) product with its three hue colours.
"""

from __future__ import annotations

import functools

import numpy as np

from compgen.datasets import raycast
from compgen.grid import CATEGORICAL, CIRCULAR, ORDINAL, Factor, Grid

SIZE = 64
HUES = tuple(round(0.1 * k, 1) for k in range(10))
SHAPES3D_GRID = Grid(
    (
        # Hues are fractions of the colour wheel: 0.9 lies next to 0.0.
        Factor("floor_hue", HUES, kind=CIRCULAR, period=1.0),
        Factor("wall_hue", HUES, kind=CIRCULAR, period=1.0),
        Factor("object_hue", HUES, kind=CIRCULAR, period=1.0),
        Factor("scale", tuple(np.linspace(0.75, 1.25, 8).tolist()), kind=ORDINAL),
        Factor("shape", (0.0, 1.0, 2.0, 3.0), ("cube", "cylinder", "sphere", "capsule"), kind=CATEGORICAL),
        # Degrees over an arc of 60°, not a whole turn: its ends are far apart.
        Factor("orientation", tuple(np.linspace(-30.0, 30.0, 15).tolist()), kind=ORDINAL),
    ),
    (SIZE, SIZE, 3),
)
SATURATION, VALUE = 0.8, 1.0
SUPERSAMPLE = 3  # rays per pixel side: smooth edges, so every small step shows
WALL = 1.6  # walls at x = +WALL and z = -WALL; the object stands at the origin
CAMERA_DISTANCE, CAMERA_HEIGHT, FIELD_OF_VIEW = 3.0, 1.4, 50.0
LOOK_AT = (0.0, 0.3, 0.0)
CORNER_AZIMUTH = -45.0  # at orientation 0 the camera looks straight into the corner
LIGHT = np.array([-0.45, 1.0, 0.7])
AMBIENT = 0.4
OBJECT_HALF_SIZE = 0.4  # at scale 1
FLOOR, WALLS, OBJECT = 0, 1, 2


def _object_hit(shape: int, size: float, origin, direction):
    if shape == 0:
        box = raycast.box_planes([-size, 0, -size], [size, 2 * size, size])
        return raycast.hit_convex(origin, direction, *box)
    if shape == 1:
        return raycast.hit_cylinder(origin, direction, size, 0.0, 2 * size)
    if shape == 2:
        return raycast.hit_sphere(origin, direction, [0.0, size, 0.0], size)
    return raycast.hit_capsule(origin, direction, 0.72 * size, 0.0, 2.6 * size)


@functools.cache
def region_weights(scale: float, shape: int, orientation: float) -> np.ndarray:
    """(64*64, 3) float32: per pixel, shaded coverage of the floor, wall and object regions."""
    azimuth = np.radians(CORNER_AZIMUTH + orientation)
    eye = np.array([CAMERA_DISTANCE * np.sin(azimuth), CAMERA_HEIGHT, CAMERA_DISTANCE * np.cos(azimuth)])
    origin, direction = raycast.perspective_rays(eye, LOOK_AT, FIELD_OF_VIEW, SIZE, SUPERSAMPLE)
    size = OBJECT_HALF_SIZE * scale
    hits = [
        raycast.hit_plane(origin, direction, [0, 1, 0], 0.0),
        raycast.hit_plane(origin, direction, [-1, 0, 0], -WALL),
        raycast.hit_plane(origin, direction, [0, 0, 1], -WALL),
        _object_hit(shape, size, origin, direction),
    ]
    ts = np.stack([t for t, _ in hits])
    nearest = ts.argmin(axis=0)
    t = ts.min(axis=0)
    normal = np.stack([np.broadcast_to(n, direction.shape) for _, n in hits])[nearest, np.arange(len(t))]
    shade = raycast.lambert(normal, LIGHT, AMBIENT)
    # Shadows of the object on the room: a ray from the surface towards the light hits the object.
    point = origin + t[:, None] * direction
    room = nearest < 3
    light = np.broadcast_to(LIGHT / np.linalg.norm(LIGHT), (int(room.sum()), 3))
    shadowed = np.isfinite(_object_hit(shape, size, point[room] + 1e-6 * light, light)[0])
    shade[np.flatnonzero(room)[shadowed]] = AMBIENT
    region = np.array([FLOOR, WALLS, WALLS, OBJECT])[nearest]
    weights = np.zeros((len(t), 3))
    weights[np.arange(len(t)), region] = shade
    weights = weights.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return weights.reshape(SIZE * SIZE, 3).astype(np.float32)


def render_shapes3d(grid: Grid, classes: np.ndarray) -> np.ndarray:
    values = grid.values(classes)
    shape_class = grid.full_classes(classes)[:, 4]
    keys = np.stack([values[:, 3], shape_class, values[:, 5]], axis=1)
    unique_keys, inverse = np.unique(keys, axis=0, return_inverse=True)
    weights = np.stack([region_weights(float(s), int(k), float(o)) for s, k, o in unique_keys])
    # (n, floor/wall/object, RGB)
    colours = raycast.hsv_to_rgb(values[:, :3], SATURATION, VALUE).astype(np.float32) * 255
    images = np.matmul(weights[inverse.ravel()], colours)
    images += 0.5  # round; shaded coverage never exceeds 1, so images stay within 255.5
    return images.astype(np.uint8).reshape(len(classes), SIZE, SIZE, 3)
