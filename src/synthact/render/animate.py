"""From a clip record to everything the Blender scene keys: poses, root, camera (numpy only)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import BadData
from .actions import ACTIONS, evaluate
from .camera import CameraPath, frame_clip
from .mannequin import INDEX, Skeleton, build_skeleton, rest_rotations
from .mocap import retarget, sample_positions
from .motion import Posed, pose_bone_keys, pose_clip, posed_vertices
from .record import CapturedMotion, ClipRecord
from .skinned import SkinnedBody, pose_body


@dataclass
class Animation:
    """Everything the Blender scene keys for one clip (see :func:`animate`)."""

    skeleton: Skeleton
    posed: Posed
    quats: np.ndarray     # (N, B, 4) pose-bone rotations
    root_loc: np.ndarray  # (N, 3) pelvis pose-bone location
    camera: CameraPath
    motion_used: dict     # what a capture actually gave (frames, speed), for the manifest
    skinned: Skinned | None = None
    ground: np.ndarray | None = None   # (3,) the body's mean ground position and its floor height
    extras: list = field(default_factory=list)   # other people: (skeleton, quats, root_loc, location, yaw)


@dataclass
class Skinned:
    """A skinned body following the clip's motion."""

    rest: SkinnedBody
    frames: np.ndarray    # (N, V, 3) its vertices following the motion


def animate(record: ClipRecord, body: SkinnedBody | None = None) -> Animation:
    """Poses, root and camera for a clip's record; with ``body``, that skinned body follows the
    motion and the camera frames it instead of the mannequin. A motion that gives non-finite
    positions is a :class:`BadData` naming its capture (or the clip)."""
    n, fps = record.frames, record.fps
    skel = build_skeleton(record.body.proportions())
    motion, act = record.moved_by, record.action
    used: dict = {}
    if isinstance(motion, CapturedMotion):
        keys, used = sample_positions(motion.file, motion.frames, n, fps, motion.start, act.speed,
                                      act.mirror, motion.bone_map)
        posed = retarget(skel, keys, motion.file)
    else:
        posed = _procedural(skel, record.cls, act, n, fps)
    quats, root_loc = pose_bone_keys(posed, rest_rotations(skel))
    verts = posed_vertices(skel, posed)
    if not np.isfinite(verts).all():  # caught here, before Blender renders black frames from it
        where = motion.file if isinstance(motion, CapturedMotion) else record.clip
        raise BadData(f"{where}: the motion gives non-finite body positions")
    skinned = None
    if body is not None:
        skinned = Skinned(body, pose_body(body, skel, posed, verts[:, :, 2].min(axis=1)))
        verts = skinned.frames[:, ::5]  # framing needs the silhouette, not every vertex
    root_xy = posed.heads[:, INDEX["pelvis"], :2]
    cam = frame_clip(verts, root_xy, record.camera, (record.size[0], record.size[1]), record.fps)
    ground = np.array([*root_xy.mean(axis=0), float(verts[..., 2].min())])
    return Animation(skel, posed, quats, root_loc, cam, used, skinned, ground, _extras(record, ground))


def _extras(record: ClipRecord, ground: np.ndarray) -> list:
    """The other people of a shot, posed with the clip's action and placed beside the main figure."""
    out = []
    for e in record.extras or ():
        skel = build_skeleton(e.body.proportions())
        posed = _procedural(skel, record.cls, e.action, record.frames, record.fps)
        quats, root_loc = pose_bone_keys(posed, rest_rotations(skel))
        out.append((skel, quats, root_loc, (ground[0] + e.x, ground[1] + e.y, 0.0), np.radians(e.facing)))
    return out


def _procedural(skel: Skeleton, cls: str, act, n: int, fps: int) -> Posed:
    """``n`` frames of class ``cls``'s library action as ``act`` (speed, phase, style...) plays it."""
    action = ACTIONS[cls]
    return pose_clip(skel, evaluate(action, np.arange(n) / fps, asdict(act)), n, action.ground)
