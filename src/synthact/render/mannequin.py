"""The procedural mannequin: skeleton, proportions and body-part geometry, in numpy only.

Character frame (also Blender's armature space): +X is the body's left, +Y its back, +Z up; the
body faces -Y (towards Blender's front view). Proportions follow Drillis & Contini's segment
lengths as fractions of height H; every clip samples its own within human ranges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# name, parent, width axis, depth axis (character frame) of the part drawn on that bone
BONES: list[tuple[str, str | None]] = [
    ("pelvis", None), ("spine", "pelvis"), ("chest", "spine"), ("neck", "chest"), ("head", "neck"),
    ("upper_arm.l", "chest"), ("forearm.l", "upper_arm.l"), ("hand.l", "forearm.l"),
    ("upper_arm.r", "chest"), ("forearm.r", "upper_arm.r"), ("hand.r", "forearm.r"),
    ("thigh.l", "pelvis"), ("shin.l", "thigh.l"), ("foot.l", "shin.l"),
    ("thigh.r", "pelvis"), ("shin.r", "thigh.r"), ("foot.r", "shin.r"),
]
NAMES = [b for b, _ in BONES]
INDEX = {b: i for i, b in enumerate(NAMES)}
PARENT = [INDEX[p] if p else -1 for _, p in BONES]

PROPORTION_RANGES = {
    "height": (1.50, 1.95),   # metres
    "leg": (0.93, 1.07),      # leg length factor
    "arm": (0.93, 1.07),
    "torso": (0.94, 1.06),
    "girth": (0.80, 1.35),    # limb and trunk thickness
    "shoulders": (0.90, 1.12),
    "hips": (0.90, 1.15),
    "head": (0.93, 1.07),
}


def sample_proportions(rng: np.random.Generator) -> dict:
    """The mannequin's per-clip proportions (height, limb and girth factors) drawn from their ranges."""
    return {k: round(float(rng.uniform(lo, hi)), 4) for k, (lo, hi) in PROPORTION_RANGES.items()}


@dataclass(frozen=True)
class Skeleton:
    """The mannequin's bones at rest: head and tail of each, in the character frame."""

    heads: np.ndarray   # (B, 3) rest head of each bone
    tails: np.ndarray   # (B, 3) rest tail
    parts: list         # per bone: (start, end, r0_w, r0_d, r1_w, r1_d, width_axis, depth_axis)


def build_skeleton(p: dict) -> Skeleton:
    """Rest pose (arms hanging, feet forward) for proportions ``p``."""
    H = p["height"]
    leg, arm, torso, g = p["leg"], p["arm"], p["torso"], p["girth"]
    hip_z = (0.039 + 0.491 * leg) * H
    knee_z = (0.039 + 0.246 * leg) * H
    ankle_z = 0.039 * H
    pelvis_top = hip_z + 0.07 * H * torso
    spine_top = pelvis_top + 0.11 * H * torso
    chest_top = spine_top + 0.115 * H * torso
    neck_top = chest_top + 0.045 * H
    head_top = neck_top + 0.13 * H * p["head"]
    sh_x = 0.105 * H * p["shoulders"]
    sh_z = chest_top - 0.02 * H
    hip_x = 0.055 * H * p["hips"]
    ua, fa, hd = 0.186 * H * arm, 0.146 * H * arm, 0.095 * H * arm
    foot = 0.13 * H

    heads, tails = {}, {}

    def seg(name, head, tail):
        heads[name], tails[name] = np.array(head, float), np.array(tail, float)

    seg("pelvis", (0, 0, hip_z), (0, 0, pelvis_top))
    seg("spine", (0, 0, pelvis_top), (0, 0, spine_top))
    seg("chest", (0, 0, spine_top), (0, 0, chest_top))
    seg("neck", (0, 0, chest_top), (0, 0, neck_top))
    seg("head", (0, 0, neck_top), (0, 0, head_top))
    for s, x in (("l", 1.0), ("r", -1.0)):
        seg(f"upper_arm.{s}", (x * sh_x, 0, sh_z), (x * sh_x, 0, sh_z - ua))
        seg(f"forearm.{s}", (x * sh_x, 0, sh_z - ua), (x * sh_x, 0, sh_z - ua - fa))
        seg(f"hand.{s}", (x * sh_x, 0, sh_z - ua - fa), (x * sh_x, 0, sh_z - ua - fa - hd))
        seg(f"thigh.{s}", (x * hip_x, 0, hip_z), (x * hip_x, 0, knee_z))
        seg(f"shin.{s}", (x * hip_x, 0, knee_z), (x * hip_x, 0, ankle_z))
        # the foot bone runs from the ankle to the toes, forward and down to the sole
        seg(f"foot.{s}", (x * hip_x, 0, ankle_z), (x * hip_x, -foot * 0.75, ankle_z * 0.35))

    X, Y, Z = np.eye(3)
    r = lambda f: f * H * g  # noqa: E731  thickness scales with girth
    # (overlap before head, overlap after tail, r0 width, r0 depth, r1 width, r1 depth, width axis, depth axis)
    parts = {
        "pelvis": (0.35, 0.25, r(0.085), r(0.060), r(0.080), r(0.055), X, Y),
        "spine": (0.10, 0.10, r(0.075), r(0.055), r(0.085), r(0.060), X, Y),
        "chest": (0.10, 0.05, r(0.095), r(0.065), r(0.100), r(0.060), X, Y),
        "neck": (0.20, 0.20, r(0.026), r(0.028), r(0.024), r(0.026), X, Y),
        "head": (0.00, 0.00, 0.052 * H, 0.058 * H, 0.050 * H, 0.055 * H, X, Y),
        "upper_arm": (0.15, 0.10, r(0.030), r(0.030), r(0.024), r(0.024), X, Y),
        "forearm": (0.08, 0.05, r(0.023), r(0.023), r(0.017), r(0.015), X, Y),
        "hand": (0.05, 0.00, r(0.019), 0.009 * H, r(0.015), 0.007 * H, Y, X),
        "thigh": (0.10, 0.08, r(0.048), r(0.050), r(0.034), r(0.034), X, Y),
        "shin": (0.06, 0.05, r(0.034), r(0.036), r(0.024), r(0.024), X, Y),
        "foot": (0.30, 0.05, r(0.026), 0.022 * H, r(0.022), 0.012 * H, X, Z),
    }
    return Skeleton(
        heads=np.stack([heads[n] for n in NAMES]),
        tails=np.stack([tails[n] for n in NAMES]),
        parts=[parts[n.split(".")[0]] for n in NAMES],
    )


def part_mesh(skel: Skeleton, b: int, rings: int = 10, segs: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Closed rounded tapered tube around bone ``b``: (V, 3) rest vertices, (F, 4) quads."""
    pre, post, r0w, r0d, r1w, r1d, uw, ud = skel.parts[b]
    head, tail = skel.heads[b], skel.tails[b]
    axis = tail - head
    length = np.linalg.norm(axis)
    d = axis / length
    # width and depth axes made orthogonal to the bone so the cross-section is not sheared
    uw = uw - d * (uw @ d)
    uw /= np.linalg.norm(uw)
    ud = np.cross(d, uw)
    s = np.linspace(0.0, 1.0, rings + 2)            # along the part, poles at both ends
    along = -pre + s * (1.0 + pre + post)           # in bone lengths
    taper = np.clip(along, 0.0, 1.0)
    rw = r0w + (r1w - r0w) * taper
    rd = r0d + (r1d - r0d) * taper
    profile = (1.0 - np.abs(2.0 * s - 1.0) ** 3.0) ** (1.0 / 3.0)  # flat sides, round ends
    th = np.linspace(0.0, 2.0 * np.pi, segs, endpoint=False)
    centre = head + np.outer(along * length, d)                              # (R, 3)
    ring = (np.cos(th)[None, :, None] * (rw * profile)[:, None, None] * uw
            + np.sin(th)[None, :, None] * (rd * profile)[:, None, None] * ud)  # (R, S, 3)
    verts = (centre[:, None, :] + ring).reshape(-1, 3)
    quads = []
    n = len(s)
    for i in range(n - 1):
        for j in range(segs):
            a, b2 = i * segs + j, i * segs + (j + 1) % segs
            quads.append((a, b2, b2 + segs, a + segs))
    faces = np.array(quads, dtype=np.int32)
    # wind the quads so that normals point outwards (smooth studio shading depends on it)
    f = faces[segs * (n // 2)]
    normal = np.cross(verts[f[1]] - verts[f[0]], verts[f[3]] - verts[f[0]])
    if normal @ (verts[f[0]] - centre[n // 2]) < 0:
        faces = faces[:, ::-1].copy()
    return verts, faces


def rest_rotations(skel: Skeleton) -> np.ndarray:
    """(B, 3, 3) rest frame of each bone, columns = its X, Y, Z axes in the character frame.

    Y runs along the bone and X is as close to the character's +X as the bone allows. The Blender
    scene sets each bone's roll to this same frame (and checks it), so rotations computed here
    convert exactly into pose-bone space.
    """
    rots = []
    for head, tail in zip(skel.heads, skel.tails, strict=True):
        y = (tail - head) / np.linalg.norm(tail - head)
        x = np.array([1.0, 0.0, 0.0]) - y * y[0]
        x /= np.linalg.norm(x)
        z = np.cross(x, y)
        rots.append(np.stack([x, y, z], axis=1))
    return np.array(rots)
