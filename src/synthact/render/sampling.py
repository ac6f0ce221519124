"""Sample every random choice of a clip into its record (:mod:`.record`), before any bpy call.

The record is the clip's manifest line: the clip can be rendered again from it alone, and the
same (batch seed, class, index) always gives the same record.
"""
from __future__ import annotations

import typing
import zlib
from dataclasses import replace
from typing import cast

import numpy as np

from ..errors import BadConfig
from .actions import ACTIONS
from .backdrop import sample_background
from .mannequin import sample_proportions
from .record import (
    Action,
    Body,
    Camera,
    CapturedMotion,
    ClipRecord,
    Extra,
    Framing,
    Handheld,
    Light,
    Motion,
    ProceduralMotion,
    View,
)
from .skinned import sample_body_model

STYLE_RANGES = {  # per-clip posture quirks added to every action, degrees
    "sh_abd.l": (0, 10), "sh_abd.r": (0, 10), "elbow.l": (0, 15), "elbow.r": (0, 15),
    "hip_abd.l": (0, 5), "hip_abd.r": (0, 5), "spine_flex": (-4, 8), "neck_flex": (-8, 12),
}


def clip_seed(batch_seed: int, cls: str, index: int) -> int:
    """The seed of one clip, from the batch seed, its class and its index (1-based)."""
    ss = np.random.SeedSequence([batch_seed, zlib.crc32(cls.encode()), index])
    return int(ss.generate_state(1)[0])


def clip_name(cls: str, batch_seed: int, index: int) -> str:
    """``<class>/<class>_s<batch seed>_<index:05d>``: the clip's id in the manifest and its folder."""
    return f"{cls}/{cls}_s{batch_seed}_{index:05d}"


VIEW_AZIMUTH = {"front": 0.0, "left": 90.0, "back": 180.0, "right": 270.0}   # sector centres, +-45 degrees
# the camera on the body's left sees its left side: the body faces -Y, so its left is +X (azimuth 90)


def profiled_camera(camera: Camera, profile, cls: str, seed: int) -> tuple[Camera, int]:
    """``camera`` with a profile's draws for ``cls`` (``data.profile.draw``): the azimuth within the
    drawn view's sector, the framing (a tight crop for upper / head / lower shots), and for a moving
    camera a hand-held motion, else a still one; and the number of people in the shot. Drawn from
    the clip's own third stream, so every other draw of the clip stays as without a profile."""
    from ..data.profile import draw
    rng = np.random.default_rng([seed, 2])
    u = lambda lo, hi: round(float(rng.uniform(lo, hi)), 4)  # noqa: E731
    shot = draw(profile, cls, rng)
    framing = cast(Framing, shot.body if shot.body in typing.get_args(Framing) else "full")
    view = cast(View, shot.view)   # a profile's views are checked when it loads
    azimuth = round((VIEW_AZIMUTH[shot.view] + u(-45.0, 45.0)) % 360.0, 4)
    fill = camera.fill if framing == "full" else u(0.9, 1.0)   # a crop frames its part tightly
    if shot.camera == "static":
        return replace(camera, azimuth=azimuth, fill=fill, pan=0.0, zoom=1.0, framing=framing,
                       view=view), shot.people
    handheld = Handheld(shake=u(0.3, 2.0), frequency=u(0.3, 1.5), phases=[u(0.0, 1.0) for _ in range(6)],
                        drift=u(0.0, 0.3), drift_angle=u(0.0, 360.0), reframe=u(-8.0, 8.0), reframe_at=u(0.2, 0.8))
    return replace(camera, azimuth=azimuth, fill=fill, framing=framing, view=view,
                   handheld=handheld), shot.people


def sample_action(rng: np.random.Generator) -> Action:
    """How a performer plays the action: speed, amplitude, phase, mirroring and posture quirks."""
    u = lambda lo, hi: round(float(rng.uniform(lo, hi)), 4)  # noqa: E731
    return Action(speed=u(0.8, 1.25), amp=u(0.85, 1.15), phase=u(0.0, 1.0), mirror=bool(rng.random() < 0.5),
                  style={k: u(lo, hi) for k, (lo, hi) in STYLE_RANGES.items()})


def sample_extras(people: int, camera: Camera, seed: int) -> list[Extra]:
    """The other ``people - 1`` performers of a shot, from the clip's fifth stream: each its own body
    and timing, beside the main figure as the camera sees it (0.6-1.3 m to its left or right) and a
    little in front of or behind it, facing the main figure or the same way."""
    rng = np.random.default_rng([seed, 4])
    u = lambda lo, hi: round(float(rng.uniform(lo, hi)), 4)  # noqa: E731
    a = np.radians(camera.azimuth)
    right, away = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])  # seen from the camera
    out = []
    for k in range(people - 1):
        body = Body(**sample_proportions(rng), grey=u(0.45, 0.85))
        side = 1.0 if (k % 2 == 0) == (rng.random() < 0.5) else -1.0
        x, y = side * u(0.6, 1.3) * right + u(-0.4, 0.8) * away
        toward = np.degrees(np.arctan2(-x, y))   # its forward (sin f, -cos f) points back at the main figure
        facing = toward if rng.random() < 0.5 else u(-30.0, 30.0)
        out.append(Extra(body=body, action=sample_action(rng), x=round(float(x), 4), y=round(float(y), 4),
                         facing=round(float(facing), 4)))
    return out


def sample_record(cls: str, batch_seed: int, index: int, frames: int, fps: int,
                  size: tuple[int, int], engine: str, gt_flow: bool, motions: dict | None = None,
                  bodies: list | None = None, profile=None, background: str = "black",
                  fixed_camera: bool = False) -> ClipRecord:
    """The record of clip ``index`` of class ``cls``: every random choice drawn, in a fixed order,
    from the clip's own seed. ``motions``: a loaded motion library (``mocap.load_library``); its
    classes are cut from captures, not procedural. ``bodies``: the parsed ``--body`` spec
    (default: the mannequin). ``profile``: a loaded shot profile (``data.profile.load_profile``)
    the camera is drawn from. ``background``: black, points or grid (:mod:`.backdrop`), drawn from
    the clip's fourth stream. An unknown class is a :class:`BadConfig`."""
    seed = clip_seed(batch_seed, cls, index)
    rng = np.random.default_rng(seed)
    u = lambda lo, hi: round(float(rng.uniform(lo, hi)), 4)  # noqa: E731
    # the draws below are in the order the manifests of earlier versions were drawn in: keep it
    captured = motions["motions"].get(cls) if motions else None
    motion: Motion
    if captured:
        assert motions is not None
        pick = captured[int(rng.integers(len(captured)))]
        motion = CapturedMotion(file=pick["file"], frames=pick["frames"], start=u(0.0, 1.0),
                                bone_map=motions["bone_map"], origin=pick.get("origin"))
    elif cls in ACTIONS:
        motion = ProceduralMotion()
    else:
        raise BadConfig(f"unknown class {cls!r}")
    proportions, grey = sample_proportions(rng), u(0.45, 0.85)
    # the body model has its own stream: adding --body leaves every other draw as it was
    model = sample_body_model(np.random.default_rng([seed, 1]), bodies or [("mannequin", 1.0)])
    body = Body(**proportions, grey=grey, **model)
    action = sample_action(rng)
    camera = Camera(
        azimuth=u(0.0, 360.0),
        elevation=u(-5.0, 35.0),
        lens=u(24.0, 70.0),
        fill=u(0.6, 0.95),
        pan=u(-25.0, 25.0) if rng.random() < 0.5 else 0.0,
        zoom=u(0.85, 1.15) if rng.random() < 0.5 else 1.0,
        # a cameraman panning with the root (smoothed) half the time, else a static shot
        # wide enough for all the root's travel
        follow=bool(rng.random() < 0.5),
    )
    light = Light(azimuth=u(0.0, 360.0), elevation=u(15.0, 75.0), strength=u(0.7, 1.3))
    extras = None
    if profile is not None:
        camera, people = profiled_camera(camera, profile, cls, seed)
        if people > 1 and isinstance(motion, ProceduralMotion):   # a capture has one performer
            extras = sample_extras(people, camera, seed)
    if fixed_camera:   # drawn as ever (every other draw unchanged), then held still
        camera = replace(camera, follow=False, pan=0.0, zoom=1.0, handheld=None, fixed=True)
    return ClipRecord(clip=clip_name(cls, batch_seed, index), cls=cls, batch_seed=batch_seed, index=index, seed=seed,
                      frames=frames, fps=fps, size=list(size), engine=engine, gt_flow=gt_flow, motion=motion,
                      body=body, action=action, camera=camera, light=light,
                      profile=profile.name if profile is not None else None,
                      background=sample_background(background, np.random.default_rng([seed, 3])), extras=extras)
