"""BVH motion capture: parse the file, pose its skeleton (numpy only).

Rotation channels are intrinsic in the order listed (``Zrotation Yrotation Xrotation`` means
R = Rz @ Ry @ Rx), in any order; position channels are taken on any joint (added to its offset).
:meth:`Bvh.world` gives positions in the file's own axes and units; which way is up, forward and
how long a unit is are found from the skeleton itself (:mod:`.skeleton`). :meth:`Bvh.positions`
keeps the classic reading (Y-up, (x, y, z) becomes our (x, -z, y), a proper rotation).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, NoReturn

import numpy as np

from ..contract import atomic_write
from ..errors import BadData
from .motion import rot

_AXIS = {"X": 0, "Y": 1, "Z": 2}
TO_OURS = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class Bvh:
    """A parsed BVH file: the joint tree, each joint's channels and the motion rows."""

    path: str
    names: list[str]            # joints, then end sites named "<parent>_end"
    parents: list[int]
    offsets: np.ndarray         # (J, 3) in BVH axes
    channels: list[list[str]]   # per joint; end sites have none
    motion: np.ndarray          # (F, C) channel values
    frame_time: float
    ends: list[bool] = field(default_factory=list)  # which entries are End Sites

    @property
    def fps(self) -> float:
        """Frames per second of the motion."""
        return 1.0 / self.frame_time

    def positions(self) -> np.ndarray:
        """(F, J, 3) world positions of every joint and end site, read as Y-up, our axes, BVH units."""
        return self.world() @ TO_OURS.T

    def world(self) -> np.ndarray:
        """(F, J, 3) world positions of every joint and end site, the file's axes and units."""
        f = len(self.motion)
        G = np.empty((f, len(self.names), 3, 3))
        P = np.empty((f, len(self.names), 3))
        col = 0
        for j, (p, chans) in enumerate(zip(self.parents, self.channels, strict=True)):
            R = np.broadcast_to(np.eye(3), (f, 3, 3))
            t = np.zeros((f, 3))
            for c in chans:
                v = self.motion[:, col]
                col += 1
                if c.endswith("position"):
                    t[:, _AXIS[c[0]]] = v
                else:
                    R = R @ rot(_AXIS[c[0]], v)
            if p < 0:
                G[:, j], P[:, j] = R, self.offsets[j] + t
            else:
                G[:, j] = G[:, p] @ R
                if any(c.endswith("position") for c in chans):  # a joint that also slides
                    P[:, j] = P[:, p] + np.einsum("fij,fj->fi", G[:, p], self.offsets[j] + t)
                else:
                    P[:, j] = P[:, p] + np.einsum("fij,j->fi", G[:, p], self.offsets[j])
        return P


Fail = Callable[[int, str], NoReturn]   # refuses the file, naming its line


def parse_bvh(path: Path) -> Bvh:
    """A BVH file, checked at the door: a well-formed hierarchy with finite offsets, then exactly
    ``Frames:`` rows of finite numbers, one per channel, and a plausible ``Frame Time``. Anything
    else is refused naming file:line; a NaN let through renders black frames and poisons framing."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadData(f"{path}: cannot read BVH ({exc})") from None

    def fail(i: int, msg: str) -> NoReturn:
        raise BadData(f"{path}:{i + 1}: {msg}")

    if not lines or lines[0].strip() != "HIERARCHY":
        fail(0, "not a BVH file (no HIERARCHY)")
    names, parents, offsets, channels, i = _hierarchy(lines, fail)
    motion, frame_time = _motion(lines, i, sum(len(c) for c in channels), fail)
    ends = [n.endswith("_end") and n[:-4] in names and parents[j] == names.index(n[:-4]) and not c
            for j, (n, c) in enumerate(zip(names, channels, strict=True))]
    return Bvh(str(path), names, parents, np.array(offsets), channels, motion, frame_time, ends)


def _hierarchy(lines: list[str], fail: Fail) -> tuple:
    """Joints, parents, offsets, channels and the index of the MOTION line."""
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float] | None] = []
    channels: list[list[str]] = []
    stack: list[int] = []
    pending = None  # a joint declared whose '{' is still to come
    for i in range(1, len(lines)):
        tok = lines[i].split()
        key = tok[0] if tok else ""
        if key in ("ROOT", "JOINT", "End"):
            if (key != "ROOT" and not stack) or pending is not None:
                fail(i, f"{key} outside a joint's braces")
            names.append(_joint_name(tok, names, stack, i, fail))
            parents.append(stack[-1] if stack else -1)
            offsets.append(None)
            channels.append([])
            pending = len(names) - 1
        elif key == "{":
            if pending is None:
                fail(i, "unexpected '{'")
            stack.append(pending)
            pending = None
        elif key == "}":
            if not stack or pending is not None:
                fail(i, "unbalanced '}'")
            stack.pop()
        elif key in ("OFFSET", "CHANNELS") and (not stack or pending is not None):
            fail(i, f"{key} outside a joint's braces")
        elif key == "OFFSET":
            offsets[stack[-1]] = _offset(tok, i, fail)
        elif key == "CHANNELS":
            channels[stack[-1]] = _channels(tok, i, fail)
        elif key == "MOTION":
            if stack or pending is not None or not names or any(o is None for o in offsets):
                fail(i, "MOTION before the hierarchy is complete (unclosed braces or a joint without OFFSET)")
            return names, parents, offsets, channels, i
        elif key:
            fail(i, f"unexpected {key!r}")
    fail(len(lines) - 1, "truncated hierarchy (no MOTION section)")


def _joint_name(tok: list[str], names: list[str], stack: list[int], i: int, fail: Fail) -> str:
    """A ROOT's or JOINT's name, or an End Site's (its joint's name + ``_end``), declared once."""
    if tok[0] != "End" and len(tok) < 2:
        fail(i, "joint without a name")
    name = f"{names[stack[-1]]}_end" if tok[0] == "End" else tok[1]
    if name in names:
        fail(i, f"joint {name!r} declared twice")
    return name


def _offset(tok: list[str], i: int, fail: Fail) -> list[float]:
    values = _numbers(tok[1:])
    if values is None or len(values) != 3 or not np.isfinite(values).all():
        fail(i, f"bad OFFSET {' '.join(tok[1:])!r}: expected 3 finite numbers")
    return values


def _channels(tok: list[str], i: int, fail: Fail) -> list[str]:
    chans = tok[2:]
    if (len(tok) < 2 or _count(tok[1]) != len(chans)
            or any(c[0] not in _AXIS or c[1:] not in ("position", "rotation") for c in chans)):
        fail(i, f"bad CHANNELS {' '.join(tok[1:])!r}")
    return chans


def _count(text: str) -> int | None:
    """A non-negative whole number; None for anything else (or too long for int() to take)."""
    return int(text) if text.isdecimal() and len(text) < 10 else None


def _numbers(tokens: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in tokens]
    except ValueError:
        return None


# seconds per frame: 1 MHz to one frame a minute; outside is a typo, and 1/frame_time must stay finite
FRAME_TIME = (1e-6, 60.0)


def _motion(lines: list[str], i: int, width: int, fail: Fail) -> tuple[np.ndarray, float]:
    """The ``Frames:`` / ``Frame Time:`` header after MOTION (line ``i``) and exactly that many rows."""
    header = []
    for k, key in ((i + 1, "Frames"), (i + 2, "Frame Time")):
        name, _, value = lines[k].partition(":") if k < len(lines) else ("", "", "")
        if name.strip() != key:
            fail(min(k, len(lines) - 1), f"expected '{key}: ...'")
        header.append(value.strip())
    frames = _count(header[0])
    if frames is None or frames < 2:
        fail(i + 1, f"Frames: {header[0]!r}: expected a count of at least 2")
    frame_time = (_numbers([header[1]]) or [float("nan")])[0]
    if not FRAME_TIME[0] <= frame_time <= FRAME_TIME[1]:  # NaN fails too
        fail(i + 2, f"Frame Time: {header[1]!r}: expected seconds per frame within {FRAME_TIME[0]}..{FRAME_TIME[1]}")
    rows = [(k, ln.split()) for k, ln in enumerate(lines[i + 3:], start=i + 3) if ln.strip()]
    if len(rows) != frames:
        fail(rows[frames][0] if len(rows) > frames else len(lines) - 1,
             f"{len(rows)} motion rows, but 'Frames:' says {frames}")
    for k, row in rows:
        if len(row) != width:
            fail(k, f"{len(row)} values, the hierarchy has {width} channels")
    try:
        motion = np.array([row for _, row in rows], dtype=float)
    except ValueError:  # find the culprit (the slow way) to name its line
        for k, row in rows:
            bad = next((v for v in row if _numbers([v]) is None), None)
            if bad is not None:
                fail(k, f"not a number: {bad!r}")
        motion = np.array([_numbers(row) for _, row in rows])  # where numpy is stricter than float()
    finite = np.isfinite(motion)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        fail(rows[r][0], f"frame {r + 1}, channel {c + 1}: {rows[r][1][c]!r} is not a finite number")
    return motion, frame_time


@lru_cache(maxsize=16)
def load_bvh(path: str, mtime_ns: int) -> tuple[Bvh, np.ndarray]:
    """Parsed file and its positions (:meth:`Bvh.world`: file axes and units), cached per worker
    (a 2 MB capture parses in ~0.2 s)."""
    b = parse_bvh(Path(path))
    with np.errstate(over="ignore", invalid="ignore"):
        P = b.world()
    if not np.isfinite(P).all():  # finite but huge values overflow when joints are chained
        raise BadData(f"{path}: joint positions overflow; the capture's values are implausibly large")
    return b, P


def euler(R: np.ndarray, order: str) -> np.ndarray:
    """(..., 3) angles in degrees of intrinsic rotations in ``order`` (e.g. "ZXY": R = Rz Rx Ry)
    making up (..., 3, 3) rotations ``R``: the inverse of how :meth:`Bvh.world` reads channels."""
    i, j, k = (_AXIS[a] for a in order)
    s = 1.0 if (j - i) % 3 == 1 else -1.0   # XYZ, YZX, ZXY are cyclic
    b = np.arcsin(np.clip(s * R[..., i, k], -1.0, 1.0))
    a = np.arctan2(-s * R[..., j, k], R[..., k, k])
    c = np.arctan2(-s * R[..., i, j], R[..., i, i])
    return np.degrees(np.stack([a, b, c], axis=-1))


def write_bvh(path: Path, names: list[str], parents: list[int], offsets: np.ndarray, channels: list[list[str]],
              motion: np.ndarray, frame_time: float, ends: list[bool] | None = None) -> None:
    """A BVH file (joints in ``names`` order, parents first; ``ends`` marks End Sites)."""
    ends = ends or [False] * len(names)
    kids: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        kids.setdefault(p, []).append(j)
    out = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        head = "End Site" if ends[j] else ("ROOT " if parents[j] < 0 else "JOINT ") + names[j]
        out.extend([pad + head, pad + "{", pad + "\tOFFSET " + " ".join(f"{v:.6f}" for v in offsets[j])])
        if not ends[j]:
            out.append(pad + f"\tCHANNELS {len(channels[j])} " + " ".join(channels[j]))
        for c in kids.get(j, []):
            emit(c, depth + 1)
        out.append(pad + "}")

    for r in kids[-1]:
        emit(r, 0)
    out += ["MOTION", f"Frames: {len(motion)}", f"Frame Time: {frame_time:.8f}"]
    out += [" ".join(f"{v:.6f}" for v in row) for row in np.atleast_2d(motion)]
    atomic_write(Path(path), "\n".join(out) + "\n")  # a kill never leaves a torn capture in a library
