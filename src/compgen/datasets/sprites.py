"""2D sprite datasets drawn by vectorised rasterisation: dSprites, Circles and Simple."""

from __future__ import annotations

import numpy as np

from compgen.grid import CATEGORICAL, CIRCULAR, ORDINAL, Factor, Grid

SIZE = 64
# Pixel centres in [0, 64): one (64, 64) grid shared by every renderer.
_YS, _XS = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5

DSPRITES_GRID = Grid(
    (
        Factor("shape", (1.0, 2.0, 3.0), ("square", "ellipse", "heart"), kind=CATEGORICAL),
        Factor("scale", tuple(np.linspace(0.5, 1.0, 6).tolist()), kind=ORDINAL),
        # Radians, 0 and 2π both included (the same angle).
        Factor(
            "orientation", tuple(np.linspace(0.0, 2 * np.pi, 40).tolist()), kind=CIRCULAR, period=2 * np.pi
        ),
        Factor("posX", tuple(np.linspace(0.0, 1.0, 32).tolist()), kind=ORDINAL),
        Factor("posY", tuple(np.linspace(0.0, 1.0, 32).tolist()), kind=ORDINAL),
    ),
    (SIZE, SIZE, 1),
)
# Half-width of a scale-1 sprite. Positions step by whole pixels (31 steps from pixel 16 to 47), so
# every image is an exact shift of its (shape, scale, orientation) sprite drawn once; the 16-pixel
# margin keeps the largest sprite, turned 45° (14.2 pixels from its centre), inside the canvas.
DSPRITES_HALF = 10.0
DSPRITES_FIRST_PIXEL = 16
DSPRITES_POSITION_STEPS = 31
_SPRITE_CENTRE = SIZE // 2  # sprites are drawn once around this pixel, then shifted

POSITION_GRID = tuple(np.linspace(0.0, 1.0, 32).tolist())
CIRCLES_GRID = Grid(
    (Factor("x", POSITION_GRID, kind=ORDINAL), Factor("y", POSITION_GRID, kind=ORDINAL)), (SIZE, SIZE, 3)
)
SIMPLE_GRID = Grid(
    (
        Factor("x", POSITION_GRID, kind=ORDINAL),
        Factor("y", POSITION_GRID, kind=ORDINAL),
        Factor("shape", (0.0, 1.0, 2.0), ("circle", "square", "triangle"), kind=CATEGORICAL),
    ),
    (SIZE, SIZE, 3),
)
SPRITE_HALF = 6.0
SPRITE_MARGIN = SPRITE_HALF + 2.0
CIRCLE_COLOUR = np.array([255, 200, 40], dtype=np.float32)  # one fixed colour, as in the original
SIMPLE_COLOUR = np.array([230, 230, 230], dtype=np.float32)


def _to_pixels(pos: np.ndarray, margin: float) -> np.ndarray:
    """Map positions in [0, 1] to pixel coordinates inside the margin."""
    return margin + pos * (SIZE - 2 * margin)


def _local_coords(cx, cy, half, angle=None):
    """Pixel coordinates relative to each sprite centre, in sprite units: (n, 64, 64) each."""
    dx = (_XS[None] - cx[:, None, None]) / half[:, None, None]
    dy = (_YS[None] - cy[:, None, None]) / half[:, None, None]
    if angle is None:
        return dx, -dy
    c = np.cos(angle)[:, None, None].astype(np.float32)
    s = np.sin(angle)[:, None, None].astype(np.float32)
    # Rotate the sampling grid by -angle, i.e. the sprite by +angle (counter-clockwise on screen).
    u = c * dx - s * dy
    v = s * dx + c * dy
    return u, -v


def _square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= 1.0


def _ellipse(u, v):
    return u**2 + (v / 0.5) ** 2 <= 1.0


def _heart(u, v):
    # Classic implicit heart, shifted and scaled to fill about [-1, 1]^2.
    x, y = u * 1.15, v * 1.15 + 0.15
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def _circle(u, v):
    return u**2 + v**2 <= 1.0


def _triangle(u, v):
    # Upward equilateral-ish triangle inscribed in the unit square.
    return (v >= -0.85) & (v <= 0.95 - 1.8 * np.abs(u))


def _draw(masks_by_shape, shape_class, u, v):
    out = np.zeros(u.shape, dtype=bool)
    for k, mask_fn in enumerate(masks_by_shape):
        sel = shape_class == k
        if sel.any():
            out[sel] = mask_fn(u[sel], v[sel])
    return out


def _dsprite(shape_class: int, scale: float, angle: float) -> np.ndarray:
    """One binary sprite (64 x 64) centred on pixel (32, 32)."""
    centre = np.array([_SPRITE_CENTRE + 0.5], dtype=np.float32)
    half = np.array([DSPRITES_HALF * scale], dtype=np.float32)
    # A full turn is exactly no turn: pixel centres on the outline must not flip at 2π.
    angle = np.array([np.mod(angle, 2 * np.pi)], dtype=np.float32)
    u, v = _local_coords(centre, centre, half, angle)
    return (_square, _ellipse, _heart)[shape_class](u[0], v[0])


def render_dsprites(grid: Grid, classes: np.ndarray) -> np.ndarray:
    values = grid.values(classes)
    shape_class = grid.full_classes(classes)[:, 0]
    shift_x = np.rint(values[:, 3] * DSPRITES_POSITION_STEPS).astype(np.int64) + DSPRITES_FIRST_PIXEL
    shift_y = np.rint(values[:, 4] * DSPRITES_POSITION_STEPS).astype(np.int64) + DSPRITES_FIRST_PIXEL
    keys = np.stack([shape_class, classes[:, 1], classes[:, 2]], axis=1)
    unique_keys, inverse = np.unique(keys, axis=0, return_inverse=True)
    out = np.empty((len(classes), SIZE, SIZE, 1), dtype=np.uint8)
    padded = np.zeros((2 * SIZE, 2 * SIZE), dtype=np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (SIZE, SIZE))
    for k, key in enumerate(unique_keys):
        sel = np.flatnonzero(inverse.ravel() == k)
        sprite = _dsprite(int(key[0]), float(values[sel[0], 1]), float(values[sel[0], 2]))
        padded[SIZE // 2 : SIZE // 2 + SIZE, SIZE // 2 : SIZE // 2 + SIZE] = sprite * np.uint8(255)
        # Window (y0, x0) is padded[y0:y0+64, x0:x0+64]; the sprite centre (padded pixel 64) lands
        # on image pixel 64 - y0, so a centre on pixel c is the window at 64 - c.
        out[sel, :, :, 0] = windows[SIZE - shift_y[sel], SIZE - shift_x[sel]]
    return out


def _colour(mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return (mask[..., None] * colour).astype(np.uint8)


def render_circles(grid: Grid, classes: np.ndarray) -> np.ndarray:
    values = grid.values(classes).astype(np.float32)
    cx, cy = _to_pixels(values[:, 0], SPRITE_MARGIN), _to_pixels(values[:, 1], SPRITE_MARGIN)
    half = np.full(len(classes), SPRITE_HALF, dtype=np.float32)
    u, v = _local_coords(cx, cy, half)
    return _colour(_circle(u, v), CIRCLE_COLOUR)


def render_simple(grid: Grid, classes: np.ndarray) -> np.ndarray:
    values = grid.values(classes).astype(np.float32)
    shape_class = grid.full_classes(classes)[:, 2]
    cx, cy = _to_pixels(values[:, 0], SPRITE_MARGIN), _to_pixels(values[:, 1], SPRITE_MARGIN)
    half = np.full(len(classes), SPRITE_HALF, dtype=np.float32)
    u, v = _local_coords(cx, cy, half)
    return _colour(_draw((_circle, _square, _triangle), shape_class, u, v), SIMPLE_COLOUR)
