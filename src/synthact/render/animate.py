"""From a clip record to everything the Blender scene keys: poses, root, camera (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .actions import ACTIONS, evaluate
from .body import INDEX, Skeleton, build_skeleton, rest_rotations
from .camera import CameraPath, frame_clip
from .motion import Posed, pose_bone_keys, pose_clip, posed_vertices


@dataclass
class Animation:
    skeleton: Skeleton
    posed: Posed
    quats: np.ndarray     # (N, B, 4) pose-bone rotations
    root_loc: np.ndarray  # (N, 3) pelvis pose-bone location
    camera: CameraPath


def animate(record: dict) -> Animation:
    n, fps = record["frames"], record["fps"]
    skel = build_skeleton(record["body"])
    action = ACTIONS[record["class"]]
    t = np.arange(n) / fps
    channels = evaluate(action, t, record["action"])
    posed = pose_clip(skel, channels, n, action.ground)
    quats, root_loc = pose_bone_keys(posed, rest_rotations(skel))
    verts = posed_vertices(skel, posed)
    cam = frame_clip(verts, posed.heads[:, INDEX["pelvis"], :2], record["camera"], tuple(record["size"]))
    return Animation(skel, posed, quats, root_loc, cam)
