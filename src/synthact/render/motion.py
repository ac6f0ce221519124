"""From an action's semantic channels to joint rotations, forward kinematics and ground contact.

Actions speak anatomy (``sh_flex.l``: lift the left arm forwards, degrees); this module turns that
into local rotations in the character frame (+X left, +Y back, +Z up), poses the skeleton, and
lifts the body so that its lowest point touches the floor. numpy only: the camera framing and the
tests use the same poses the renderer keys.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mannequin import INDEX, NAMES, PARENT, Skeleton, part_mesh

SIDES = ("l", "r")
ROOT_CHANNELS = ("root_x", "root_y", "lift", "yaw", "pitch", "roll")
# channels whose sign flips under a left/right mirror (reflection x -> -x)
MIRROR_NEGATE = ("spine_side", "spine_twist", "neck_side", "neck_twist", "root_x", "yaw", "roll")


def rot(axis: int, deg: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations about a character axis (0=X, 1=Y, 2=Z) by ``deg`` degrees."""
    a = np.radians(np.asarray(deg, float))
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def mirror(channels: dict) -> dict:
    """Swap left and right and reflect lateral motion: a left-handed wave becomes right-handed."""
    out = {}
    for name, v in channels.items():
        base, _, side = name.partition(".")
        if side in SIDES:
            out[f"{base}.{'r' if side == 'l' else 'l'}"] = v
        else:
            out[name] = -v if name in MIRROR_NEGATE else v
    return out


def local_rotations(ch: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, B, 3, 3) local joint rotations and (N, 3) root offset from semantic channels."""
    get = lambda k: np.broadcast_to(np.asarray(ch.get(k, 0.0), float), (n,))  # noqa: E731
    L = np.broadcast_to(np.eye(3), (n, len(NAMES), 3, 3)).copy()
    L[:, INDEX["pelvis"]] = rot(2, get("yaw")) @ rot(0, get("pitch")) @ rot(1, get("roll"))
    for bone, share, pre in (("spine", 0.45, "spine"), ("chest", 0.55, "spine"),
                             ("neck", 0.5, "neck"), ("head", 0.5, "neck")):
        L[:, INDEX[bone]] = (rot(2, share * get(f"{pre}_twist")) @ rot(1, share * get(f"{pre}_side"))
                             @ rot(0, share * get(f"{pre}_flex")))
    for s, sign in (("l", 1.0), ("r", -1.0)):
        # abduction moves the limb outwards: about -Y for the left side, +Y for the right
        L[:, INDEX[f"upper_arm.{s}"]] = (rot(1, -sign * get(f"sh_abd.{s}")) @ rot(0, -get(f"sh_flex.{s}"))
                                         @ rot(2, sign * get(f"sh_twist.{s}")))
        L[:, INDEX[f"forearm.{s}"]] = rot(0, -get(f"elbow.{s}"))
        L[:, INDEX[f"hand.{s}"]] = rot(0, -get(f"wrist.{s}"))
        L[:, INDEX[f"thigh.{s}"]] = (rot(1, -sign * get(f"hip_abd.{s}")) @ rot(0, -get(f"hip_flex.{s}"))
                                     @ rot(2, sign * get(f"hip_twist.{s}")))
        L[:, INDEX[f"shin.{s}"]] = rot(0, get(f"knee.{s}"))
        L[:, INDEX[f"foot.{s}"]] = rot(0, -get(f"ankle.{s}"))
    offset = np.stack([get("root_x"), get("root_y"), np.zeros(n)], axis=1)
    return L, offset


@dataclass
class Posed:
    """A skeleton posed over N frames: local and world rotations, joint positions, root travel."""

    local: np.ndarray    # (N, B, 3, 3) local rotations (character frame)
    world: np.ndarray    # (N, B, 3, 3) world rotations
    heads: np.ndarray    # (N, B, 3) world joint positions
    offset: np.ndarray   # (N, 3) root translation from its rest position


def forward_kinematics(skel: Skeleton, L: np.ndarray, offset: np.ndarray) -> Posed:
    """World rotations and joint positions from (N, B, 3, 3) local rotations and root offsets."""
    n, nb = L.shape[:2]
    G = np.empty_like(L)
    P = np.empty((n, nb, 3))
    for b in range(nb):
        p = PARENT[b]
        if p < 0:
            G[:, b] = L[:, b]
            P[:, b] = skel.heads[b] + offset
        else:
            G[:, b] = G[:, p] @ L[:, b]
            P[:, b] = P[:, p] + G[:, p] @ (skel.heads[b] - skel.heads[p])
    return Posed(L, G, P, offset)


def posed_vertices(skel: Skeleton, posed: Posed, meshes: list | None = None) -> np.ndarray:
    """(N, V, 3) every body-part vertex in every frame: exact floor contact and camera framing."""
    meshes = meshes or [part_mesh(skel, b, rings=6, segs=8) for b in range(len(NAMES))]
    out = []
    for b, (v, _) in enumerate(meshes):
        rel = v - skel.heads[b]
        out.append(np.einsum("nij,vj->nvi", posed.world[:, b], rel) + posed.heads[:, b, None, :])
    return np.concatenate(out, axis=1)


def pose_clip(skel: Skeleton, ch: dict, n: int, ground: str = "contact") -> Posed:
    """Pose all frames; with ``contact`` the lowest vertex rests on z=0 plus the ``lift`` channel."""
    L, offset = local_rotations(ch, n)
    posed = forward_kinematics(skel, L, offset)
    lift = np.broadcast_to(np.asarray(ch.get("lift", 0.0), float), (n,))
    if ground == "contact":
        dz = lift - posed_vertices(skel, posed)[:, :, 2].min(axis=1)
    else:  # hanging (pull-ups): the action places the body itself
        dz = lift
    posed.offset = offset + np.stack([np.zeros(n), np.zeros(n), dz], axis=1)
    posed.heads = posed.heads + posed.offset[:, None, :] - offset[:, None, :]
    return posed


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0."""
    m = np.asarray(m, float)
    t = np.trace(m, axis1=-2, axis2=-1)
    q = np.empty(m.shape[:-2] + (4,))
    q[..., 0] = np.sqrt(np.maximum(0.0, 1.0 + t)) / 2.0
    q[..., 1] = np.sqrt(np.maximum(0.0, 1.0 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2])) / 2.0
    q[..., 2] = np.sqrt(np.maximum(0.0, 1.0 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2])) / 2.0
    q[..., 3] = np.sqrt(np.maximum(0.0, 1.0 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2])) / 2.0
    q[..., 1] = np.copysign(q[..., 1], m[..., 2, 1] - m[..., 1, 2])
    q[..., 2] = np.copysign(q[..., 2], m[..., 0, 2] - m[..., 2, 0])
    q[..., 3] = np.copysign(q[..., 3], m[..., 1, 0] - m[..., 0, 1])
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def continuous(q: np.ndarray) -> np.ndarray:
    """Flip quaternion signs along axis 0 so that consecutive keys interpolate the short way."""
    q = q.copy()
    for i in range(1, len(q)):
        flip = np.sum(q[i] * q[i - 1], axis=-1) < 0
        q[i][flip] *= -1
    return q


def pose_bone_keys(posed: Posed, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose-bone quaternions (N, B, 4) and root location (N, 3) in Blender's bone-local space.

    Blender poses a bone as parent_pose @ parent_rest^-1 @ rest @ basis; with world rotation
    G = G_parent @ L this gives basis = rest^T @ L @ rest, and the root's location is its offset
    expressed in its rest frame.
    """
    basis = np.einsum("bji,nbjk,bkl->nbil", rest, posed.local, rest)
    quats = continuous(matrix_to_quaternion(basis))
    loc = np.einsum("ji,nj->ni", rest[INDEX["pelvis"]], posed.offset)
    return quats, loc
