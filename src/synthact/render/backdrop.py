"""Backgrounds that let camera motion show without adding texture or a scene (numpy only).

On black, a moving camera leaves no flow outside the body, whereas real camera motion fills the
frame. ``render-clips --background points`` scatters a sparse field of faint, small points on a
far shell and the floor around the body; ``grid`` lays faint lines on the floor. Both are one mesh
of flat grey geometry with no texture, so the premise (no appearance to learn from) holds while a
pan, a shake or a follow shot moves them across the frame. ``black`` (the default) is today's.
The geometry is drawn from the clip's record (:class:`record.Background`), so a clip renders the
same from its manifest line.
"""
from __future__ import annotations

import numpy as np

from .record import Background

KINDS = ("black", "points", "grid")
# an octahedron: a point that looks the same from every side
_OCTA = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
_OCTA_FACES = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])


def sample_background(kind: str, rng: np.random.Generator) -> Background | None:
    """The background of one clip: None for black; else its drawn parameters."""
    u = lambda lo, hi: round(float(rng.uniform(lo, hi)), 4)  # noqa: E731
    if kind == "black":
        return None
    if kind == "points":
        return Background(kind="points", count=int(rng.integers(800, 2000)), grey=u(0.15, 0.35),
                          size=u(0.006, 0.012), spacing=0.0, angle=0.0, seed=int(rng.integers(2**31)))
    if kind == "grid":
        return Background(kind="grid", count=0, grey=u(0.05, 0.12), size=u(0.01, 0.03), spacing=u(0.8, 2.0),
                          angle=u(0.0, 90.0), seed=0)
    raise ValueError(f"unknown background {kind!r}")


def background_mesh(bg: Background, centre: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3), triangles (F, 3)) of ``bg`` around ``centre`` (the body's ground position),
    the floor at height ``floor``."""
    if bg.kind == "points":
        return _points(bg, centre, floor)
    return _grid(bg, centre, floor)


def _points(bg: Background, centre: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(bg.seed)
    n_far = bg.count * 2 // 3
    # far points on a shell 12-30 m away, above the floor; near ones scattered on the floor
    d = rng.normal(size=(n_far, 3))
    d[:, 2] = np.abs(d[:, 2]) * 0.6
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    far = np.array([centre[0], centre[1], floor]) + d * rng.uniform(12.0, 30.0, (n_far, 1))
    r, a = np.sqrt(rng.uniform(2.0**2, 15.0**2, bg.count - n_far)), rng.uniform(0, 2 * np.pi, bg.count - n_far)
    near = np.stack([centre[0] + r * np.cos(a), centre[1] + r * np.sin(a), np.full_like(r, floor)], axis=1)
    at = np.concatenate([far, near])
    # the same angular size wherever a point is: radius grows with its distance from the body
    radius = bg.size * np.linalg.norm(at - np.array([centre[0], centre[1], floor + 1.0]), axis=1)
    verts = (at[:, None, :] + radius[:, None, None] * _OCTA[None]).reshape(-1, 3)
    faces = (np.arange(len(at))[:, None, None] * len(_OCTA) + _OCTA_FACES[None]).reshape(-1, 3)
    return verts, faces


def _grid(bg: Background, centre: np.ndarray, floor: float, extent: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    ticks = np.arange(-extent, extent + 1e-9, bg.spacing)
    quads = []
    for along in (0, 1):   # lines along x, then along y, each a thin quad on the floor
        for t in ticks:
            a, b = np.array([-extent, t - bg.size]), np.array([extent, t + bg.size])
            corners = np.array([[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]]])
            quads.append(corners[:, ::-1] if along else corners)
    q = np.array(quads)                                   # (L, 4, 2)
    c, s = np.cos(np.radians(bg.angle)), np.sin(np.radians(bg.angle))
    xy = q @ np.array([[c, s], [-s, c]]) + centre[:2]
    verts = np.concatenate([xy, np.full(q.shape[:2] + (1,), floor - 0.002)], axis=2).reshape(-1, 3)
    base = np.arange(len(q))[:, None] * 4
    faces = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]])
    return verts, faces
