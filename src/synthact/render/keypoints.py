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
at the wrist or ankle its last bone is extended instead. The head's top lies on the neck-to-head
line: a left/right pair hanging from the head (eyes, ears) or a joint off the line (a jaw) is never
taken, and where the last joint on the line sits below such a pair it is the head's own joint
(low in the skull) and the line is carried on past it to the top.

Axes and unit come from the body, not from the file format: up is where the neck is over the
ankles in most frames. Which side is left is read from the motion, frame by frame against the body's
own hip and shoulder lines (so a capture that turns around still counts): the toes, the knees and
elbows where they bend (as a fraction of the limb: a kink of a degree casts no vote) and the root
where it travels all say where the body faces; the rest pose is one more vote, and only where its
legs hang down (some rigs keep the legs pointing up with every rotation zero); names break a tie.
Forward is then the rest pose's facing where its legs hang, else the motion's; left is
``up x forward``; each is snapped to the file's nearest signed axis, so the mapping to our frame
(+Z up, facing -Y, left +X) is an exact permutation. The unit is the one that makes
the legs adult length. A bind pose (a T-pose or rest frame) recorded before the motion shows
as a jump no motion makes, and the frames up to it are dropped.

Names break ties only: which leg is left when the skeleton is symmetric and still. A named bone
map (``--bone-map``) replaces the structural search; everything after it is the same code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn

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
# a limb that stops at the ankle or wrist: its last bone carried on by this fraction (a toe, a hand's tip)
EXTEND = {"toe": ("knee", "ankle", 0.25), "hand_tip": ("elbow", "wrist", 0.5)}
BENT = (0.02, 0.1)        # a knee or elbow this far off its limb's line (a fraction of the limb: about 5 and
                          # 23 degrees) starts to vote on the facing, and casts a whole vote
HANGS = np.cos(np.radians(30.0))    # rest-pose legs this close to minus up are standing ones
ON_LINE = np.cos(np.radians(45.0))  # the head's top is no further than this off the neck-to-head line


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

    def names_line(self) -> str:
        """``key=joint`` for every key point, one line."""
        return " ".join(f"{k}={self.names.get(k, '?')}" for k in KEYS)


def refuse(where: str, why: str) -> NoReturn:
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
    chain, attach = _branches(tree, *_five_ends(tree, where))
    legs, arms, head = _limbs(tree, chain, attach, where)
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

    def limb(e: int, s: str, parts: tuple, cost) -> None:
        pool, nodes = joints_first(e, 3)
        a, b, c = _bones(pool, pos, cost, frames)
        for part, i in zip(parts[:3], (a, b, c), strict=True):
            J[f"{part}.{s}"] = pool[i]
        after = nodes[nodes.index(pool[c]) + 1:]
        if after:  # the next joint, else the end site
            J[f"{parts[3]}.{s}"] = after[0]
        else:      # the limb stops here: carry on its last bone
            V[f"{parts[3]}.{s}"] = (pool[b], pool[c], EXTEND[parts[3]][2])

    leg_len: list[float] = []
    for s, e in zip("lr", legs, strict=True):
        limb(e, s, LIMBS["leg"], lambda x, y: -min(x, y))
        leg_len.append(float(sum(np.linalg.norm(pos(J[f"{x}.{s}"]) - pos(J[f"{y}.{s}"]))
                                 for x, y in (("hip", "knee"), ("knee", "ankle")))))
    leg = float(np.mean(leg_len))
    ua, fa = ARM[0] * leg, ARM[1] * leg
    for s, e in zip("lr", arms, strict=True):
        limb(e, s, LIMBS["arm"], lambda x, y: np.log(x / ua) ** 2 + np.log(y / fa) ** 2)
    _spine(tree, B, C, J, V, shown)
    _head(tree, chain[head], frames, J, V, shown)
    return J, V, leg, shown


def _five_ends(tree: _Tree, where: str) -> tuple[list[int], set[int]]:
    """The ends of the five longest branches (two feet, two hands, a head) and the clusters on the
    paths between them."""
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
    return ends, core


def _branches(tree: _Tree, ends: list[int], core: set[int]) -> tuple[dict, dict]:
    """Each end's chain ``[branch point, ..., end]`` and its branch point: from the end inwards to the
    first branching of the five."""
    degree = {u: sum(v in core for v in tree.adj[u]) for u in core}
    chain, attach = {}, {}
    for e in ends:
        path, u, last = [e], e, None
        while degree[u] < 3:
            nxt = [v for v in tree.adj[u] if v in core and v != last]
            last, u = u, nxt[0]
            path.append(u)
        attach[e], chain[e] = u, path[::-1]
    return chain, attach


def _limbs(tree: _Tree, chain: dict, attach: dict, where: str) -> tuple[list, list, int]:
    """The two legs' ends, the two arms' ends and the head's, told by where the branches meet; legs
    and arms each alike in length."""
    groups: dict[int, list] = {}
    for e in chain:
        groups.setdefault(attach[e], []).append(e)
    sizes = sorted(len(g) for g in groups.values())
    reach = lambda e: sum(tree.adj[x][y] for x, y in zip(chain[e], chain[e][1:], strict=False))  # noqa: E731
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
    return legs, arms, head


def _spine(tree: _Tree, B: int, C: int, J: dict, V: dict, shown: dict) -> None:
    """The hips (pelvis ``B``) and the spine up to the chest ``C``, into ``J``, ``V`` and ``shown``."""
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


def _head(tree: _Tree, chain: list, frames: np.ndarray, J: dict, V: dict, shown: dict) -> None:
    """The neck, head and head top of the head's branch ``chain``, into ``J``, ``V`` and ``shown``."""
    # its nodes on the neck-to-head line, the top last, or the line carried on past the head joint
    full, past = head_line(tree, chain[0], chain[1], frames)
    joints = [u for u in full[1:] if not tree.end[u]]
    if len(joints) >= 2:  # its end site only where it has too few joints (as the limbs)
        full = full[:1] + joints
    if past is not None:
        J["head"], J["neck"] = full[-1], full[-2]
        V["head_top"] = (full[-2], full[-1], past)
        if len(full) == 2:
            shown["neck"] = tree.entry(full[0], full[1])
    else:
        J["head_top"] = full[-1]
        if len(full) >= 3:
            J["head"], J["neck"] = full[-2], full[-3]
            if len(full) == 3:
                shown["neck"] = tree.entry(full[0], full[1])
        else:
            J["neck"], shown["neck"] = full[0], tree.entry(full[0], full[1])
            V["head"] = (full[-1], full[0], -0.5)


def head_line(tree: _Tree, root: int, first: int, P: np.ndarray) -> tuple[list, float | None]:
    """The head's nodes on the neck-to-head line, ``[root, first, ..., last]`` (each next one the child
    closest to the line, in the median of ``P`` (F, J, 3), and no further off it than ``ON_LINE``; never
    one of a left/right pair, eyes or ears, nor anything hanging from one); and how far past the last
    the top lies, as a fraction of the last bone, where the last sits below such a pair (the head's
    own joint, low in the skull), else None (the last is the top)."""
    _, back = tree.dists([root])
    kids = {u: [v for v in tree.adj[u] if back.get(v) == u] for u in tree.beyond(first, back[first])}

    def cos(u, v, w):  # median cosine between the bones u-v and v-w
        return float(np.median(np.sum(unit(P[:, v] - P[:, u]) * unit(P[:, w] - P[:, v]), axis=-1)))

    paired = set()
    for u, ks in kids.items():
        lines = {v: P[:, v] - P[:, u] for v in ks}
        for i, a in enumerate(ks):
            for b in ks[i + 1:]:
                la, lb = tree.adj[u][a], tree.adj[u][b]
                mirror = abs(la - lb) <= 0.1 * max(la, lb) and float(np.median(np.sum(
                    unit(lines[a]) * unit(lines[b]), axis=-1))) < 0.95
                if mirror and abs(cos(back[u], u, a) - cos(back[u], u, b)) < 0.15:
                    paired |= {a, b}
    line = [root, first]
    while True:
        on = [v for v in kids[line[-1]] if v not in paired]
        best = max(on, key=lambda v: cos(line[-2], line[-1], v), default=None)
        if best is None or cos(line[-2], line[-1], best) < ON_LINE:
            break
        line.append(best)
    if paired:
        d = unit(P[:, line[-1]] - P[:, line[-2]])
        above = max(float(np.median(np.sum((P[:, v] - P[:, line[-1]]) * d, axis=-1))) for v in paired)
        if above > 0:
            bone = float(np.median(np.linalg.norm(P[:, line[-1]] - P[:, line[-2]], axis=-1)))
            return line, 2 * above / max(bone, 1e-12)
    return line, None


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


def _mapped(tree: _Tree, named: dict, rest: np.ndarray, sample: np.ndarray) -> tuple[dict, dict, float]:
    """Key points, virtual points and thigh + shin of a bone map: where it names no toe, hand tip or
    head top (no end sites), they are found as the structure would."""
    J, V = dict(named), {}
    for s in "lr":
        for part, (a, b, f) in EXTEND.items():
            if f"{part}.{s}" not in J:
                V[f"{part}.{s}"] = (J[f"{a}.{s}"], J[f"{b}.{s}"], f)
    if "head_top" not in J:
        neck, head = int(tree.rep[J["neck"]]), int(tree.rep[J["head"]])
        line, past = head_line(tree, neck, head, sample) if neck != head else ([neck, head], None)
        if past is None and len(line) > 2:
            J["head_top"] = line[-1]
        else:  # (a joint sits where its cluster does)
            V["head_top"] = (line[-2], line[-1], past or 0.5)
    leg = float(np.mean([np.linalg.norm(rest[J[f"knee.{s}"]] - rest[J[f"hip.{s}"]]) +
                         np.linalg.norm(rest[J[f"ankle.{s}"]] - rest[J[f"knee.{s}"]]) for s in "lr"]))
    return J, V, leg


def _tell_sides(J: dict, V: dict, names: list[str], points, kr: dict, ks: dict, up: np.ndarray, leg: float,
                hang: bool, where: str) -> tuple[dict, dict]:
    """Swap ``J``'s and ``V``'s left and right where found by structure got them wrong: the arms on the
    legs' sides, then both by where the body faces; the rest and sampled points (``points()``) after."""
    toes = not any(k.startswith("toe.") for k in V)
    if np.median(np.sum(_flat(ks["shoulder.l"] - ks["shoulder.r"], up) * _flat(ks["hip.l"] - ks["hip.r"], up),
                        axis=-1)) < 0:
        _swap_sides(J, V, LIMBS["arm"])
        kr, ks = points()
    score = facing_score(ks, up, leg, toes)
    if hang:  # the rest pose: one vote
        score += float(np.clip(np.sum(facing_votes(kr, up, toes) * body_forward(kr, up)), -1.0, 1.0))
    if abs(score) < 0.05:
        score = sum(name_side(names[J[f"{p}.l"]]) - name_side(names[J[f"{p}.r"]])
                    for parts in LIMBS.values() for p in parts if f"{p}.l" in J)
    if score == 0:
        refuse(where, "cannot tell which way it faces (no toes, straight knees and elbows, no travel)")
    if score < 0:
        for parts in LIMBS.values():
            _swap_sides(J, V, parts)
        kr, ks = points()
    return kr, ks


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
        J, V, leg = _mapped(tree, named, rest, sample)
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
    hang = unit((kr["ankle.l"] + kr["ankle.r"] - kr["hip.l"] - kr["hip.r"]) / 2) @ up <= -HANGS
    if named is None:  # left and right: the arms on the legs' sides, then both by where the body faces
        kr, ks = _tell_sides(J, V, names, lambda: (raw(rest), raw(sample)), kr, ks, up, leg, hang, where)
    # forward: the rest pose's facing where it stands in it (the file's convention), else the motion's
    facing = body_forward(ks, up)
    fwd = (_snap(body_forward(kr, up), up) if hang else None)
    fwd = next(v for v in (fwd, _snap(facing.mean(axis=0), up), _snap(facing[0], up), _snap(np.roll(up, 1), up))
               if v is not None)
    left = np.cross(up, fwd)
    M = np.array([left, -fwd, up])
    length_unit = min(UNITS, key=lambda u: abs(np.log(leg * UNITS[u] / ADULT_LEG)))
    km = KeyMap(J, V, M, _axis_name(up), _axis_name(fwd), length_unit, leg, how=how)
    km.first = _bind_frames(km, P, leg)
    km.names = {k: names[shown.get(k, j)] for k, j in J.items()}
    km.names.update({k: f"({names[b]}, extended)" if f > 0 else f"(between {names[a]} and {names[b]})"
                     for k, (a, b, f) in V.items()})
    return km


def facing_votes(pts: dict, up: np.ndarray, toes: bool = True) -> np.ndarray:
    """(..., 3) where the body's limbs say it faces, across ``up`` (at most one vote each, not unit): the
    toes (where ``toes``), the knees where they bend, the elbows (bending the other way) at half weight;
    both sides alike, so it holds whichever side is called left."""
    v: np.ndarray | float = 0.0
    for s in "lr":
        if toes:
            v = v + _flat(pts[f"toe.{s}"] - pts[f"ankle.{s}"], up) / 2
        v = v + _bend_vote(pts[f"hip.{s}"], pts[f"knee.{s}"], pts[f"ankle.{s}"], up) / 2
        v = v - _bend_vote(pts[f"shoulder.{s}"], pts[f"elbow.{s}"], pts[f"wrist.{s}"], up) / 4
    return np.asarray(v)


def travel_votes(hips: np.ndarray, up: np.ndarray, leg: float) -> np.ndarray:
    """(F, 3) where the root travels across ``up`` over a twentieth of frames ``hips`` (F, 3) either side
    of each, a whole vote from half a leg's length ``leg`` on (a body mostly walks the way it faces)."""
    n = len(hips)
    k = max(1, n // 20)
    i = np.arange(n)
    d = hips[np.minimum(i + k, n - 1)] - hips[np.maximum(i - k, 0)]
    d = d - np.multiply.outer(d @ up, up)
    return unit(d) * np.clip(np.linalg.norm(d, axis=-1, keepdims=True) / (0.5 * leg), 0.0, 1.0)


def facing_score(pts: dict, up: np.ndarray, leg: float, toes: bool = True) -> float:
    """How much the motion ``pts`` (key point -> (F, 3)) says the side called left is the body's left:
    its votes (limbs, and the root's travel at half weight) against the facing its hip and shoulder
    lines give in each frame, averaged over the frames; positive: yes, negative: the other side."""
    votes = facing_votes(pts, up, toes) + 0.5 * travel_votes(pts["hips"], up, leg)
    return float(np.mean(np.sum(votes * body_forward(pts, up), axis=-1)))


def body_forward(pts: dict, up: np.ndarray) -> np.ndarray:
    """(..., 3) unit direction the body faces across ``up``: square to its hip and shoulder lines,
    taking the side called left as left (``left x up``)."""
    side = _flat(pts["hip.l"] - pts["hip.r"], up) + _flat(pts["shoulder.l"] - pts["shoulder.r"], up)
    return unit(np.cross(side, up))


def bend(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(..., 3) how far and which way joint ``b`` sits off the line from ``a`` to ``c``, as a fraction of
    the limb's length |ab| + |bc| (a knee bent 90 degrees: about 0.35; straight: 0)."""
    ac = c - a
    t = np.sum((b - a) * ac, axis=-1, keepdims=True) / np.maximum(np.sum(ac * ac, axis=-1, keepdims=True), 1e-24)
    limb = np.linalg.norm(b - a, axis=-1) + np.linalg.norm(c - b, axis=-1)
    return (b - a - t * ac) / np.maximum(limb, 1e-12)[..., None]


def _bend_vote(a, b, c, up) -> np.ndarray:
    """The way joint ``b`` bends across ``up``: nothing for a kink, a whole vote from ``BENT[1]`` on."""
    v = bend(a, b, c)
    weight = np.clip((np.linalg.norm(v, axis=-1, keepdims=True) - BENT[0]) / (BENT[1] - BENT[0]), 0.0, 1.0)
    return _flat(v, up) * weight


def _swap_sides(J: dict, V: dict, parts: tuple) -> None:
    """Left and right of a limb's key points swapped."""
    for part in parts:
        for d in (J, V):
            x, y = d.pop(f"{part}.l", None), d.pop(f"{part}.r", None)
            if y is not None:
                d[f"{part}.l"] = y
            if x is not None:
                d[f"{part}.r"] = x


def name_side(name: str) -> int:
    """+1 for a left-looking name, -1 for a right one, 0 when it does not say."""
    for side, pat in _SIDES.items():
        if pat.search(name):
            return side
    return 0


# LeftArm, leftEye, lHand, LThumb, CC_Base_L_Thigh, l_elbow, hand.L, upperarm_l (but not LowerBack, hip)
_SIDES = {sign: re.compile(rf"(?i:{full}|(?:^|[_.:| -]){s}(?:[_.:| -]|$))|^[{s}{s.upper()}](?=[A-Z])")
          for sign, s, full in ((1, "l", "left"), (-1, "r", "right"))}


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
