"""From a clip record to everything the Blender scene keys: poses, root, camera (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BadData
from .actions import ACTIONS, evaluate
from .bodies import SkinnedBody, pose_body
from .body import INDEX, Skeleton, build_skeleton, rest_rotations
from .camera import CameraPath, frame_clip
from .mocap import retarget, sample_positions
from .motion import Posed, pose_bone_keys, pose_clip, posed_vertices


@dataclass
class Animation:
    skeleton: Skeleton
    posed: Posed
    quats: np.ndarray     # (N, B, 4) pose-bone rotations
    root_loc: np.ndarray  # (N, 3) pelvis pose-bone location
    camera: CameraPath
    motion_used: dict     # what a capture actually gave (frames, speed), for the manifest
    skinned: Skinned | None = None


@dataclass
class Skinned:
    rest: SkinnedBody
    frames: np.ndarray    # (N, V, 3) its vertices following the motion


def animate(record: dict, body: SkinnedBody | None = None) -> Animation:
    """Poses, root and camera for a clip; with ``body``, that skinned body follows the motion and
    the camera frames it instead of the mannequin."""
    n, fps = record["frames"], record["fps"]
    skel = build_skeleton(record["body"])
    motion, act = record.get("motion", {"source": "procedural"}), record["action"]
    used = {}
    if motion["source"] == "bvh":
        keys, used = sample_positions(motion["file"], motion["frames"], n, fps, motion["start"], act["speed"],
                                      act["mirror"], motion["bone_map"])
        posed = retarget(skel, keys, motion["file"])
    else:
        action = ACTIONS[record["class"]]
        posed = pose_clip(skel, evaluate(action, np.arange(n) / fps, act), n, action.ground)
    quats, root_loc = pose_bone_keys(posed, rest_rotations(skel))
    verts = posed_vertices(skel, posed)
    if not np.isfinite(verts).all():  # caught here, before Blender renders black frames from it
        raise BadData(f"{motion.get('file', record['clip'])}: the motion gives non-finite body positions")
    skinned = None
    if body is not None:
        skinned = Skinned(body, pose_body(body, skel, posed, verts[:, :, 2].min(axis=1)))
        verts = skinned.frames[:, ::5]  # framing needs the silhouette, not every vertex
    cam = frame_clip(verts, posed.heads[:, INDEX["pelvis"], :2], record["camera"], tuple(record["size"]))
    return Animation(skel, posed, quats, root_loc, cam, used, skinned)
