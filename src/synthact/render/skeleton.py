"""A capture's key points found from its skeleton's structure, not its joint names (numpy only).

Whatever a capture calls its joints, a human skeleton has five limb ends: two feet, two hands
and a head. They are found as the five longest branches of the joint tree (joints sitting on
their parent, zero offsets, are merged first; twist, roll, helper, finger, toe and facial joints
are short side branches and are never among them). The legs are the pair of mirror-image branches
meeting at one joint (the pelvis), the arms the pair meeting at another (the chest), with the
head on that side; the spine runs between the two. Along each limb the two long bones are
picked by length: thigh and shin are the longest consecutive pair, the upper arm and forearm the
pair closest to human proportions of those legs; joints on a straight line may be passed over
(twist joints inside a bone). A joint's end site is used when the file has one; where a limb stops
at the wrist or ankle its last bone is extended instead.

Axes and unit come from the body, not from the file format: up is where the neck is over the
ankles in most frames, forward where the toes point in the rest pose (else where the knees bend),
left is then ``up x forward``; each is snapped to the file's nearest signed axis, so the mapping to
our frame (+Z up, facing -Y, left +X) is an exact permutation. The unit is the one that makes
the legs adult length. A bind pose (a T-pose or rest frame) recorded before the motion shows
as a jump no motion makes, and the frames up to it are dropped.

Names break ties only: which leg is left when the skeleton is symmetric and still. A named bone
map (``--bone-map``) replaces the structural search; everything after it is the same code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadData
from .vectors import unit

KEYS = ("hips", "hip.l", "hip.r", "spine_low", "spine_mid", "neck", "head", "head_top",
        "shoulder.l", "elbow.l", "wrist.l", "hand_tip.l", "shoulder.r", "elbow.r", "wrist.r", "hand_tip.r",
        "knee.l", "ankle.l", "toe.l", "knee.r", "ankle.r", "toe.r")
OTHER_SIDE = {k: (k[:-1] + {"l": "r", "r": "l"}[k[-1]] if k[-2:] in (".l", ".r") else k) for k in KEYS}
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}  # metres per unit
ADULT_LEG = 0.84          # metres, hip joint to ankle (thigh + shin, Drillis & Contini: 0.49 of stature)
ARM = (0.378, 0.297)      # upper arm and forearm as fractions of thigh + shin (same source)
STRAIGHT = np.cos(np.radians(12.0))   # a joint passed over is this close to straight in the rest pose,
NEVER_BENDS = np.cos(np.radians(5.0))  # and this close in every frame (a twist joint inside a bone)
AXES = "XYZ"
LIMBS = {"leg": ("hip", "knee", "ankle", "toe"), "arm": ("shoulder", "elbow", "wrist", "hand_tip")}


@dataclass
class KeyMap:
    """Where each key point is in a capture, and how its axes and unit relate to ours."""
    joints: dict            # key -> joint index
    virtual: dict           # key -> (a, b, f): the point P[b] + f (P[b] - P[a]), where no joint is
    to_ours: np.ndarray     # (3, 3) signed permutation, file axes -> ours
    up: str                 # the file's up axis, e.g. "+Y"
    forward: str            # the way the body faces in the rest pose, e.g. "+Z"
    unit: str               # one of UNITS
    leg: float              # thigh + shin, file units
    first: int = 0          # first frame of the motion (a bind pose before it is dropped)
    how: str = "structure"  # or the bone map used
    names: dict = field(default_factory=dict)  # key -> the joint name shown to a user

    @property
    def stature(self) -> float:
        """Estimated standing height in metres."""
        return self.leg * UNITS[self.unit] / 0.49

    def points(self, P: np.ndarray) -> dict[str, np.ndarray]:
        """Key point -> (..., 3) positions in our axes, for (..., J, 3) positions in the file's."""
        out = {k: P[..., j, :] for k, j in self.joints.items()}
        for k, (a, b, f) in self.virtual.items():
            out[k] = P[..., b, :] + f * (P[..., b, :] - P[..., a, :])
        return {k: out[k] @ self.to_ours.T for k in KEYS}

    def describe(self) -> str:
        """``key=joint`` for every key point, one line."""
        return " ".join(f"{k}={self.names.get(k, '?')}" for k in KEYS)


def refuse(where: str, why: str):
    """The one-line refusal of a capture that is not mapped."""
    raise BadData(f"{where}: not mapped as a human skeleton: {why}")


# ------------------------------------------------------------------ the joint tree
class _Tree:
    """Joints merged where they sit on their parent (clusters), as an undirected weighted tree."""

    def __init__(self, parents: np.ndarray, offsets: np.ndarray, rest: np.ndarray, ends: list[bool]):
        J = len(parents)
        self.parents = parents
        length = np.linalg.norm(offsets, axis=1)
        size = max(float(np.ptp(rest, axis=0).max()), 1e-12)
        self.tiny = (length <= 1e-4 * size) & (parents >= 0)
        rep = np.arange(J)
        for j in range(J):  # a BVH lists parents before children
            if self.tiny[j]:
                rep[j] = rep[parents[j]]
        self.rep = rep
        self.adj: dict[int, dict[int, float]] = {int(u): {} for u in set(rep.tolist())}
        for j in range(J):
            if parents[j] >= 0 and not self.tiny[j]:
                u, v = int(rep[parents[j]]), int(rep[j])
                self.adj[u][v] = self.adj[v][u] = float(length[j])
        self.end = {u: bool(ends[u]) for u in self.adj}  # a cluster that is an End Site
    def dists(self, sources) -> tuple[dict, dict]:
        """Distance from the nearest source, and the previous node on the way, for every node."""
        dist = {s: 0.0 for s in sources}
        prev = {s: None for s in sources}
        stack = list(sources)
        while stack:
            u = stack.pop()
            for v, w in self.adj[u].items():
                if v not in dist:
                    dist[v], prev[v] = dist[u] + w, u
                    stack.append(v)
        return dist, prev

    def beyond(self, u: int, blocked: int) -> list:
        """The nodes reached from ``u`` without passing ``blocked``."""
        seen, stack = {u, blocked}, [u]
        while stack:
            x = stack.pop()
            for v in self.adj[x]:
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        return sorted(seen - {blocked})

    def entry(self, u: int, towards: int) -> int:
        """The joint of cluster ``u`` from which the branch to neighbour ``towards`` leaves."""
        p = self.parents[towards]
        return int(p) if towards == self.rep[towards] and p >= 0 and self.rep[p] == u else u


def rest_pose(parents: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(J, 3) joint positions with every rotation zero (the root at its offset)."""
    rest = np.array(offsets, float)
    for j, p in enumerate(parents):
        if p >= 0:
            rest[j] = rest[p] + offsets[j]
    return rest


def _structure(tree: _Tree, rest: np.ndarray, frames: np.ndarray, where: str) -> tuple[dict, dict, float, dict]:
    """Key point -> joint, virtual points, thigh + shin, and the joints to show where a key point
    sits on a cluster; legs and arms in either order (sides are told later)."""
    roots = [j for j, p in enumerate(tree.parents) if p < 0]
    if len(roots) != 1:
        refuse(where, f"{len(roots)} root joints; one skeleton per capture is expected")
    root = int(tree.rep[roots[0]])
    leaves = [u for u, nb in tree.adj.items() if len(nb) == 1 and u != root]
    if len(leaves) < 5:
        refuse(where, f"{len(leaves)} limb end(s), a human has 5 (two feet, two hands, a head)")
    # the five longest branches: a diameter between two ends, then the end farthest from those found
    d0, _ = tree.dists([leaves[0]])
    a = max(leaves, key=lambda u: d0.get(u, -1.0))
    da, prev = tree.dists([a])
    b = max(leaves, key=lambda u: da.get(u, -1.0))
    ends, core = [a, b], set(_walk(prev, b))
    while len(ends) < 5:
        d, prev = tree.dists(list(core))
        e = max((u for u in leaves if u not in ends), key=lambda u: d.get(u, -1.0))
        if d.get(e, 0.0) <= 0.0:
            refuse(where, "its joints do not form one tree")
        ends.append(e)
        core |= set(_walk(prev, e))
    degree = {u: sum(v in core for v in tree.adj[u]) for u in core}
    chain, attach = {}, {}
    for e in ends:  # from each end inwards to the first branching of the five
        path, u, last = [e], e, None
        while degree[u] < 3:
            nxt = [v for v in tree.adj[u] if v in core and v != last]
            last, u = u, nxt[0]
            path.append(u)
        attach[e], chain[e] = u, path[::-1]  # [branch point, ..., end]
    groups: dict[int, list] = {}
    for e in ends:
        groups.setdefault(attach[e], []).append(e)
    sizes = sorted(len(g) for g in groups.values())
    reach = lambda e: sum(tree.adj[x][y] for x, y in zip(chain[e], chain[e][1:]))  # noqa: E731
    if sizes == [2, 3]:
        legs = next(g for g in groups.values() if len(g) == 2)
        trio = next(g for g in groups.values() if len(g) == 3)
        head = min(trio, key=reach)
        arms = [e for e in trio if e != head]
    elif sizes == [1, 2, 2]:
        head = next(g[0] for g in groups.values() if len(g) == 1)
        pairs = [g for g in groups.values() if len(g) == 2]
        dh, _ = tree.dists([attach[head]])
        legs, arms = sorted(pairs, key=lambda g: -dh[attach[g[0]]])
    else:
        refuse(where, f"its five longest branches meet in groups of {sizes}, not two legs at a pelvis and "
                      f"two arms and a head at a chest")
    for pair, what in ((legs, "legs"), (arms, "arms")):
        r = sorted(reach(e) for e in pair)
        if r[1] > 1.6 * r[0]:
            refuse(where, f"its {what} are not alike ({r[0]:.3g} against {r[1]:.3g} long)")
    B, C = attach[legs[0]], attach[arms[0]]
    pos = lambda u: rest[u]  # noqa: E731
    J: dict[str, int] = {}
    V: dict[str, tuple] = {}
    shown: dict[str, int] = {}

    def joints_first(e: int, need: int) -> tuple[list, list]:
        """A limb's nodes past its branch point: its joints, with its end site only if too few."""
        nodes = chain[e][1:]
        joints = [u for u in nodes if not tree.end[u]]
        return (joints if len(joints) >= need else nodes), nodes

    def limb(e: int, s: str, parts: tuple, cost, extend: float) -> None:
        pool, nodes = joints_first(e, 3)
        a, b, c = _bones(pool, pos, cost, frames)
        for part, i in zip(parts, (a, b, c)):
            J[f"{part}.{s}"] = pool[i]
        after = nodes[nodes.index(pool[c]) + 1:]
        if after:  # the next joint, else the end site
            J[f"{parts[3]}.{s}"] = after[0]
        else:      # the limb stops here: carry on its last bone
            V[f"{parts[3]}.{s}"] = (pool[b], pool[c], extend)

    leg_len = []
    for s, e in zip("lr", legs):
        limb(e, s, LIMBS["leg"], lambda x, y: -min(x, y), 0.25)
        leg_len.append(sum(np.linalg.norm(pos(J[f"{x}.{s}"]) - pos(J[f"{y}.{s}"]))
                           for x, y in (("hip", "knee"), ("knee", "ankle"))))
    leg = float(np.mean(leg_len))
    ua, fa = ARM[0] * leg, ARM[1] * leg
    for s, e in zip("lr", arms):
        limb(e, s, LIMBS["arm"], lambda x, y: np.log(x / ua) ** 2 + np.log(y / fa) ** 2, 0.5)
    _, prev = tree.dists([C])
    spine = _walk(prev, B)  # [B, ..., C]
    J["hips"] = B
    if len(spine) >= 4:  # the spine starts at its first joint off the pelvis
        low, interior = spine[1], spine[2:-1]
        J["spine_low"] = low
    else:                # (or on the pelvis, where it leaves it)
        low, interior = B, spine[1:-1]
        J["spine_low"], shown["spine_low"] = B, tree.entry(B, spine[1])
    dist, _ = tree.dists([B])
    if interior:
        J["spine_mid"] = min(interior, key=lambda u: abs(dist[u] - (dist[low] + dist[C]) / 2))
    else:
        V["spine_mid"] = (C, low, -0.5)
    # the head's top is its highest point along the spine (not a jaw or an eye that reaches further)
    root, first = chain[head][0], chain[head][1]
    up = rest[C] - rest[B]
    branch = tree.beyond(first, root)
    top = max(branch, key=lambda u: (rest[u] - rest[root]) @ up)
    _, prev = tree.dists([root])
    chain[head] = _walk(prev, top)[::-1]
    pool, _ = joints_first(head, 2)
    full = [root] + pool  # [where the head branches off, ..., its top]
    J["head_top"] = full[-1]
    if len(full) >= 3:
        J["head"], J["neck"] = full[-2], full[-3]
        if len(full) == 3:
            shown["neck"] = tree.entry(full[0], full[1])
    else:
        J["neck"], shown["neck"] = full[0], tree.entry(full[0], full[1])
        V["head"] = (full[-1], full[0], -0.5)
    return J, V, leg, shown


def _walk(prev: dict, u) -> list:
    out = []
    while u is not None:
        out.append(u)
        u = prev[u]
    return out


def _bones(nodes: list, pos, cost, frames: np.ndarray) -> tuple[int, int, int]:
    """Indices (a, b, c) into ``nodes`` of a limb's two long bones a-b and b-c with the lowest
    ``cost(|ab|, |bc|)`` in the rest pose; a joint may be passed over only where it never bends
    (straight in the rest pose and in every frame of ``frames``: a twist joint inside a bone)."""
    n = len(nodes)
    if n < 3:
        raise _Short()
    straight = np.zeros(n, bool)
    for i in range(1, n - 1):
        u, v = pos(nodes[i]) - pos(nodes[i - 1]), pos(nodes[i + 1]) - pos(nodes[i])
        fu, fv = frames[:, nodes[i]] - frames[:, nodes[i - 1]], frames[:, nodes[i + 1]] - frames[:, nodes[i]]
        cos = np.sum(unit(fu) * unit(fv), axis=-1)
        straight[i] = u @ v >= STRAIGHT * np.linalg.norm(u) * np.linalg.norm(v) and cos.min() >= NEVER_BENDS
    best, pick = None, None
    for b in range(1, n - 1):
        for a in range(b - 1, -1, -1):
            for c in range(b + 1, n):
                x = np.linalg.norm(pos(nodes[b]) - pos(nodes[a]))
                y = np.linalg.norm(pos(nodes[c]) - pos(nodes[b]))
                if x > 0 and y > 0:
                    v = cost(x, y)
                    if best is None or v < best - 1e-12:
                        best, pick = v, (a, b, c)
                if c == n - 1 or not straight[c]:
                    break
            if not straight[a]:
                break
    if pick is None:
        raise _Short()
    return pick


class _Short(Exception):
    """A limb with fewer than three joints."""


# ------------------------------------------------------------------ the whole analysis
def analyse(names: list[str], parents, offsets: np.ndarray, P: np.ndarray, where: str,
            named: dict | None = None, how: str = "structure", ends: list[bool] | None = None) -> KeyMap:
    """Key points, axes, unit and first motion frame of a capture: joints ``names`` with
    ``parents`` and rest ``offsets``, posed ``P`` (F, J, 3) in the file's axes, ``ends`` marking
    End Sites. ``named`` (key -> joint index, from a bone map) replaces the search by structure."""
    parents = np.asarray(parents)
    offsets = np.asarray(offsets, float)
    rest = rest_pose(parents, offsets)
    tree = _Tree(parents, offsets, rest, ends or [False] * len(names))
    shown: dict[str, int] = {}
    sample = P[np.unique(np.linspace(0, len(P) - 1, min(len(P), 200)).round().astype(int))]
    if named is None:
        try:
            J, V, leg, shown = _structure(tree, rest, sample, where)
        except _Short:
            refuse(where, "a limb has fewer than three joints")
    else:
        J, V = dict(named), {}
        leg = float(np.mean([np.linalg.norm(rest[J[f"knee.{s}"]] - rest[J[f"hip.{s}"]]) +
                             np.linalg.norm(rest[J[f"ankle.{s}"]] - rest[J[f"knee.{s}"]]) for s in "lr"]))
    if not leg > 0:
        refuse(where, "its legs have no length")
    km = KeyMap(J, V, np.eye(3), "", "", "", leg, how=how)
    raw = lambda Q: {k: v for k, v in km.points(Q).items()}  # noqa: E731  (to_ours is still the identity)
    kr, ks = raw(rest), raw(sample)
    ankles = (ks["ankle.l"] + ks["ankle.r"]) / 2
    hips = (ks["hip.l"] + ks["hip.r"]) / 2
    if named is None:  # a human stands on its legs: the spine carries on upwards from them
        legs_up, spine_up = unit(hips - ankles), unit(ks["neck"] - hips)
        if np.median(np.sum(legs_up * spine_up, axis=-1)) < 0.3:
            refuse(where, "its spine does not rise over its legs (not a biped standing up)")
    up = _snap(np.median(unit(ks["neck"] - ankles), axis=0), None)
    if up is None:
        up = _snap(kr["neck"] - (kr["ankle.l"] + kr["ankle.r"]) / 2, None)
    if up is None:
        refuse(where, "cannot tell which way is up")
    fwd = None
    for pts in (kr, ks):  # the rest pose first: forward is the file's convention, not where it walks
        feet = _flat(pts["toe.l"] - pts["ankle.l"], up) + _flat(pts["toe.r"] - pts["ankle.r"], up)
        knees = sum(_flat(pts[f"knee.{s}"] - (pts[f"hip.{s}"] + pts[f"ankle.{s}"]) / 2, up) for s in "lr")
        for v in (feet, knees):
            v = np.median(v, axis=0) if v.ndim > 1 else v
            if np.linalg.norm(v) > 0.2:
                fwd = _snap(v, up)
                break
        if fwd is not None:
            break
    if fwd is None:
        refuse(where, "cannot tell which way it faces (no toes, straight knees)")
    left = np.cross(up, fwd)
    M = np.array([left, -fwd, up])
    if named is None:  # left and right by side
        for limb, parts in LIMBS.items():
            a, b = f"{parts[0]}.l", f"{parts[0]}.r"
            side = (kr[a] - kr[b]) @ left
            if abs(side) < 1e-6 * leg:
                side = np.median((ks[a] - ks[b]) @ left)
            if abs(side) < 1e-6 * leg:
                side = _name_side(names[J[a]]) - _name_side(names[J[b]])
            if side < 0:
                for part in parts:
                    for d in (J, V):
                        x, y = d.pop(f"{part}.l", None), d.pop(f"{part}.r", None)
                        if y is not None:
                            d[f"{part}.l"] = y
                        if x is not None:
                            d[f"{part}.r"] = x
    length_unit = min(UNITS, key=lambda u: abs(np.log(leg * UNITS[u] / ADULT_LEG)))
    km = KeyMap(J, V, M, _axis_name(up), _axis_name(fwd), length_unit, leg, how=how)
    km.first = _bind_frames(km, P, leg)
    km.names = {k: names[shown.get(k, j)] for k, j in J.items()}
    km.names.update({k: f"({names[b]}, extended)" if f > 0 else f"(between {names[a]} and {names[b]})"
                     for k, (a, b, f) in V.items()})
    return km


def _name_side(name: str) -> int:
    """+1 for a left-looking name, -1 for a right one, 0 when it does not say."""
    n = name.lower()
    if re.search(r"left|^l[_.]|[_.]l$|^l(?=[A-Z])", name) or "left" in n:
        return 1
    if re.search(r"right|^r[_.]|[_.]r$|^r(?=[A-Z])", name) or "right" in n:
        return -1
    return 0


def _flat(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The part of unit(v) across ``up``."""
    u = unit(v)
    return u - np.multiply.outer(u @ up, up) if u.ndim > 1 else u - (u @ up) * up


def _snap(v: np.ndarray, up: np.ndarray | None) -> np.ndarray | None:
    """The signed file axis nearest ``v`` (across ``up`` when given); None when ``v`` is no direction."""
    v = np.asarray(v, float)
    if up is not None:
        v = v - (v @ up) * up
    n = np.linalg.norm(v)
    if not n > 1e-12:
        return None
    v = v / n
    i = int(np.argmax(np.abs(v)))
    if abs(v[i]) < 0.5:
        return None
    out = np.zeros(3)
    out[i] = np.sign(v[i])
    return out


def _axis_name(v: np.ndarray) -> str:
    i = int(np.argmax(np.abs(v)))
    return ("+" if v[i] > 0 else "-") + AXES[i]


def _bind_frames(km: KeyMap, P: np.ndarray, leg: float) -> int:
    """Frames before the motion: a pose held (often one frame) and then left in one jump that
    no motion makes (a T-pose or rest frame recorded before the capture)."""
    n = min(len(P), 64)
    if n < 6:
        return 0
    pts = km.points(P[:n])
    Q = np.stack([pts[k] - pts["hips"] for k in KEYS], axis=1)      # (n, K, 3) body shape only
    d = np.linalg.norm(np.diff(Q, axis=0), axis=-1).mean(axis=1)    # (n - 1,) change per frame
    first = 0
    for k in range(min(10, n - 4)):  # (a bind pose, then maybe a calibration pose, then the motion)
        rest_of = np.median(d[k + 1:])
        if d[k] > max(10 * rest_of, 0.05 * leg) and np.all(d[first:k] <= 2 * rest_of + 1e-9 * leg):
            first = k + 1
    return first
