"""Camera paths that keep the whole body in frame, computed from the posed vertices (numpy only).

Azimuth 0 looks at the body's front (the body faces -Y). The distance is solved so that every
vertex of every frame falls inside ``fill`` of the half-frame, after the optional slow pan
(azimuth drift) and zoom (focal length drift) are applied. ``follow`` tracks the root in the
ground plane (a panning cameraman); it is forced on when the root travels more than
``FOLLOW_TRAVEL`` metres, so that a runner is never a speck crossing a wide static shot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .motion import continuous, matrix_to_quaternion
from .record import Camera

SENSOR_WIDTH = 36.0  # mm, Blender's default, fitted horizontally
FOLLOW_TRAVEL = 1.0  # metres


@dataclass
class CameraPath:
    """The camera of every frame of a clip, as Blender keys it."""

    position: np.ndarray    # (N, 3)
    quaternion: np.ndarray  # (N, 4) w, x, y, z
    lens: np.ndarray        # (N,) mm
    distance: float
    follows: bool           # whether the camera tracked the root


def _basis(azimuth: np.ndarray, elevation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a, e = np.radians(azimuth), np.radians(elevation)
    back = np.stack([np.sin(a) * np.cos(e), -np.cos(a) * np.cos(e), np.full_like(a, np.sin(e))], axis=1)
    right = np.stack([np.cos(a), np.sin(a), np.zeros_like(a)], axis=1)
    up = np.cross(back, right)
    return back, right, up, -back


def frame_clip(verts: np.ndarray, root_xy: np.ndarray, cam: Camera, size: tuple[int, int]) -> CameraPath:
    """Camera per frame for posed ``verts`` (N, V, 3), the root's ground track ``root_xy`` (N, 2),
    the sampled shot ``cam`` and the frame ``size`` (width, height): every vertex of every frame
    falls within ``cam.fill`` of the half-frame."""
    n = len(verts)
    w, h = size
    s = np.linspace(0.0, 1.0, n)
    azimuth = cam.azimuth + cam.pan * s
    lens = cam.lens * cam.zoom ** s
    lo, hi = verts.min(axis=(0, 1)), verts.max(axis=(0, 1))
    target = np.broadcast_to((lo + hi) / 2.0, (n, 3)).copy()
    travel = float(np.linalg.norm(root_xy.max(axis=0) - root_xy.min(axis=0)))
    follows = bool(cam.follow or travel > FOLLOW_TRAVEL)
    if follows:
        k = max(1, n // 8)  # a cameraman smooths the subject's sway out
        kernel = np.ones(k) / k
        for i in range(2):
            padded = np.pad(root_xy[:, i], (k // 2, k - 1 - k // 2), mode="edge")
            target[:, i] = np.convolve(padded, kernel, mode="valid") + (lo[i] + hi[i]) / 2 - root_xy[:, i].mean()
    back, right, up, fwd = _basis(azimuth, cam.elevation)
    half_w = lens / SENSOR_WIDTH * 2.0        # projection scale to the half-width
    distance = np.linalg.norm(hi - lo) / 2.0 / np.tan(np.arctan(SENSOR_WIDTH * h / w / 2.0 / lens.min())) + 0.5
    for _ in range(6):  # ndc ~ 1/distance: a few fixed-point steps converge
        pos = target + distance * back
        rel = verts - pos[:, None, :]
        depth = np.einsum("nvi,ni->nv", rel, fwd)
        x = np.einsum("nvi,ni->nv", rel, right) / depth * half_w[:, None]
        y = np.einsum("nvi,ni->nv", rel, up) / depth * half_w[:, None] * w / h
        extent = max(np.abs(x).max(), np.abs(y).max())
        distance *= extent / cam.fill
    pos = target + distance * back
    rot = np.stack([right, up, back], axis=2)  # camera looks down its -Z with +Y up
    return CameraPath(pos, continuous(matrix_to_quaternion(rot)), lens, float(distance), follows)
