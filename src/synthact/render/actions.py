"""The procedural action library: each action is a few key poses in anatomical channels.

A key pose is a dict of channels (degrees; ``root_y``/``lift`` in metres, see ``motion.py``).
Cyclic actions loop their keys (walk, punch combos); one-shot actions play once inside the clip
at a random start and hold their first and last pose (sit down, golf swing). Catmull-Rom splines
through the keys give smooth motion; the per-clip sampler adds amplitude, speed, phase, left/right
mirroring and a small style offset. Names are ours; ``assets/classes.yaml`` maps them to UCF-101
and HMDB-51 classes. Actions are authored right-handed and mirrored at random.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .motion import ROOT_CHANNELS, mirror


@dataclass(frozen=True)
class Action:
    """A procedural action: key poses at fractions of its period, looped when cyclic."""

    keys: tuple                 # ((fraction, pose dict), ...)
    period: float               # seconds per cycle, or duration of a one-shot movement
    cyclic: bool = True
    base: dict = field(default_factory=dict)   # stance added under every key
    travel: float = 0.0         # forward root speed, m/s at speed 1
    climb: float = 0.0          # upward root speed (stairs), m/s at speed 1
    spin: float = 0.0           # yaw rate, deg/s at speed 1 (hammer throw)
    ground: str = "contact"     # or "hang": hands hold an invisible bar


def both(**kw) -> dict:
    """The same channels on both sides: ``both(elbow=90)`` -> elbow.l, elbow.r."""
    return {f"{k}.{s}": v for k, v in kw.items() for s in ("l", "r")}


def pose(*parts: dict, **kw) -> dict:
    """Merge pose dicts; ``foo_l=3`` is channel ``foo.l``."""
    out = {}
    for p in parts:
        out.update(p)
    for k, v in kw.items():
        if k[-2:] in ("_l", "_r"):
            k = f"{k[:-2]}.{k[-1]}"
        out[k] = v
    return out


def swap(p: dict) -> dict:
    """Left and right exchanged, nothing reflected: the second half of a gait cycle."""
    return {(f"{k[:-2]}.{'r' if k[-1] == 'l' else 'l'}" if k[-2:] in (".l", ".r") else k): v
            for k, v in p.items()}


def gait(a: dict, b: dict) -> tuple:
    """Keys of a symmetric cycle: pose a, pose b, then both mirrored left for right."""
    return ((0.0, a), (0.25, b), (0.5, swap(a)), (0.75, swap(b)))


def spline(times: npt.ArrayLike, values: npt.ArrayLike, u: np.ndarray, cyclic: bool) -> np.ndarray:
    """Catmull-Rom through (times, values) evaluated at u in [0, 1]; values (K, C)."""
    t, v = np.asarray(times, float), np.asarray(values, float)
    if cyclic:  # pad one key on each side, wrapped by a period
        t = np.concatenate([[t[-1] - 1.0], t, [t[0] + 1.0, t[1] + 1.0]])
        v = np.concatenate([v[-1:], v, v[:2]])
    else:       # hold the ends
        t = np.concatenate([[t[0] - 1.0], t, [t[-1] + 1.0]])
        v = np.concatenate([v[:1], v, v[-1:]])
    m = np.zeros_like(v)
    m[1:-1] = (v[2:] - v[:-2]) / (t[2:] - t[:-2])[:, None]
    if not cyclic:
        m[1], m[-2] = 0.0, 0.0
    i = np.clip(np.searchsorted(t, u, side="right") - 1, 1, len(t) - 3)
    h = (t[i + 1] - t[i])[:, None]
    s = ((u - t[i]) / h[:, 0])[:, None]
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * v[i] + h10 * h * m[i] + h01 * v[i + 1] + h11 * h * m[i + 1]


def evaluate(action: Action, t: np.ndarray, params: dict) -> dict:
    """Channels over clip times ``t`` (s) for sampled ``params`` (amp, speed, phase, mirror, style)."""
    speed, amp, phase = params["speed"], params["amp"], params["phase"]
    names = sorted({k for _, p in action.keys for k in p} | set(action.base))
    times = [f for f, _ in action.keys]
    vals = np.array([[action.base.get(c, 0.0) + p.get(c, 0.0) for c in names] for _, p in action.keys])
    dur = action.period / speed
    if action.cyclic:
        u = np.mod(t / dur + phase, 1.0)
    else:
        length = t[-1] - t[0]
        start = phase * (length - dur) if length > dur else -phase * (dur - length)
        u = np.clip((t - t[0] - start) / dur, 0.0, 1.0)
    curves = spline(times, vals, u, action.cyclic)
    ch = {}
    for j, c in enumerate(names):
        ch[c] = curves[:, j] if c in ROOT_CHANNELS and c != "lift" else curves[:, j] * amp
    for c, v in params.get("style", {}).items():
        ch[c] = ch.get(c, 0.0) + v
    ch["root_y"] = ch.get("root_y", 0.0) - action.travel * speed * t
    # splines overshoot between keys; a body never sinks below the floor it stands on
    ch["lift"] = np.maximum(ch.get("lift", 0.0), 0.0) + action.climb * speed * t
    ch["yaw"] = ch.get("yaw", 0.0) + action.spin * speed * t
    return mirror(ch) if params["mirror"] else ch


# ------------------------------------------------------------------ stances used by many actions
GUARD = pose(both(sh_flex=45, elbow=120, sh_abd=12, sh_twist=-25, knee=18, hip_flex=12), spine_flex=8, neck_flex=-5)
READY = pose(both(knee=25, hip_flex=25, sh_flex=30, elbow=60), spine_flex=20)
HANDSTAND = pose(both(sh_flex=172, sh_abd=8), pitch=180)
PLANK = both(sh_flex=78, sh_abd=10)

ACTIONS: dict[str, Action] = {
    "wave": Action(((0.0, pose(sh_abd_r=100, sh_twist_r=55, elbow_r=75, neck_twist=-5)),
                    (0.5, pose(sh_abd_r=108, sh_twist_r=120, elbow_r=90, neck_twist=-5))), 0.75),
    "clap": Action(((0.0, both(sh_flex=40, elbow=85, sh_twist=-5, sh_abd=25)),
                    (0.5, both(sh_flex=45, elbow=85, sh_twist=-60, sh_abd=2))), 0.5),
    "walk": Action(gait(pose(hip_flex_l=25, hip_flex_r=-15, knee_l=5, knee_r=15, ankle_l=10, ankle_r=-15,
                          sh_flex_l=-22, sh_flex_r=22, elbow_l=15, elbow_r=25),
                        pose(hip_flex_l=-2, hip_flex_r=20, knee_l=8, knee_r=62, ankle_r=5, elbow_l=15, elbow_r=15)),
                   1.1, travel=1.3),
    "run": Action(gait(pose(hip_flex_l=50, hip_flex_r=-25, knee_l=20, knee_r=35, sh_flex_l=-40, sh_flex_r=45,
                         lift=0.0),
                       pose(hip_flex_l=10, hip_flex_r=35, knee_l=25, knee_r=110, lift=0.08)),
                  0.72, base=pose(both(elbow=90), spine_flex=12), travel=3.4),
    "jump": Action(((0.0, {}), (0.25, pose(both(hip_flex=70, knee=105, ankle=30, sh_flex=-45), spine_flex=35)),
                    (0.40, pose(both(sh_flex=160, ankle=-30))),
                    (0.55, pose(both(sh_flex=150, knee=25, hip_flex=15), lift=0.45)),
                    (0.72, pose(both(hip_flex=55, knee=85, ankle=25, sh_flex=40), spine_flex=25)),
                    (1.0, {})), 1.7, cyclic=False),
    "punch": Action(((0.0, {}), (0.18, pose(sh_flex_l=88, elbow_l=5, sh_twist_l=0, sh_abd_l=0, spine_twist=-18)),
                     (0.38, {}), (0.68, pose(sh_flex_r=88, elbow_r=5, sh_twist_r=0, sh_abd_r=0, spine_twist=22)),
                     (0.88, {})), 1.0, base=GUARD),
    "boxing_bag": Action(((0.0, {}), (0.12, pose(sh_flex_l=85, elbow_l=10, spine_twist=-15)), (0.25, {}),
                          (0.37, pose(sh_flex_r=85, elbow_r=10, spine_twist=25)), (0.5, {}),
                          (0.65, pose(sh_abd_l=85, sh_flex_l=30, elbow_l=95, sh_twist_l=-70, spine_twist=-35)),
                          (0.8, {}), (0.9, pose(sh_flex_r=60, elbow_r=100, sh_abd_r=60, spine_twist=30))),
                         1.3, base=pose(GUARD, knee_l=25, knee_r=25)),
    "kick": Action(((0.0, {}), (0.3, pose(hip_flex_r=75, knee_r=115)), (0.45, pose(hip_flex_r=95, knee_r=5, spine_flex=-12)),
                    (0.6, pose(hip_flex_r=70, knee_r=110)), (0.8, {})), 1.4, base=GUARD),
    "kick_ball": Action(((0.0, {}), (0.3, pose(both(sh_abd=30), hip_flex_r=-35, knee_r=95, root_y=-0.3)),
                         (0.5, pose(hip_flex_r=70, knee_r=15, spine_flex=-12, sh_abd_l=45, sh_abd_r=30, root_y=-0.5)),
                         (0.65, pose(hip_flex_r=85, knee_r=25, sh_abd_l=40, root_y=-0.55)),
                         (1.0, pose(root_y=-0.6))), 1.8, cyclic=False),
    "sit_down": Action(((0.0, {}), (0.45, pose(both(hip_flex=55, knee=60, sh_flex=35), spine_flex=35)),
                        (1.0, pose(both(hip_flex=90, knee=92, ankle=5, sh_flex=10, elbow=40), spine_flex=5))),
                       2.0, cyclic=False),
    "stand_up": Action(((0.0, pose(both(hip_flex=90, knee=92, ankle=5, sh_flex=10, elbow=40), spine_flex=5)),
                        (0.45, pose(both(hip_flex=65, knee=70, sh_flex=35), spine_flex=40)), (1.0, {})),
                       2.0, cyclic=False),
    "squat": Action(((0.0, pose(both(sh_flex=90))), (0.5, pose(both(hip_flex=105, knee=125, ankle=35, sh_flex=95), spine_flex=35))),
                    1.9),
    "jumping_jack": Action(((0.0, {}), (0.25, pose(both(sh_abd=95, hip_abd=10), lift=0.08)),
                            (0.5, pose(both(sh_abd=170, hip_abd=18, knee=12))), (0.75, pose(both(sh_abd=95, hip_abd=10), lift=0.08))),
                           0.95),
    "lunge": Action(((0.0, {}), (0.25, pose(hip_flex_r=85, knee_r=90, hip_flex_l=-20, knee_l=85, ankle_l=-35, root_y=-0.35)),
                     (0.5, {}), (0.75, pose(hip_flex_l=85, knee_l=90, hip_flex_r=-20, knee_r=85, ankle_r=-35, root_y=-0.35))),
                    3.0, base=both(sh_abd=35, elbow=110, sh_twist=-40)),
    "push_up": Action(((0.0, pose(pitch=76)), (0.5, pose(both(sh_flex=-40, sh_abd=25, elbow=95), pitch=86))), 1.6, base=PLANK),
    "wall_push_up": Action(((0.0, pose(both(sh_flex=118), pitch=32)), (0.5, pose(both(sh_flex=95, elbow=105, sh_abd=20), pitch=40))),
                           1.7),
    "pull_up": Action(((0.0, both(sh_flex=172, sh_abd=18, elbow=8)), (0.5, both(sh_flex=150, sh_abd=40, elbow=135))),
                      2.0, base=both(knee=45, hip_flex=15), ground="hang"),
    "climb_stairs": Action(gait(pose(hip_flex_l=55, hip_flex_r=-5, knee_l=70, knee_r=10, sh_flex_l=-15, sh_flex_r=20),
                                pose(hip_flex_l=30, hip_flex_r=45, knee_l=20, knee_r=90)),
                           1.3, base=pose(spine_flex=12, **both(elbow=20)), travel=0.45, climb=0.3),
    "turn": Action(((0.0, {}), (0.25, pose(hip_flex_l=30, knee_l=45, yaw=45)), (0.5, pose(yaw=90)),
                    (0.75, pose(hip_flex_r=30, knee_r=45, yaw=140)), (1.0, pose(yaw=170))), 2.0, cyclic=False),
    "pick_up": Action(((0.0, {}), (0.4, pose(both(hip_flex=70, knee=55), spine_flex=65, sh_flex_r=75, sh_flex_l=30)),
                       (0.55, pose(both(hip_flex=70, knee=55), spine_flex=65, sh_flex_r=80, elbow_r=20, sh_flex_l=30)),
                       (1.0, pose(sh_flex_r=35, elbow_r=95))), 2.2, cyclic=False),
    "throw": Action(((0.0, {}), (0.35, pose(sh_abd_r=90, sh_twist_r=95, elbow_r=95, sh_flex_l=60, spine_twist=-45,
                                         hip_flex_l=35, knee_l=20)),
                     (0.55, pose(sh_flex_r=120, sh_abd_r=40, elbow_r=20, spine_twist=30, spine_flex=20, hip_flex_l=30)),
                     (0.75, pose(sh_flex_r=55, sh_abd_r=0, elbow_r=20, spine_flex=35, spine_twist=40, hip_flex_l=25)),
                     (1.0, {})), 1.5, cyclic=False),
    "golf_swing": Action(((0.0, {}), (0.4, pose(spine_twist=-85, sh_flex_l=95, sh_abd_l=-35, sh_flex_r=60,
                                             sh_abd_r=45, elbow_r=100, sh_twist_r=60)),
                          (0.58, {}), (0.8, pose(spine_twist=90, spine_flex=-25, sh_flex_r=110, sh_abd_r=-30,
                                               sh_flex_l=70, sh_abd_l=50, elbow_l=110, sh_twist_l=60)),
                          (1.0, pose(spine_twist=95, spine_flex=-28, sh_flex_r=120, sh_abd_r=-30, sh_flex_l=80,
                                  sh_abd_l=55, elbow_l=120, sh_twist_l=60))), 1.8, cyclic=False,
                         base=pose(both(knee=20, hip_flex=30, sh_flex=25, sh_abd=-12, elbow=5), spine_flex=40, neck_flex=20)),
    "tennis_swing": Action(((0.0, {}), (0.35, pose(spine_twist=-70, sh_abd_r=55, sh_flex_r=-25, elbow_r=30, sh_flex_l=60)),
                            (0.55, pose(spine_twist=0, sh_flex_r=55, sh_abd_r=45, elbow_r=15, hip_flex_l=30, root_y=-0.2)),
                            (0.75, pose(spine_twist=60, sh_flex_r=110, sh_abd_r=-30, elbow_r=70, hip_flex_l=25, root_y=-0.25)),
                            (1.0, pose(root_y=-0.25))), 1.6, cyclic=False, base=READY),
    "baseball_pitch": Action(((0.0, both(sh_flex=40, elbow=110, sh_twist=-40)),
                              (0.3, pose(both(sh_flex=40, elbow=110, sh_twist=-40), hip_flex_l=90, knee_l=95, yaw=-30)),
                              (0.5, pose(hip_flex_l=45, knee_l=35, sh_abd_r=90, sh_twist_r=100, elbow_r=90, sh_abd_l=70,
                                      spine_twist=-50, root_y=-0.5)),
                              (0.65, pose(hip_flex_l=40, knee_l=40, hip_flex_r=-20, sh_flex_r=110, elbow_r=15,
                                       spine_flex=40, spine_twist=40, root_y=-0.7)),
                              (1.0, pose(hip_flex_l=35, knee_l=40, hip_flex_r=-10, knee_r=30, sh_flex_r=45, sh_abd_r=-20,
                                      spine_flex=55, spine_twist=45, root_y=-0.75))), 2.0, cyclic=False),
    "baseball_swing": Action(((0.0, {}), (0.35, pose(spine_twist=-25, hip_flex_l=25, knee_l=30, root_y=-0.1)),
                              (0.55, pose(spine_twist=60, sh_flex_l=80, sh_abd_l=-20, elbow_l=10, sh_flex_r=75,
                                       sh_abd_r=10, elbow_r=30, root_y=-0.15)),
                              (0.8, pose(spine_twist=100, sh_flex_l=70, sh_abd_l=60, elbow_l=100, sh_flex_r=100,
                                      sh_abd_r=-30, elbow_r=60, root_y=-0.15)),
                              (1.0, pose(spine_twist=95, sh_flex_l=60, sh_abd_l=60, elbow_l=110, sh_flex_r=90,
                                      sh_abd_r=-30, elbow_r=70, root_y=-0.15))), 1.5, cyclic=False,
                             base=pose(both(knee=22, hip_flex=18, hip_abd=10, sh_flex=55, elbow=115, sh_twist=-45),
                                    sh_abd_r=40, spine_flex=18, neck_twist=-40)),
    "bowling": Action(((0.0, {}), (0.25, pose(sh_flex_r=-50, elbow_r=5, hip_flex_l=30, knee_l=30, root_y=-0.6)),
                       (0.5, pose(sh_flex_r=-75, hip_flex_r=30, knee_r=40, root_y=-1.2, spine_flex=20)),
                       (0.72, pose(sh_flex_r=40, hip_flex_l=70, knee_l=90, hip_flex_r=-45, knee_r=20, spine_flex=45,
                                sh_abd_l=60, root_y=-1.9)),
                       (1.0, pose(sh_flex_r=95, hip_flex_l=70, knee_l=90, hip_flex_r=-45, knee_r=20, spine_flex=40,
                               sh_abd_l=60, root_y=-2.0))), 2.4, cyclic=False, base=pose(sh_flex_l=30, elbow_l=30)),
    "cricket_bowling": Action(((0.0, pose(sh_flex_r=-20, sh_flex_l=20)),
                               (0.3, pose(sh_flex_r=20, sh_flex_l=-30, hip_flex_l=60, knee_l=80, lift=0.15, root_y=-1.0)),
                               (0.5, pose(sh_flex_r=-40, sh_flex_l=180, spine_flex=-20, hip_flex_l=20, root_y=-1.8)),
                               (0.7, pose(sh_flex_r=180, sh_flex_l=60, spine_flex=20, hip_flex_l=40, knee_l=20,
                                       root_y=-2.4)),
                               (1.0, pose(sh_flex_r=320, sh_flex_l=10, spine_flex=50, hip_flex_l=50, knee_l=40,
                                       hip_flex_r=-30, root_y=-2.8))), 1.8, cyclic=False),
    "tai_chi": Action(((0.0, pose(both(sh_flex=20, elbow=40), root_x=0.0)),
                       (0.25, pose(sh_flex_l=70, sh_flex_r=35, elbow_l=60, elbow_r=80, sh_abd_r=30, spine_twist=30,
                                root_x=0.12, knee_l=40, knee_r=15)),
                       (0.5, pose(both(sh_flex=60, sh_abd=35, elbow=30))),
                       (0.75, pose(sh_flex_r=70, sh_flex_l=35, elbow_r=60, elbow_l=80, sh_abd_l=30, spine_twist=-30,
                                root_x=-0.12, knee_r=40, knee_l=15))),
                      4.5, base=pose(both(knee=25, hip_flex=20, hip_abd=12, sh_twist=-20), spine_flex=5)),
    "hammer_throw": Action(((0.0, pose(both(sh_flex=65, sh_abd=-12, elbow=5), spine_flex=-12)),
                            (0.5, pose(both(sh_flex=85, sh_abd=-12, elbow=5), spine_flex=-18, spine_twist=25))),
                           0.8, base=both(knee=30, hip_flex=20, hip_abd=10), spin=450),
    "discus_throw": Action(((0.0, pose(sh_abd_r=80, sh_flex_r=-30, sh_flex_l=60, sh_abd_l=30, spine_twist=-60)),
                            (0.6, pose(sh_abd_r=85, sh_flex_r=-40, sh_flex_l=50, sh_abd_l=60, spine_twist=-40, yaw=540,
                                    root_y=-0.8)),
                            (0.8, pose(sh_abd_r=80, sh_flex_r=60, sh_flex_l=20, sh_abd_l=60, spine_twist=60, yaw=560,
                                    root_y=-0.9)),
                            (1.0, pose(sh_abd_r=40, sh_flex_r=80, sh_abd_l=45, spine_twist=70, yaw=560, root_y=-0.9))),
                           2.2, cyclic=False, base=both(knee=30, hip_flex=25, hip_abd=12)),
    "javelin_throw": Action(((0.0, pose(sh_abd_r=80, sh_flex_r=-35, elbow_r=10, sh_flex_l=45, elbow_l=40)),
                             (0.5, pose(sh_abd_r=85, sh_flex_r=-50, elbow_r=5, sh_flex_l=80, hip_flex_l=45, knee_l=15,
                                     spine_flex=-15, spine_twist=-50, root_y=-2.4)),
                             (0.7, pose(sh_flex_r=165, elbow_r=30, sh_flex_l=20, hip_flex_l=40, spine_flex=25,
                                     spine_twist=25, root_y=-2.9)),
                             (1.0, pose(sh_flex_r=70, sh_flex_l=10, hip_flex_l=35, knee_l=30, hip_flex_r=-25,
                                     spine_flex=50, spine_twist=30, root_y=-3.1))), 2.0, cyclic=False),
    "shot_put": Action(((0.0, pose(spine_flex=50, hip_flex_r=80, knee_r=95, hip_flex_l=40, knee_l=20, sh_flex_l=70)),
                        (0.45, pose(both(hip_flex=45, knee=70), spine_flex=40, sh_flex_l=50, sh_abd_l=40, spine_twist=-40,
                                 root_y=-0.8)),
                        (0.7, pose(sh_flex_r=125, elbow_r=15, sh_abd_r=40, spine_twist=50, spine_flex=-10,
                                root_y=-1.0)),
                        (1.0, pose(sh_flex_r=70, elbow_r=20, spine_flex=30, spine_twist=60, hip_flex_l=-20,
                                hip_flex_r=40, root_y=-1.1))), 1.8, cyclic=False,
                       base=pose(sh_flex_r=30, sh_abd_r=70, elbow_r=150, sh_twist_r=40)),
    "jump_rope": Action(((0.0, pose(both(knee=25, hip_flex=10, ankle=10))), (0.3, pose(lift=0.07)),
                         (0.5, pose(both(ankle=-25, wrist=30), lift=0.1)), (0.7, pose(lift=0.07))), 0.45,
                        base=both(sh_abd=25, elbow=45, sh_flex=15)),
    "fencing": Action(((0.0, {}), (0.3, pose(hip_flex_r=70, knee_r=85, hip_flex_l=-30, knee_l=5, sh_flex_r=92, elbow_r=0,
                                          sh_abd_l=50, elbow_l=20, root_y=-0.55)),
                       (0.55, pose(hip_flex_r=70, knee_r=85, hip_flex_l=-30, knee_l=5, sh_flex_r=90, elbow_r=0,
                                sh_abd_l=50, elbow_l=20, root_y=-0.55)), (1.0, {})),
                      1.9, base=pose(hip_flex_r=35, knee_r=50, hip_flex_l=-15, knee_l=50, hip_abd_l=15, hip_twist_l=50,
                                  sh_flex_r=60, elbow_r=40, sh_abd_l=90, elbow_l=95, sh_twist_l=90,
                                  spine_twist=-45, neck_twist=45)),
    "archery": Action(((0.0, {}), (0.3, pose(sh_abd_l=88, sh_abd_r=85, elbow_r=60, sh_twist_r=-20)),
                       (0.6, pose(sh_abd_l=88, sh_abd_r=88, elbow_r=150, sh_twist_r=-40)),
                       (0.8, pose(sh_abd_l=88, sh_abd_r=88, elbow_r=150, sh_twist_r=-40)),
                       (1.0, pose(sh_abd_l=86, sh_abd_r=80, elbow_r=105, sh_twist_r=-10))), 2.4, cyclic=False,
                      base=pose(both(hip_abd=10), neck_twist=75, spine_twist=-10)),
    "handstand_push_up": Action(((0.0, {}), (0.5, pose(both(sh_flex=150, sh_abd=30, elbow=100), hip_flex_l=10,
                                                    hip_flex_r=10))), 1.8, base=HANDSTAND),
    "handstand_walk": Action(((0.0, pose(sh_flex_l=155, sh_flex_r=185)), (0.5, pose(sh_flex_l=185, sh_flex_r=155))),
                             0.9, base=pose(HANDSTAND, hip_flex_l=20, knee_l=30, hip_flex_r=-10), travel=-0.5),
    "handstand": Action(((0.0, both(sh_flex=170)), (0.3, pose(both(sh_flex=175), pitch=70, hip_flex_r=60, knee_r=10,
                                                          spine_flex=20)),
                         (0.55, pose(HANDSTAND, hip_flex_l=-40, hip_flex_r=40)), (0.75, pose(HANDSTAND)),
                         (1.0, pose(HANDSTAND, pitch=174))), 2.2, cyclic=False),
    "cartwheel": Action(((0.0, both(sh_abd=170, hip_abd=10)), (0.25, pose(both(sh_abd=172, hip_abd=40), roll=90, root_x=0.5)),
                         (0.5, pose(both(sh_abd=172, hip_abd=45), roll=180, root_x=1.0)),
                         (0.75, pose(both(sh_abd=172, hip_abd=40), roll=270, root_x=1.5)),
                         (1.0, pose(both(sh_abd=150, hip_abd=10), roll=360, root_x=1.9))), 1.7, cyclic=False),
    "fall_floor": Action(((0.0, {}), (0.3, pose(both(knee=60, hip_flex=40), spine_flex=20, pitch=10)),
                          (0.6, pose(both(knee=30, hip_flex=30, sh_flex=100), pitch=55)),
                          (1.0, pose(both(knee=10, hip_flex=5, sh_flex=150, sh_abd=30, elbow=30), pitch=88))),
                         1.5, cyclic=False),
}
