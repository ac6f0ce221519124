"""A cleaned pose segment written as a BVH capture on one fixed humanoid skeleton (numpy only).

The skeleton has the five limb ends the structural mapper (:mod:`synthact.render.keypoints`) looks
for, each an End Site: legs and arms branch in mirror pairs from the hips and the neck, the head
from the neck too, the spine runs hips - spine - chest - neck. Two zero-length joints (LowerBack
on the hips, Neck1 on the neck) carry the spine's and the head's own direction, so that every
bone points exactly along its tracked segment. Bone lengths are each bone's median over the
segment; the hips and the neck take the full orientation of their hip or shoulder line and the
spine, every other joint the smallest turn from its parent onto its bone. Y up, the rest pose
facing +Z with the arms out to the sides; centimetres.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..render.bvh import euler, write_bvh
from ..render.vectors import align, unit

# (joint, its parent, the key point it sits at), parents first
JOINTS: list[tuple[str, str | None, str]] = [("Hips", None, "hips")]
for _s, _side in (("l", "Left"), ("r", "Right")):
    JOINTS += [(f"{_side}UpLeg", "Hips", f"hip.{_s}"), (f"{_side}Leg", f"{_side}UpLeg", f"knee.{_s}"),
               (f"{_side}Foot", f"{_side}Leg", f"ankle.{_s}"), (f"{_side}Foot_end", f"{_side}Foot", f"toe.{_s}")]
JOINTS += [("LowerBack", "Hips", "hips"), ("Spine", "LowerBack", "spine_low"), ("Chest", "Spine", "spine_mid"),
           ("Neck", "Chest", "neck")]
for _s, _side in (("l", "Left"), ("r", "Right")):
    JOINTS += [(f"{_side}Arm", "Neck", f"shoulder.{_s}"), (f"{_side}ForeArm", f"{_side}Arm", f"elbow.{_s}"),
               (f"{_side}Hand", f"{_side}ForeArm", f"wrist.{_s}"),
               (f"{_side}Hand_end", f"{_side}Hand", f"hand_tip.{_s}")]
JOINTS += [("Neck1", "Neck", "neck"), ("Head", "Neck1", "head"), ("Head_end", "Head", "head_top")]
NAMES = [j[0] for j in JOINTS]
PARENTS = [NAMES.index(p) if p else -1 for _, p, _ in JOINTS]
KEY = {n: k for n, _, k in JOINTS}
ENDS = [n.endswith("_end") for n in NAMES]
UP, DOWN, LEFT, RIGHT = np.eye(3)[1], -np.eye(3)[1], np.eye(3)[0], -np.eye(3)[0]
TOE = unit(np.array([0.0, -0.5, 1.0]))   # toes forward and a little down
# rest direction of each joint's offset from its parent
REST = {"LowerBack": UP, "Neck1": UP, "Spine": UP, "Chest": UP, "Neck": UP, "Head": UP, "Head_end": UP}
for _side, _x in (("Left", LEFT), ("Right", RIGHT)):
    REST.update({f"{_side}UpLeg": _x, f"{_side}Leg": DOWN, f"{_side}Foot": DOWN, f"{_side}Foot_end": TOE,
                 f"{_side}Arm": _x, f"{_side}ForeArm": _x, f"{_side}Hand": _x, f"{_side}Hand_end": _x})
# a joint whose orientation is its pair of mirror children's line (x) and the spine (y)
PAIRS = {"Hips": ("hip.l", "hip.r", "hips", "spine_low"), "Neck": ("shoulder.l", "shoulder.r", "spine_mid", "neck")}
CHANNELS_ROOT = ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
CHANNELS = ["Zrotation", "Xrotation", "Yrotation"]
CM = 100.0


def _basis(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations whose columns are unit(x), y made normal to it, and their cross product."""
    xs = unit(x)
    ys = unit(y - xs * np.sum(y * xs, axis=-1, keepdims=True))
    return np.stack([xs, ys, np.cross(xs, ys)], axis=-1)


def bone_lengths(points: dict[str, np.ndarray]) -> dict[str, float]:
    """Each joint's offset length from its parent: the median over the frames (zero-length joints 0)."""
    out = {}
    for n, p, k in JOINTS:
        if p is None or k == KEY[p]:
            out[n] = 0.0
        else:
            out[n] = float(np.median(np.linalg.norm(points[k] - points[KEY[p]], axis=-1)))
    return out


def capture_motion(points: dict[str, np.ndarray], travel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest offsets (J, 3) in centimetres and motion rows (N, C) that pose the skeleton along
    ``points`` (key point -> (N, 3) metres, Y up, hip-centred), the root moved by ``travel``."""
    lengths = bone_lengths(points)
    offsets = np.array([REST.get(n, np.zeros(3)) * lengths[n] * CM for n in NAMES])
    G: dict[str, np.ndarray] = {}
    child: dict[str, str] = {}   # the one child whose bone a joint turns onto
    for c, p, _ in JOINTS:
        if p is not None and p not in PAIRS:
            child.setdefault(p, c)
    for name, parent, key in JOINTS:
        if ENDS[NAMES.index(name)]:
            continue
        if name in PAIRS:
            a, b, lo, hi = PAIRS[name]
            G[name] = _basis(points[a] - points[b], points[hi] - points[lo])
            continue
        assert parent is not None   # the root (Hips) is a pair's
        c = child[name]
        current = np.einsum("nij,j->ni", G[parent], REST[c])
        G[name] = align(current, unit(points[KEY[c]] - points[key])) @ G[parent]
    rows = []
    height = lengths["LeftLeg"] + lengths["LeftFoot"]
    rows.append((travel + points["hips"] + np.array([0.0, height, 0.0])) * CM)
    for name, parent, _ in JOINTS:
        if ENDS[NAMES.index(name)]:
            continue
        local = G[name] if parent is None else np.swapaxes(G[parent], -1, -2) @ G[name]
        rows.append(euler(local, "ZXY"))
    return offsets, np.concatenate(rows, axis=1)


def write_capture(path: Path, points: dict[str, np.ndarray], travel: np.ndarray, fps: float) -> None:
    """The BVH file of one segment (see the module doc)."""
    offsets, motion = capture_motion(points, travel)
    channels = [[] if e else (CHANNELS_ROOT if p < 0 else CHANNELS) for p, e in zip(PARENTS, ENDS, strict=True)]
    write_bvh(Path(path), NAMES, PARENTS, offsets, channels, motion, 1.0 / fps, ENDS)
