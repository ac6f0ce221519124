"""Is extracted motion faithful? The closed loop: render a known capture with a skinned body,
extract its motion back from the frames, compare with the source.

Limb directions are compared in each body's own torso frame (hip line and spine), so the camera's
view and the two skeletons' axes drop out: the agreement of a limb is the cosine between its
direction in the source and in the extraction, averaged over frames. Left/right: the same
cosines with the sides swapped must be lower. The root's travel is compared in leg lengths,
across the ground.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import yaml

from .. import contract as C
from ..render.vectors import frame, unit

LIMBS = {"upper_arm": ("shoulder", "elbow"), "forearm": ("elbow", "wrist"), "thigh": ("hip", "knee"),
         "shin": ("knee", "ankle")}


def _local(k: dict[str, np.ndarray], a: str, b: str) -> np.ndarray:
    """(N, 3) direction a -> b in the torso frame (left, back, up) of each frame."""
    F = frame(k["neck"] - k["hips"], k["hip.l"] - k["hip.r"])
    return np.einsum("nji,nj->ni", F, unit(k[b] - k[a]))


def limb_agreement(source: dict[str, np.ndarray], extracted: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean cosine per limb and side (``upper_arm.l``...), their mean ``all``, and ``swapped``: the
    mean with left and right exchanged (lower than ``all`` when the sides are right)."""
    out, swapped = {}, []
    for limb, (a, b) in LIMBS.items():
        for s, o in (("l", "r"), ("r", "l")):
            src = _local(source, f"{a}.{s}", f"{b}.{s}")
            out[f"{limb}.{s}"] = float(np.mean(np.sum(src * _local(extracted, f"{a}.{s}", f"{b}.{s}"), axis=-1)))
            swapped.append(float(np.mean(np.sum(src * _local(extracted, f"{a}.{o}", f"{b}.{o}"), axis=-1))))
    out["all"] = float(np.mean(list(out.values())))
    out["swapped"] = float(np.mean(swapped))
    return out


def _travel(k: dict[str, np.ndarray], up: int) -> float:
    """Distance across the ground from the first to the last frame, in leg lengths."""
    leg = np.median(np.linalg.norm(k["hip.l"] - k["knee.l"], axis=-1) + np.linalg.norm(k["knee.l"] - k["ankle.l"],
                                                                                        axis=-1))
    d = k["hips"][-1] - k["hips"][0]
    d[up] = 0.0
    return float(np.linalg.norm(d) / leg)


def closed_loop(capture: Path, work: Path, clips: int = 1, frames: int = 48, size: tuple[int, int] = (320, 240),
                body: str = "makehuman", seed: int = 0, fixed_camera: bool = False) -> list[dict]:
    """Render ``clips`` clips of ``capture`` (a BVH) with ``body``, extract each back, and compare
    (see the module doc): per clip its limb agreement, the share of frames with a person, and the
    travel of source and extraction when the camera stood still. ``fixed_camera``: every clip shot
    by a still camera (``render-clips --fixed-camera``), else travelling captures are followed and
    their travel is not compared."""
    from ..render.jobs import RenderJob, render_batch
    from ..render.mocap import sample_positions
    from ..render.record import CapturedMotion, read_records
    from . import motion_cleanup as M
    from .pose_video import estimate
    work = Path(work)
    lib = work / "motions.yaml"
    lib.parent.mkdir(parents=True, exist_ok=True)
    lib.write_text(yaml.safe_dump({"motions": {"loop": [str(Path(capture).resolve())]}}))
    root = work / "clips"
    s = render_batch(RenderJob(out=root, classes="loop", per_class=clips, frames=frames, size=size, workers=1,
                               motions=str(lib), body=body, seed=seed, fps=30, fixed_camera=fixed_camera),
                     progress=False)
    if not s.ok:
        raise RuntimeError(f"closed loop: rendering failed: {s.failures}")
    out = []
    for rec in read_records(root):
        m, act = rec.motion, rec.action
        assert isinstance(m, CapturedMotion)   # every clip of the loop's library is cut from the capture
        src, _ = sample_positions(m.file, m.frames, rec.frames, rec.fps, m.start, act.speed, act.mirror, m.bone_map)
        folder = C.clip_dir(root, rec.clip)
        with tempfile.TemporaryDirectory() as tmp:
            video = Path(tmp) / "clip.avi"
            w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), rec.fps, tuple(rec.size))
            for i in range(1, rec.frames + 1):
                w.write(cv2.imread(str(folder / C.img_name(i))))
            w.release()
            track = estimate(video)
        kept = [g for g in M.clean(track) if g.dropped is None]
        row = {"clip": rec.clip, "person_share": float(track.found.mean()), "follow": rec.camera_follows}
        if not kept:
            out.append({**row, "all": float("nan")})
            continue
        g = max(kept, key=lambda g: g.end - g.start)
        ext = {k: v for k, v in g.points.items()}
        part = {k: v[g.start:g.end] for k, v in src.items()}
        row.update(limb_agreement(part, ext), frames_compared=g.end - g.start, body=g.body)
        if not rec.camera_follows and g.body == "full":   # a following camera cancels the image hip track
            moved = {**ext, "hips": ext["hips"] + g.travel}
            row.update(travel_source=_travel(part, 2), travel_extracted=_travel(moved, 1))
        out.append(row)
    return out
