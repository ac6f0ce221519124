"""Direction and rotation helpers shared by retargeting, structure analysis and skinned bodies."""
from __future__ import annotations

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 along its last axis (a zero vector stays zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def frame(up: np.ndarray, left: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations whose columns are left, back, up (our X, Y, Z) in the world."""
    z = unit(up)
    x = unit(left - z * np.sum(left * z, axis=-1, keepdims=True))
    return np.stack([x, np.cross(z, x), z], axis=-1)


def align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 3, 3) smallest rotations turning unit vectors a onto unit vectors b."""
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    f = (1.0 / np.maximum(1.0 + c, 1e-9))[..., None, None]
    R = np.eye(3) + K + K @ K * f
    opposite = c < -0.999999  # a half turn about any axis normal to a
    if opposite.any():
        axis = unit(np.cross(a[opposite], np.where(np.abs(a[opposite, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])))
        R[opposite] = 2.0 * axis[:, :, None] * axis[:, None, :] - np.eye(3)
    return R
