"""Camera paths that keep the whole body in frame, computed from the posed vertices (numpy only).

Azimuth 0 looks at the body's front (the body faces -Y). The distance is solved so that every
vertex of every frame falls inside ``fill`` of the half-frame, after the optional slow pan
(azimuth drift) and zoom (focal length drift) are applied. ``follow`` tracks the root in the
ground plane (a panning cameraman); it is forced on when the root travels more than
``FOLLOW_TRAVEL`` metres, so that a runner is never a speck crossing a wide static shot.

A profiled shot (``render-clips --profile``) may frame part of the body: only the vertices of that
part (by height within each frame's body) are fitted, so the rest leaves the frame as it does in
an upper-body or head-and-shoulders shot; and a hand-held camera adds its shake, drift and one
reframing turn on top of the fitted path.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .motion import continuous, matrix_to_quaternion
from .record import Camera

SENSOR_WIDTH = 36.0  # mm, Blender's default, fitted horizontally
FOLLOW_TRAVEL = 1.0  # metres
# the part of the body each framing fits, as (low, high) fractions of the body's height in a frame:
# upper is chest-up (the frame's bottom edge falls above the hips), head is head and shoulders
FRAMING_BAND = {"full": (0.0, 1.0), "upper": (0.6, 1.0), "head": (0.8, 1.0), "lower": (0.0, 0.55)}
HARMONICS = (1.0, 2.3, 5.1)    # the shake's frequencies, times its base; amplitudes 1, 1/2, 1/4


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


def framed(verts: np.ndarray, framing: str | None) -> np.ndarray:
    """(N, V) mask of the vertices a framing fits: those within its band of each frame's body height."""
    lo_f, hi_f = FRAMING_BAND[framing or "full"]
    if (lo_f, hi_f) == (0.0, 1.0):
        return np.ones(verts.shape[:2], bool)
    z = verts[..., 2]
    bottom, top = z.min(axis=1, keepdims=True), z.max(axis=1, keepdims=True)
    frac = (z - bottom) / np.maximum(top - bottom, 1e-6)
    return (frac >= lo_f) & (frac <= hi_f)


def handheld_angles(hand, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) in degrees per frame of a hand-held camera: shake plus one eased reframing turn."""
    t = np.arange(n) / fps
    weights = np.array([1.0, 0.5, 0.25])

    def axis(phases) -> np.ndarray:   # the three harmonics of one axis, times the shake, peak 1
        return hand.shake * sum(w * np.sin(2 * np.pi * (hand.frequency * k * t + p))
                                for w, k, p in zip(weights, HARMONICS, phases, strict=True)) / weights.sum()
    s = np.linspace(0.0, 1.0, n)
    ease = 0.5 + 0.5 * np.tanh((s - hand.reframe_at) / 0.06)   # a turn over about a tenth of the clip
    return axis(hand.phases[:3]) + hand.reframe * ease, axis(hand.phases[3:])


def _turn(rot: np.ndarray, yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Per-frame camera rotations turned about their own up (yaw) and right (pitch) axes."""
    a, b = np.radians(yaw), np.radians(pitch)
    ry = np.zeros((len(a), 3, 3))
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 1, 1], ry[:, 2, 0], ry[:, 2, 2] = np.cos(a), np.sin(a), 1, -np.sin(a), np.cos(a)
    rx = np.zeros((len(b), 3, 3))
    rx[:, 0, 0], rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = 1, np.cos(b), -np.sin(b), np.sin(b), np.cos(b)
    return rot @ ry @ rx


def frame_clip(verts: np.ndarray, root_xy: np.ndarray, cam: Camera, size: tuple[int, int],
               fps: float = 25.0) -> CameraPath:
    """Camera per frame for posed ``verts`` (N, V, 3), the root's ground track ``root_xy`` (N, 2),
    the sampled shot ``cam`` and the frame ``size`` (width, height): every vertex of the framed
    part (all of the body unless ``cam.framing`` says otherwise) of every frame falls within
    ``cam.fill`` of the half-frame, before a hand-held camera's motion."""
    n = len(verts)
    w, h = size
    s = np.linspace(0.0, 1.0, n)
    azimuth = cam.azimuth + cam.pan * s
    lens = cam.lens * cam.zoom ** s
    mask = framed(verts, cam.framing)
    part = verts[mask]
    lo, hi = part.min(axis=0), part.max(axis=0)
    target = np.broadcast_to((lo + hi) / 2.0, (n, 3)).copy()
    travel = float(np.linalg.norm(root_xy.max(axis=0) - root_xy.min(axis=0)))
    follows = bool(cam.follow or (travel > FOLLOW_TRAVEL and not cam.fixed))
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
        extent = max(np.abs(x[mask]).max(), np.abs(y[mask]).max())
        distance *= extent / cam.fill
    pos = target + distance * back
    rot = np.stack([right, up, back], axis=2)  # camera looks down its -Z with +Y up
    if cam.handheld is not None:
        hand = cam.handheld
        d = np.radians(hand.drift_angle)
        wander = hand.drift * (s - 0.5)[:, None] * (np.cos(d) * right + np.sin(d) * up)
        pos = pos + wander
        rot = _turn(rot, *handheld_angles(hand, n, fps))
    return CameraPath(pos, continuous(matrix_to_quaternion(rot)), lens, float(distance), follows)
