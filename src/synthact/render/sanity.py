"""Whether a mapped capture moves like a person (numpy only): it travels the way it faces, its knees
bend forwards, its head sits on its neck. ``synthact motions check`` reports these for every capture
and warns in one line where one is implausible: a rig mapped with left and right swapped walks
backwards on bent-back knees, an eye taken for the top of the head pitches the head onto the chest."""
from __future__ import annotations

import numpy as np

from .keypoints import BENT, KeyMap, bend, body_forward
from .vectors import unit

UP = np.array([0.0, 0.0, 1.0])  # our axes
PITCH_LIMIT = 40.0              # degrees of head pitch against the torso no one holds for most of a capture


def capture_sanity(km: KeyMap, P: np.ndarray) -> dict:
    """``travel_along_facing``: the cosine between the root's horizontal travel and the mapped facing
    (None where the root travels less than half a leg); ``knee_bend_along_facing``: the median cosine
    of the knees' bend with the facing, in frames where they bend (None where they never do);
    ``head_pitch_deg``: the median pitch of the neck-to-head-top line against the torso's up (forward
    positive); ``warnings``: one line for each that is implausible. ``P`` (F, J, 3): the capture's
    positions in its own axes, the bind frames before ``km.first`` left out here."""
    pts = km.points(P[km.first:])
    facing = body_forward(pts, UP)
    out: dict = {"travel_along_facing": _travel(pts["hips"], facing, km.leg),
           "knee_bend_along_facing": _knees(pts, facing)}
    pitch = _head_pitch(pts, facing)
    out["head_pitch_deg"] = round(float(np.median(pitch)), 1)
    warnings = []
    t, k = out["travel_along_facing"], out["knee_bend_along_facing"]
    if t is not None and t < -0.5:
        warnings.append(f"walks backwards: its root travels against its facing (cosine {t:.2f}); "
                        f"left and right may be swapped")
    if k is not None and k < 0:
        warnings.append(f"its knees bend backwards (median cosine {k:.2f} with its facing); "
                        f"left and right may be swapped")
    tilted = float(np.mean(np.abs(pitch) > PITCH_LIMIT))
    if tilted > 0.5:
        warnings.append(f"its head is pitched more than {PITCH_LIMIT:.0f} degrees against the torso in "
                        f"{tilted:.0%} of frames (median {out['head_pitch_deg']:.0f}); the head's top may be "
                        f"an eye or a jaw (map head_top with --bone-map FILE)")
    out["warnings"] = warnings
    return out


def describe_sanity(sane: dict) -> str:
    """The numbers of :func:`capture_sanity` in a line for a user ("-": the root stays put, the knees
    never bend)."""
    def num(v):
        return "-" if v is None else f"{v:.2f}"
    return (f"  sanity: travel along facing {num(sane['travel_along_facing'])}, knees bend along facing "
            f"{num(sane['knee_bend_along_facing'])}, head pitch {sane['head_pitch_deg']:.0f} degrees")


def _travel(hips: np.ndarray, facing: np.ndarray, leg: float) -> float | None:
    """Travel-weighted mean cosine of each step with the facing at its start (20 steps at most, so
    that a standing body's sway does not add up to travel)."""
    i = np.unique(np.linspace(0, len(hips) - 1, min(len(hips), 21)).round().astype(int))
    steps = np.diff(hips[i], axis=0) * np.array([1.0, 1.0, 0.0])
    lengths = np.linalg.norm(steps, axis=-1)
    if lengths.sum() < 0.5 * leg:
        return None
    return round(float(np.sum(steps * facing[i[:-1]]) / lengths.sum()), 3)


def _knees(pts: dict, facing: np.ndarray) -> float | None:
    cos = []
    for s in "lr":
        b = bend(pts[f"hip.{s}"], pts[f"knee.{s}"], pts[f"ankle.{s}"])
        bent = np.linalg.norm(b, axis=-1) > BENT[0]
        cos.append(np.sum(unit(b[bent]) * facing[bent], axis=-1))
    cos = np.concatenate(cos)
    return round(float(np.median(cos)), 3) if len(cos) else None


def _head_pitch(pts: dict, facing: np.ndarray) -> np.ndarray:
    """(F,) degrees the neck-to-head-top line leans forward of the torso's up (hips to neck)."""
    up = unit(pts["neck"] - pts["hips"])
    fwd = unit(facing - np.sum(facing * up, axis=-1, keepdims=True) * up)
    h = pts["head_top"] - pts["neck"]
    return np.degrees(np.arctan2(np.sum(h * fwd, axis=-1), np.sum(h * up, axis=-1)))
