"""Skeletons mapped by their structure, not their joint names: the fixture CMU captures as they
are and rewritten by the test (names, child order, axes, units, a bind frame, extra joints, no end
sites, no root travel, another root, channel orders, frame rates) must retarget onto the mannequin
with its limbs along the capture's; skeletons that are not human are refused in one line."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from synthact.errors import BadData
from synthact.render.bvh import euler, parse_bvh, write_bvh
from synthact.render.mannequin import INDEX, build_skeleton, sample_proportions
from synthact.render.mocap import SEGMENTS, key_map, retarget, sample_positions
from synthact.render.motion import rot
from synthact.render.vectors import align

from .conftest import records_of

CMU = ("01_01", "02_01", "05_06", "13_26", "13_32", "13_39", "13_40", "13_41", "13_42")
_AX = {"X": 0, "Y": 1, "Z": 2}


@pytest.fixture(scope="module")
def mocap(fixtures):
    return fixtures / "mocap/cmu_mb"


# ------------------------------------------------------------------ today's output, kept
# key point sums of 02_01 (12 frames at 25 fps from 0.3 of the way, as below) computed with the
# named cgspeed map before skeletons were read by structure: (plain, mirrored)
TODAY_02_01 = {"hips": (478.73806157290295, 235.35885547824313), "elbow.l": (539.014020454165, 283.8592116958802),
               "head_top": (572.873183164854, 332.9532342443589), "toe.r": (249.91521781273616, 2.5922044696838578),
               "hand_tip.l": (494.62932893816503, 225.32706799386955)}


def test_cgspeed_captures_map_by_structure_exactly_as_by_their_names(mocap):
    for mirror in (False, True):
        keys, _ = sample_positions(str(mocap / "02_01.bvh"), None, 12, 25, 0.3, 1.0, mirror, None)
        for k, sums in TODAY_02_01.items():
            assert keys[k].sum() == pytest.approx(sums[mirror], rel=1e-12, abs=1e-9), (k, mirror)
    skel = build_skeleton(sample_proportions(np.random.default_rng(0)))
    for name in CMU:
        f = str(mocap / f"{name}.bvh")
        frames = [0, len(parse_bvh(Path(f)).motion) - 1]
        for mirror in (False, True):
            ours, _ = sample_positions(f, frames, 12, 25, 0.3, 1.0, mirror, None)
            named, _ = sample_positions(f, frames, 12, 25, 0.3, 1.0, mirror, "cgspeed")
            for k in named:
                np.testing.assert_array_equal(ours[k], named[k], err_msg=f"{name} {k}")
        a, b = retarget(skel, ours), retarget(skel, named)
        np.testing.assert_array_equal(a.heads, b.heads)
        km = key_map(f, Path(f).stat().st_mtime_ns, None)
        assert (km.up, km.forward, km.unit) == ("+Y", "+Z", "cmu") and 1.5 < km.stature < 2.0, name
        assert km.names["elbow.r"] == "RightForeArm" and km.names["neck"] == "Neck", km.names_line()
        # CMU's cgspeed files that open with their T-pose frame have it dropped
        assert km.first == (0 if name in ("02_01", "05_06") else 1), name


# ------------------------------------------------------------------ captures rewritten by the test
@dataclass
class Capture:
    names: list
    parents: list
    offsets: np.ndarray     # (J, 3)
    ends: list
    L: np.ndarray           # (F, J, 3, 3) local rotations (end sites: identity)
    t: np.ndarray           # (F, 3) root translation
    frame_time: float
    order: str = "ZYX"
    root_moves: bool = True

    def write(self, path: Path) -> Path:
        chans, cols = [], []
        for j, p in enumerate(self.parents):
            if self.ends[j]:
                chans.append([])
                continue
            pos = [f"{a}position" for a in "XYZ"] if p < 0 and self.root_moves else []
            chans.append(pos + [f"{a}rotation" for a in self.order])
            if pos:
                cols.append(self.t)
            cols.append(euler(self.L[:, j], self.order))
        write_bvh(path, self.names, self.parents, self.offsets, chans, np.concatenate(cols, axis=1),
                  self.frame_time, self.ends)
        return path


def read(path: Path) -> Capture:
    b = parse_bvh(path)
    F, J = len(b.motion), len(b.names)
    L = np.tile(np.eye(3), (F, J, 1, 1))
    t = np.zeros((F, 3))
    col = 0
    for j, chans in enumerate(b.channels):
        for c in chans:
            v = b.motion[:, col]
            col += 1
            if c.endswith("position"):
                t[:, _AX[c[0]]] = v
            else:
                L[:, j] = L[:, j] @ rot(_AX[c[0]], v)
    return Capture(list(b.names), list(b.parents), b.offsets.copy(), list(b.ends), L, t, b.frame_time)


def _reorder(c: Capture, order: list[int], names: list[str] | None = None) -> Capture:
    """The same skeleton with its joints listed in ``order`` (parents first)."""
    new = {j: i for i, j in enumerate(order)}
    parents = [new[c.parents[j]] if c.parents[j] >= 0 else -1 for j in order]
    return Capture(names or [c.names[j] for j in order], parents,
                   c.offsets[order], [c.ends[j] for j in order], c.L[:, order], c.t, c.frame_time, c.order,
                   c.root_moves)


def _depth_first(c: Capture, rng=None) -> list[int]:
    """Joints in depth-first order from the root (children shuffled by ``rng`` when given)."""
    kids: dict[int, list[int]] = {}
    for j, p in enumerate(c.parents):
        kids.setdefault(p, []).append(j)
    order = []

    def visit(j):
        order.append(j)
        ks = list(kids.get(j, []))
        if rng is not None:
            rng.shuffle(ks)
        for k in ks:
            visit(k)
    visit(kids[-1][0])
    return order


def renamed_shuffled(c: Capture, rng) -> Capture:
    order = _depth_first(c, rng)
    return _reorder(c, order, [f"J{i:03d}" for i in range(len(order))])


def rotated(c: Capture, R: np.ndarray, order: str) -> Capture:
    """The whole capture turned by ``R`` (every joint's rotation conjugated), channels in ``order``."""
    return replace(c, offsets=c.offsets @ R.T, L=R @ c.L @ R.T, t=c.t @ R.T, order=order)


def scaled(c: Capture, f: float) -> Capture:
    return replace(c, offsets=c.offsets * f, t=c.t * f)


def bind_frame_first(c: Capture) -> Capture:
    """A rest-pose frame (every rotation zero: CMU's T-pose) recorded before the motion."""
    L = np.concatenate([np.tile(np.eye(3), (1, len(c.names), 1, 1)), c.L])
    return replace(c, L=L, t=np.concatenate([c.t[:1], c.t]))


def _insert(c: Capture, parent: int, name: str, offset, L=None, end=False) -> Capture:
    F = len(c.L)
    L = np.tile(np.eye(3), (F, 1, 1)) if L is None else L
    return Capture(c.names + [name], c.parents + [parent], np.vstack([c.offsets, offset]), c.ends + [end],
                   np.concatenate([c.L, L[:, None]], axis=1), c.t, c.frame_time, c.order, c.root_moves)


def _parents_first(c: Capture) -> Capture:
    return _reorder(c, _depth_first(c))


def with_helpers(c: Capture) -> Capture:
    """Twist joints inside the upper arms (turning about the bone), twist leaves on the thighs,
    four more fingers of three joints on each hand, a jaw and eyes on the head."""
    i = c.names.index
    F = len(c.L)
    for s, side in (("Left", 1.0), ("Right", -1.0)):
        fa = i(f"{s}ForeArm")
        o = c.offsets[fa].copy()
        axis = o / np.linalg.norm(o)
        ang = np.radians(40 * np.sin(np.linspace(0, 6, F)))
        K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        T = np.eye(3) + np.sin(ang)[:, None, None] * K + (1 - np.cos(ang))[:, None, None] * (K @ K)
        c = _insert(c, i(f"{s}Arm"), f"{s}ArmTwist", o / 2, T)
        c.parents[fa] = len(c.names) - 1
        c.offsets[fa] = o / 2
        c.L[:, fa] = np.swapaxes(T, -1, -2) @ c.L[:, fa]     # the forearm keeps its world rotation
        c = _insert(c, i(f"{s}UpLeg"), f"{s}UpLegTwist", c.offsets[i(f"{s}Leg")] * 0.4)
        c = _insert(c, len(c.names) - 1, f"{s}UpLegTwist_end", np.array([0.0, -0.3, 0.0]), end=True)
        base = i(f"{s}FingerBase")
        idx = next(j for j, p in enumerate(c.parents) if p == base and "Thumb" not in c.names[j])
        d = c.offsets[idx]
        for k, (deg, n, length) in enumerate(((-5, 3, 1.1), (-10, 3, 1.0), (-15, 2, 0.8), (30, 2, 0.7))):
            R = rot(1, np.array(deg * side))
            parent = base
            for m in range(n):
                curl = rot(2, np.full(F, -20.0 * side))
                c = _insert(c, parent, f"{s}Finger{k}_{m}", (R @ d) * length * (1.0 if m == 0 else 0.5), curl)
                parent = len(c.names) - 1
    head = i("Head")
    c = _insert(c, head, "Jaw", np.array([0.0, -0.6, 0.7]), rot(0, np.full(F, 10.0)))
    c = _insert(c, len(c.names) - 1, "Jaw_end", np.array([0.0, -0.2, 0.5]), end=True)
    for s, x in (("L", 0.3), ("R", -0.3)):
        c = _insert(c, head, f"{s}Eye", np.array([x, -0.2, 0.6]))
    return _parents_first(c)


def without_end_sites(c: Capture) -> Capture:
    keep = [j for j in range(len(c.names)) if not c.ends[j]]
    return _reorder(c, keep)


def without_root_travel(c: Capture) -> Capture:
    return replace(c, root_moves=False)


def floor_root(c: Capture) -> Capture:
    """A root on the floor carrying the travel, the pelvis a child turning in place."""
    up = np.array([0.0, 15.0, 0.0])
    F = len(c.L)
    moved = Capture(["Reference"] + c.names, [-1] + [p + 1 for p in c.parents],
                    np.vstack([np.zeros(3), c.offsets]),
                    [False] + c.ends, np.concatenate([np.tile(np.eye(3), (F, 1, 1, 1)), c.L], axis=1),
                    c.t - up, c.frame_time, c.order, c.root_moves)
    moved.offsets[1] = c.offsets[0] + up
    return moved


def resampled(c: Capture, fps: float) -> Capture:
    """The capture at another frame rate (rotations interpolated as angles, unwrapped)."""
    src = np.arange(len(c.L)) * c.frame_time
    dst = np.arange(0.0, src[-1], 1.0 / fps)
    ang = np.unwrap(np.radians(euler(c.L, "ZYX")), axis=0)
    new = np.empty((len(dst),) + ang.shape[1:])
    for j in range(ang.shape[1]):
        for a in range(3):
            new[:, j, a] = np.interp(dst, src, ang[:, j, a])
    ang = np.degrees(new)
    L = rot(2, ang[..., 0]) @ rot(1, ang[..., 1]) @ rot(0, ang[..., 2])
    t = np.stack([np.interp(dst, src, c.t[:, a]) for a in range(3)], -1)
    return replace(c, L=L, t=t, frame_time=1.0 / fps)


Y_TO_Z = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])   # +90 degrees about X: up Y becomes up Z
TURN = np.array([[0, 0, 1.0], [0, 1.0, 0], [-1.0, 0, 0]])      # +90 degrees about Y: facing +Z becomes +X

REWRITES = {  # name -> (rewrite, expected up, forward, unit)
    "as it is": (lambda c, rng: c, "+Y", "+Z", "cmu"),
    "renamed J000.. in shuffled child order": (renamed_shuffled, "+Y", "+Z", "cmu"),
    "Z-up, XYZ channels": (lambda c, rng: rotated(c, Y_TO_Z, "XYZ"), "+Z", "-Y", "cmu"),
    "facing +X, YXZ channels": (lambda c, rng: rotated(c, TURN, "YXZ"), "+Y", "+X", "cmu"),
    "centimetres": (lambda c, rng: scaled(c, 100 * 0.0254 / 0.45), "+Y", "+Z", "cm"),
    "inches": (lambda c, rng: scaled(c, 1 / 0.45), "+Y", "+Z", "inch"),
    "metres, Z-up": (lambda c, rng: rotated(scaled(c, 0.0254 / 0.45), Y_TO_Z, "ZXY"), "+Z", "-Y", "m"),
    "a T-pose frame first": (lambda c, rng: bind_frame_first(c), "+Y", "+Z", "cmu"),
    "twist, finger and face joints": (lambda c, rng: with_helpers(c), "+Y", "+Z", "cmu"),
    "no end sites": (lambda c, rng: without_end_sites(c), "+Y", "+Z", "cmu"),
    "no root translation": (lambda c, rng: without_root_travel(c), "+Y", "+Z", "cmu"),
    "root on the floor": (lambda c, rng: floor_root(c), "+Y", "+Z", "cmu"),
    "24 fps": (lambda c, rng: resampled(c, 24), "+Y", "+Z", "cmu"),
    "240 fps": (lambda c, rng: resampled(c, 240), "+Y", "+Z", "cmu"),
    "all of them": (lambda c, rng: renamed_shuffled(rotated(scaled(without_end_sites(with_helpers(
        bind_frame_first(floor_root(c)))), 2.54 * 100 / 0.45 / 100), Y_TO_Z, "XZY"), rng), "+Z", "-Y", "cm"),
}


def _directions(skel, posed) -> dict[str, np.ndarray]:
    rest = skel.tails - skel.heads
    rest /= np.linalg.norm(rest, axis=1, keepdims=True)
    return {b: np.einsum("nij,j->ni", posed.world[:, INDEX[b]], rest[INDEX[b]]) for b in SEGMENTS}


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.mark.slow
@pytest.mark.parametrize("how", REWRITES)
@pytest.mark.parametrize("name", ["02_01", "13_26"])
def test_a_rewritten_capture_retargets_with_its_limbs_along_the_captures(mocap, tmp_path, name, how):
    rewrite, up, forward, unit = REWRITES[how]
    original = mocap / f"{name}.bvh"
    path = rewrite(read(original), np.random.default_rng(0)).write(tmp_path / "rewritten.bvh")
    km = key_map(str(path), path.stat().st_mtime_ns, None)
    assert (km.up, km.forward, km.unit) == (up, forward, unit), km
    first = key_map(str(original), original.stat().st_mtime_ns, None).first
    assert km.first == first + (how in ("a T-pose frame first", "all of them")) + (how == "240 fps" and first > 0)
    # the same moments: from the first frame of motion on, 0.4 s in 12 frames
    prepended = how in ("a T-pose frame first", "all of them")
    ratio = parse_bvh(path).frame_time / parse_bvh(original).frame_time
    lo = km.first - 1 if prepended else round(km.first * ratio)
    truth, _ = sample_positions(str(original), [lo, len(parse_bvh(original).motion) - 1], 12, 30, 0.0, 1.0, False,
                                "cgspeed")
    keys, info = sample_positions(str(path), None, 12, 30, 0.0, 1.0, False, None)
    assert info["capture_fps"] == pytest.approx(1 / parse_bvh(path).frame_time, rel=1e-3)
    skel = build_skeleton(sample_proportions(np.random.default_rng(3)))
    ours = _directions(skel, retarget(skel, keys, str(path)))
    for bone, (a, z) in SEGMENTS.items():
        if how == "no end sites" and bone.startswith("hand") and name == "02_01":
            continue  # (02_01's fingers end in zero-length end sites: nothing lost)
        cos = np.sum(_unit(ours[bone]) * _unit(truth[z] - truth[a]), axis=-1)
        assert cos.min() > 0.99, (bone, cos.min(), km.names_line())


# ------------------------------------------------------------------ not human
def _chain_bvh(path: Path, tree: dict) -> Path:
    """A BVH from ``{name: (parent, offset)}`` (parents listed first), swaying a little."""
    names = list(tree)
    parents = [names.index(p) if p else -1 for p, _ in tree.values()]
    offsets = np.array([o for _, o in tree.values()], float)
    ends = [n.endswith("_end") for n in names]
    chans = [[] if e else (["Xposition", "Yposition", "Zposition"] if p < 0 else []) + ["Zrotation", "Xrotation",
                                                                                       "Yrotation"]
             for p, e in zip(parents, ends, strict=True)]
    F = 8
    cols = []
    for j, c in enumerate(chans):
        for k, ch in enumerate(c):
            cols.append(np.zeros(F) if "position" in ch else 5 * np.sin(np.arange(F) / 3 + j + k))
    write_bvh(path, names, parents, offsets, chans, np.stack(cols, 1), 1 / 30, ends)
    return path


def quadruped() -> dict:
    t = {"pelvis": (None, (0, 60, 0)), "tail1": ("pelvis", (0, 0, -15)), "tail2": ("tail1", (0, -5, -15)),
         "tail_end": ("tail2", (0, -5, -15)), "spine1": ("pelvis", (0, 2, 25)), "spine2": ("spine1", (0, 2, 25)),
         "chest": ("spine2", (0, 0, 20)), "neck": ("chest", (0, 15, 15)), "head": ("neck", (0, 10, 10)),
         "head_end": ("head", (0, 0, 15))}
    for s, x in (("l", 10), ("r", -10)):
        for root, name in (("pelvis", "hind"), ("chest", "front")):
            t.update({f"{name}_{s}": (root, (x, -5, 0)), f"{name}_knee_{s}": (f"{name}_{s}", (0, -25, 0)),
                      f"{name}_ankle_{s}": (f"{name}_knee_{s}", (0, -25, 0)),
                      f"{name}_paw_{s}": (f"{name}_ankle_{s}", (0, -5, 5)),
                      f"{name}_paw_{s}_end": (f"{name}_paw_{s}", (0, 0, 5))})
    order = sorted(t, key=lambda n: _depth(t, n))
    return {n: t[n] for n in order}


def _depth(t, n):
    return 0 if t[n][0] is None else 1 + _depth(t, t[n][0])


def test_a_skeleton_that_is_not_human_is_refused_in_one_line(tmp_path):
    snake = {"s0": (None, (0, 0, 0))}
    snake.update({f"s{j}": (f"s{j - 1}", (0, 0, 10)) for j in range(1, 14)})
    snake["s13_end"] = ("s13", (0, 0, 5))
    for what, tree in (("snake", snake), ("quadruped", quadruped())):
        path = _chain_bvh(tmp_path / f"{what}.bvh", tree)
        with pytest.raises(BadData) as err:
            sample_positions(str(path), None, 4, 25, 0.0, 1.0, False, None)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"{path}: not mapped as a human skeleton: "), msg


# ------------------------------------------------------------------ synthact motions check
@pytest.mark.slow
def test_motions_check_prints_each_map_and_draws_a_contact_sheet(mocap, tmp_path):
    from synthact import contract as C

    from .conftest import run_cli
    zup = rotated(scaled(read(mocap / "02_01.bvh"), 100 * 0.0254 / 0.45), Y_TO_Z, "XYZ")
    zup = renamed_shuffled(bind_frame_first(zup), np.random.default_rng(1)).write(tmp_path / "zup_cm.bvh")
    snake = {"s0": (None, (0, 0, 0))}
    snake.update({f"s{j}": (f"s{j - 1}", (0, 0, 10)) for j in range(1, 6)})
    snake = _chain_bvh(tmp_path / "snake.bvh", snake)
    sheet = tmp_path / "sheet.png"
    r = run_cli("synthact", "motions", "check", str(mocap / "13_26.bvh"), str(zup), str(snake), "--sheet", str(sheet),
                "--size", "64x48", "--frames", "3", "--seconds", "2")
    assert r.returncode == 1, r.stderr                                     # one capture not mapped
    assert r.stderr.strip().splitlines() == [f"not mapped: {snake}: not mapped as a human skeleton: "
                                             f"1 limb end(s), a human has 5 (two feet, two hands, a head)"]
    out = r.stdout
    assert (f"{mocap / '13_26.bvh'}: 120 fps, 3028 frames (1 bind frame dropped), 25.22 s; 31 joints; up +Y, "
            f"facing +Z, unit cmu (stature 1.81 m); mapped by structure") in out
    assert "left:  hip=LeftUpLeg shoulder=LeftArm elbow=LeftForeArm wrist=LeftHand" in out
    assert f"{zup}: 120.005 fps, 343 frames (1 bind frame dropped), 2.85 s; 31 joints; up +Z, facing -Y, unit cm" in out
    assert "2 of 3 captures mapped" in out and f"contact sheet: {sheet}" in out
    img = C.read_image(sheet)
    assert img.shape[0] == 2 * (48 + 2) and img.shape[1] == 3 * 64               # a row per mapped capture
    assert (img.max(axis=-1) > 20).mean() > 0.01


# ------------------------------------------------------------------ other rigs, driven by a capture
DUMP_RIG = """
import sys, json, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=sys.argv[1])
arm = [o for o in bpy.data.objects if o.type == "ARMATURE"][0]
bones = list(arm.data.bones)
json.dump({"names": [b.name for b in bones], "parents": [bones.index(b.parent) if b.parent else -1 for b in bones],
           "heads": [list(arm.matrix_world @ b.head_local) for b in bones],
           "tails": [list(arm.matrix_world @ b.tail_local) for b in bones]}, open(sys.argv[2], "w"))
"""


def _gltf_rig(glb: Path, tmp_path: Path):
    """The glTF body's skeleton (Unreal names: a root on the floor, twist-free, 5 fingers of 4)."""
    import json
    import subprocess
    import sys

    from synthact.render.skinned import SkinnedBody, normalise
    out = tmp_path / "rig.json"
    r = subprocess.run([sys.executable, "-c", DUMP_RIG, str(glb), str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(out.read_text())
    heads = np.array(d["heads"])
    n = len(heads)
    return normalise(SkinnedBody(heads.copy(), [], d["names"], np.array(d["parents"]), heads,
                                 np.array(d["tails"]), np.arange(n)[:, None], np.ones((n, 1))))


def rig_bvh(body, skel, posed, path: Path, fps: float = 30.0) -> Path:
    """``body``'s own skeleton following ``posed`` (see bodies.pose_joints), written as a Y-up BVH:
    every joint turns, joints under the root's first child slide with it (position channels)."""
    from synthact.render.bvh import TO_OURS
    from synthact.render.skinned import pose_joints
    D, P = pose_joints(body, skel, posed)
    T = TO_OURS
    heads = body.heads @ T        # file axes (ours = T @ file)
    P = P @ T
    D = np.swapaxes(T, 0, 1) @ D @ T
    parents = [int(p) for p in body.parents]
    offsets = np.array([heads[j] - heads[p] if p >= 0 else heads[j] for j, p in enumerate(parents)])
    chans, cols = [], []
    for j, p in enumerate(parents):
        slides = p < 0 or parents[p] < 0           # the root and the pelvis under it
        chans.append(([f"{a}position" for a in "XYZ"] if slides else []) + ["Zrotation", "Xrotation", "Yrotation"])
        L = D[:, j] if p < 0 else np.swapaxes(D[:, p], -1, -2) @ D[:, j]
        if slides:
            t = P[:, j] - offsets[j] if p < 0 else np.einsum("nji,nj->ni", D[:, p], P[:, j] - P[:, p]) - offsets[j]
            cols.append(t)
        cols.append(euler(L, "ZXY"))
    write_bvh(path, body.names, parents, offsets, chans, np.concatenate(cols, axis=1), 1 / fps)
    return path


RIG_NAMES = {  # what the structure must find on each rig: key point -> joint
    "gltf": {"hips": "pelvis", "hip.l": "thigh_l", "knee.l": "calf_l", "ankle.r": "foot_r", "toe.l": "ball_l",
             "spine_low": "spine_01", "spine_mid": "spine_02", "neck": "neck_01", "head": "head",
             "head_top": "head_leaf",
             "shoulder.l": "upperarm_l", "elbow.r": "lowerarm_r", "wrist.l": "hand_l"},
    "makehuman": {"hips": "Hips", "hip.l": "LeftUpLeg", "knee.l": "LeftLeg", "ankle.r": "RightFoot",
                  "spine_low": "LowerBack", "spine_mid": "Spine",
                  "shoulder.l": "LeftArm", "elbow.r": "RightForeArm", "wrist.l": "LeftHand"},
}


@pytest.mark.slow
@pytest.mark.parametrize("rig", ["gltf", "makehuman"])
def test_other_rigs_driven_by_a_capture_map_by_structure(mocap, fixtures, tmp_path, rig):
    from synthact.render.skinned import makehuman_body
    keys, _ = sample_positions(str(mocap / "02_01.bvh"), None, 16, 30, 0.2, 1.0, False, None)
    skel = build_skeleton(sample_proportions(np.random.default_rng(1)))
    posed = retarget(skel, keys)
    body = (_gltf_rig(fixtures / "bodies/human-male.glb", tmp_path) if rig == "gltf" else
            makehuman_body({"gender": 0.7, "age": 0.6, "muscle": 0.5, "weight": 0.5, "height": 0.5,
                            "proportions": 0.5}))
    path = rig_bvh(body, skel, posed, tmp_path / f"{rig}.bvh")
    km = key_map(str(path), path.stat().st_mtime_ns, None)
    assert (km.up, km.forward, km.unit) == ("+Y", "+Z", "m"), km.names_line()
    for k, name in RIG_NAMES[rig].items():
        assert km.names[k] == name, (k, km.names_line())
    again, _ = sample_positions(str(path), None, 16, 30, 0.0, 1.0, False, None)
    theirs = _directions(skel, retarget(skel, again, str(path)))
    ours = _directions(skel, posed)
    for bone in ("upper_arm.l", "forearm.r", "thigh.l", "shin.r", "spine", "chest", "foot.l"):
        cos = np.sum(_unit(ours[bone]) * _unit(theirs[bone]), axis=-1)
        assert cos.min() > 0.99, (bone, cos.min(), km.names_line())


# ------------------------------------------------------------------ FBX captures
TO_FBX = """
import sys, bpy
light, src, out = sys.argv[-3:]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=src, update_scene_fps=True, update_scene_duration=True)
if light == "light":
    bpy.ops.object.light_add(type="POINT")
bpy.ops.export_scene.fbx(filepath=out, object_types={"ARMATURE", "LIGHT"}, bake_anim=True, add_leaf_bones=False,
                         bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False)
"""


def to_fbx(bvh: Path, fbx: Path, light: bool = False) -> Path:
    """The capture as an FBX armature with an action (no mesh), written by Blender; with a light
    (which bpy 5.0.1's own FBX importer cannot read back)."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", TO_FBX, "light" if light else "-", str(bvh), str(fbx)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and fbx.exists(), r.stderr[-2000:]
    return fbx


@pytest.mark.slow
@pytest.mark.parametrize("rig", ["cmu", "gltf"])
def test_an_fbx_capture_maps_and_moves_like_its_bvh(mocap, fixtures, tmp_path, rig):
    if rig == "cmu":
        bvh = mocap / "02_01.bvh"
    else:  # the glTF body's Unreal rig driven by the walk
        keys, _ = sample_positions(str(mocap / "02_01.bvh"), None, 30, 30, 0.2, 1.0, False, None)
        skel = build_skeleton(sample_proportions(np.random.default_rng(1)))
        bvh = rig_bvh(_gltf_rig(fixtures / "bodies/human-male.glb", tmp_path), skel, retarget(skel, keys),
                      tmp_path / "gltf.bvh")
    fbx = to_fbx(bvh, tmp_path / "capture.fbx")
    a = key_map(str(bvh), bvh.stat().st_mtime_ns, None)
    b = key_map(str(fbx), fbx.stat().st_mtime_ns, None)
    assert (b.up, b.forward) == ("+Z", "-Y") and b.unit == a.unit and b.first == a.first
    assert {k: v for k, v in b.names.items()} == a.names
    want, _ = sample_positions(str(bvh), None, 12, 30, 0.0, 1.0, False, None)
    got, info = sample_positions(str(fbx), None, 12, 30, 0.0, 1.0, False, None)
    assert info["capture_fps"] == pytest.approx(1 / parse_bvh(bvh).frame_time, rel=1e-3)
    skel = build_skeleton(sample_proportions(np.random.default_rng(3)))
    ours, theirs = _directions(skel, retarget(skel, got)), _directions(skel, retarget(skel, want))
    for bone in SEGMENTS:
        cos = np.sum(_unit(ours[bone]) * _unit(theirs[bone]), axis=-1)
        assert cos.min() > 0.99, (bone, cos.min())


@pytest.mark.slow
def test_an_fbx_capture_renders_through_motions(mocap, tmp_path):
    import yaml

    from synthact import contract as C
    from synthact.render.jobs import RenderJob, render_batch
    to_fbx(mocap / "13_32.bvh", tmp_path / "jump.fbx", light=True)
    (tmp_path / "motions.yaml").write_text(yaml.safe_dump({"motions": {"jump": ["jump.fbx"],
                                                                       "walk": [str(mocap / "02_01.bvh")]}}))
    out = tmp_path / "out"
    s = render_batch(RenderJob(out=out, classes="jump,walk", per_class=1, frames=3, size=(64, 48),
                               motions=str(tmp_path / "motions.yaml")), progress=False)
    assert s.ok, s.failures
    for rec in records_of(out):
        assert rec["motion"]["source"] == "bvh" and rec["motion_used"]["capture_fps"] > 100
        img = C.read_image(C.clip_dir(out, rec["clip"]) / C.img_name(2))
        assert (img.max(axis=-1) > 20).mean() > 0.01, rec["clip"]


# ------------------------------------------------------------------ rigs whose rest pose or helper joints mislead
def _below(c: Capture, j: int) -> list[int]:
    """The joints under ``j`` (parents are listed first)."""
    out = [j]
    for k, p in enumerate(c.parents):
        if p in out:
            out.append(k)
    return out[1:]


def rest_turned(c: Capture, joint: str, Q: np.ndarray) -> Capture:
    """The same motion, with ``joint``'s zero pose (and so everything under it) turned by ``Q``."""
    j = c.names.index(joint)
    below = _below(c, j)
    offsets, L = c.offsets.copy(), c.L.copy()
    offsets[below] = offsets[below] @ Q.T
    L[:, below] = Q @ L[:, below] @ Q.T
    L[:, j] = L[:, j] @ Q.T
    return replace(c, offsets=offsets, L=L)


# CMU's joints (sides taken off) in other families' names: {0} their side prefix, {1} the side in words
FAMILIES = {
    "cc": ({"Reference": "CC_Base_BoneRoot", "Hips": "CC_Base_Hip", "LowerBack": "CC_Base_Waist",
            "Spine": "CC_Base_Spine01", "Spine1": "CC_Base_Spine02", "Neck": "CC_Base_NeckRoot",
            "Neck1": "CC_Base_NeckTwist01", "Head": "CC_Base_Head", "HipJoint": "CC_Base_{0}_Pelvis",
            "UpLeg": "CC_Base_{0}_Thigh", "Leg": "CC_Base_{0}_Calf", "Foot": "CC_Base_{0}_Foot",
            "ToeBase": "CC_Base_{0}_ToeBase", "Shoulder": "CC_Base_{0}_Clavicle", "Arm": "CC_Base_{0}_Upperarm",
            "ForeArm": "CC_Base_{0}_Forearm", "Hand": "CC_Base_{0}_Hand", "FingerBase": "CC_Base_{0}_Palm",
            "HandIndex1": "CC_Base_{0}_Index1", "Thumb": "CC_Base_{0}_Thumb1", "Eye": "CC_Base_{0}_Eye"}, "LR"),
    "daz": ({"Hips": "hip", "LowerBack": "abdomen", "Spine": "chest", "Spine1": "chestUpper", "Neck": "neck",
             "Neck1": "neckUpper", "Head": "head", "HipJoint": "{0}Buttock", "UpLeg": "{0}Thigh", "Leg": "{0}Shin",
             "Foot": "{0}Foot", "ToeBase": "{0}Toe", "Shoulder": "{0}Collar", "Arm": "{0}Shldr",
             "ForeArm": "{0}ForeArm", "Hand": "{0}Hand", "FingerBase": "{0}Carpal", "HandIndex1": "{0}Index1",
             "Thumb": "{0}Thumb1", "Eye": "{1}Eye"}, "lr"),
    "3dsmax": ({"Hips": "Hips", "LowerBack": "Chest", "Spine": "Chest2", "Spine1": "Chest3", "Neck": "Neck",
                "Neck1": "Neck1", "Head": "Head", "HipJoint": "{0}HipBase", "UpLeg": "{0}Hip", "Leg": "{0}Knee",
                "Foot": "{0}Ankle", "ToeBase": "{0}Toe", "Shoulder": "{0}Collar", "Arm": "{0}Shoulder",
                "ForeArm": "{0}Elbow", "Hand": "{0}Wrist", "FingerBase": "{0}Palm", "HandIndex1": "{0}Finger1",
                "Thumb": "{0}Thumb"}, ("Left", "Right")),
}


def family_named(c: Capture, family: str, eyes: bool) -> Capture:
    """CMU's skeleton as a ``family`` export: its names, no end sites, eyes (a left/right pair) under the head
    where ``eyes``, forward of it, beside it and higher than it in the zero pose (as DAZ's and CC's)."""
    import re
    table, sides = FAMILIES[family]
    c = without_end_sites(c)
    if eyes:
        F = len(c.L)
        for side, x in zip(sides, (1.0, -1.0), strict=True):
            c = _insert(c, c.names.index("Head"), f"{'Left' if side == sides[0] else 'Right'}Eye",
                        np.array([0.55 * x, 1.2, 1.2]), rot(1, np.full(F, 5.0)))
        c = _parents_first(c)
    names = []
    for n in c.names:
        m = re.fullmatch(r"(Left|Right|L|R)([A-Z]\w*)", n) if n not in table else None
        if m:
            i = 0 if m.group(1).startswith("L") else 1
            n = table[m.group(2)].format(sides[i], ("left", "right")[i])
        names.append(table.get(n, n))
    return replace(c, names=names)


def cc_like(c: Capture) -> Capture:
    """A Character Creator export: CC names, a root on the floor, eyes, 60 fps, and a zero pose with the
    legs pointing up (each thigh turned half round, the toes along the shins and a one-degree kink in the
    knees); the motion the same."""
    c = family_named(floor_root(resampled(c, 60)), "cc", eyes=True)
    turn, kink = rot(0, np.array(180.0)), rot(0, np.array(1.0))
    for s in "LR":
        c = rest_turned(c, f"CC_Base_{s}_Thigh", turn)
        c = rest_turned(c, f"CC_Base_{s}_Calf", kink)
        foot, toe = c.names.index(f"CC_Base_{s}_Foot"), c.names.index(f"CC_Base_{s}_ToeBase")
        c = rest_turned(c, f"CC_Base_{s}_Foot", align(_unit(c.offsets[toe]), _unit(c.offsets[foot])))
    return c


def _truth(mocap: Path, n: int = 12) -> dict:
    """02_01's key points by its names (cgspeed), 0.4 s from its start in ``n`` frames."""
    f = mocap / "02_01.bvh"
    keys, _ = sample_positions(str(f), [0, len(parse_bvh(f).motion) - 1], n, 30, 0.0, 1.0, False, "cgspeed")
    return keys


def test_a_character_creator_rig_with_its_legs_up_in_the_zero_pose_faces_the_way_it_walks(mocap, tmp_path):
    from synthact.render.bvh import load_bvh
    from synthact.render.keypoints import body_forward, rest_pose
    path = cc_like(read(mocap / "02_01.bvh")).write(tmp_path / "cc.bvh")
    b, _ = load_bvh(str(path), path.stat().st_mtime_ns)
    rest = rest_pose(np.array(b.parents), b.offsets)
    i = b.names.index
    for s in "LR":  # the rig is what it claims: legs along +up with every rotation zero, toes along them
        leg = _unit(rest[i(f"CC_Base_{s}_Foot")] - rest[i(f"CC_Base_{s}_Thigh")])
        toe = _unit(rest[i(f"CC_Base_{s}_ToeBase")] - rest[i(f"CC_Base_{s}_Foot")])
        assert leg[1] > 0.9 and toe[1] > 0.9, (leg, toe)
    assert b.fps == pytest.approx(60, rel=1e-3)
    for spec in (None, "cc"):
        km = key_map(str(path), path.stat().st_mtime_ns, spec)
        assert km.up == "+Y", km
        for k, name in (("hip.l", "CC_Base_L_Thigh"), ("knee.r", "CC_Base_R_Calf"),
                        ("shoulder.l", "CC_Base_L_Upperarm"), ("wrist.r", "CC_Base_R_Hand"), ("head", "CC_Base_Head")):
            assert km.names[k] == name, (spec, k, km.names_line())
        keys, _ = sample_positions(str(path), None, 60, 30, 0.0, 1.0, False, spec)
        travel = (keys["hips"][-1] - keys["hips"][0]) * [1, 1, 0]
        facing = body_forward(keys, np.array([0.0, 0.0, 1.0]))
        assert np.linalg.norm(travel) > 0.5 * km.leg
        assert (facing @ _unit(travel)).min() > 0.9, (spec, facing @ _unit(travel))
        # the knees bend forwards, and each limb follows the capture's (left on the left)
        truth = _truth(mocap)
        keys, _ = sample_positions(str(path), None, 12, 30, 0.0, 1.0, False, spec)
        for a, z in (("hip.l", "knee.l"), ("knee.r", "ankle.r"), ("shoulder.l", "elbow.l"), ("elbow.r", "wrist.r"),
                     ("ankle.l", "toe.l"), ("hip.r", "hip.l")):
            cos = np.sum(_unit(keys[z] - keys[a]) * _unit(truth[z] - truth[a]), axis=-1)
            assert cos.min() > 0.99, (spec, a, z, cos.min())


def test_eyes_under_the_head_are_never_its_top(mocap, tmp_path):
    c = read(mocap / "02_01.bvh")
    truth = _truth(mocap, 80)  # 2.6 s, most of the capture
    for family in ("daz", "cc"):
        path = family_named(c, family, eyes=True).write(tmp_path / f"{family}.bvh")
        km = key_map(str(path), path.stat().st_mtime_ns, None)
        head = {"daz": "head", "cc": "CC_Base_Head"}[family]
        assert km.names["head"] == head and km.names["head_top"] == f"({head}, extended)", km.names_line()
        keys, _ = sample_positions(str(path), None, 80, 30, 0.0, 1.0, False, None)
        cos = np.sum(_unit(keys["head_top"] - keys["head"]) * _unit(truth["head_top"] - truth["head"]), axis=-1)
        assert cos.min() > 0.95, (family, cos)


@pytest.mark.parametrize("family", ["daz", "3dsmax", "cc"])
def test_a_named_map_maps_its_familys_export_without_end_sites(mocap, tmp_path, family):
    c = read(mocap / "02_01.bvh")
    path = family_named(c, family, eyes=family != "3dsmax").write(tmp_path / f"{family}.bvh")
    assert not any(parse_bvh(path).ends)
    km = key_map(str(path), path.stat().st_mtime_ns, family)
    assert km.how == family and (km.up, km.forward) == ("+Y", "+Z"), km
    for k in ("head_top", "hand_tip.l", "hand_tip.r"):
        assert km.names[k].endswith(", extended)"), km.names_line()
    truth = _truth(mocap)
    keys, _ = sample_positions(str(path), None, 12, 30, 0.0, 1.0, False, family)
    skel = build_skeleton(sample_proportions(np.random.default_rng(3)))
    ours = _directions(skel, retarget(skel, keys, str(path)))
    for bone, (a, z) in SEGMENTS.items():
        cos = np.sum(_unit(ours[bone]) * _unit(truth[z] - truth[a]), axis=-1)
        want = 0.99 if not bone.startswith(("hand", "neck", "head", "foot")) else 0.7
        assert cos.min() > want, (bone, cos.min(), km.names_line())


def test_motions_check_reports_a_capture_walking_backwards(mocap, tmp_path):
    import json

    from .conftest import run_cli
    c = read(mocap / "02_01.bvh")
    backwards = replace(c, L=c.L[::-1].copy(), t=c.t[::-1].copy()).write(tmp_path / "backwards.bvh")
    forwards = mocap / "02_01.bvh"
    r = run_cli("synthact", "motions", "check", str(forwards), str(backwards), "--no-sheet", "--json")
    assert r.returncode == 0, r.stderr
    fwd, back = json.loads(r.stdout)["captures"]
    assert fwd["travel_along_facing"] > 0.9 and fwd["knee_bend_along_facing"] > 0.8 and fwd["warnings"] == []
    assert abs(fwd["head_pitch_deg"]) < 30
    assert back["key_points"] == fwd["key_points"] and back["facing"] == fwd["facing"]  # the body still faces its way
    assert back["travel_along_facing"] < -0.9 and back["knee_bend_along_facing"] > 0.8
    assert len(back["warnings"]) == 1 and back["warnings"][0].startswith("walks backwards"), back["warnings"]
    r = run_cli("synthact", "motions", "check", str(backwards), "--no-sheet")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines() == [f"warning: {backwards}: {back['warnings'][0]}"]
    assert "sanity: travel along facing -0.9" in r.stdout


def test_motions_check_warns_of_a_head_pitched_onto_the_chest(mocap, tmp_path):
    import json

    from .conftest import run_cli
    c = read(mocap / "02_01.bvh")
    neck = c.names.index("Neck")
    c.L[:, neck] = rot(0, np.array(60.0)) @ c.L[:, neck]  # the head hung forwards, 60 degrees off the torso
    path = c.write(tmp_path / "drooped.bvh")
    daz = family_named(read(mocap / "02_01.bvh"), "daz", eyes=True).write(tmp_path / "daz.bvh")
    r = run_cli("synthact", "motions", "check", str(path), str(daz), "--no-sheet", "--json")
    assert r.returncode == 0, r.stderr
    drooped, upright = json.loads(r.stdout)["captures"]
    assert drooped["head_pitch_deg"] > 40 and drooped["travel_along_facing"] > 0.9, drooped
    assert len(drooped["warnings"]) == 1, drooped["warnings"]
    assert drooped["warnings"][0].startswith("its head is pitched more than 40 degrees against the torso in 100% ")
    assert abs(upright["head_pitch_deg"]) < 30 and upright["warnings"] == [], upright


SIDE_STYLES = ("CC_Base_{L}_{p}", "Bip01_{L}_{p}", "{Left}{p}", "{l}{p}", "{p}.{L}", "{p}_{l}")


@pytest.mark.parametrize("style", SIDE_STYLES)
def test_names_break_the_tie_of_a_still_symmetric_body(mocap, tmp_path, style):
    """A T-pose held still, without toes: nothing in the body says which way it faces, so its names say
    which side is left, in each family's way of writing them, even where they contradict the file's axes."""
    import re
    c = without_end_sites(read(mocap / "02_01.bvh"))
    c = _reorder(c, [j for j, n in enumerate(c.names) if "Toe" not in n])
    F = 6
    c = replace(c, L=np.tile(np.eye(3), (F, len(c.names), 1, 1)), t=np.tile(c.t[:1], (F, 1)))
    for swap in (False, True):
        names = []
        for n in c.names:
            m = re.fullmatch(r"(Left|Right|L|R)([A-Z]\w*)", n)
            if m:
                i = (m.group(1).startswith("L")) == swap  # 0: left
                n = style.format(L="LR"[i], Left=("Left", "Right")[i], l="lr"[i], p=m.group(2))
            names.append(n)
        path = replace(c, names=names).write(tmp_path / f"still_{swap}.bvh")
        km = key_map(str(path), path.stat().st_mtime_ns, None)
        want = style.format(L="L", Left="Left", l="l", p="{}")
        for k, part in (("hip.l", "UpLeg"), ("knee.l", "Leg"), ("shoulder.l", "Arm"), ("elbow.l", "ForeArm")):
            assert km.names[k] == want.format(part), (style, swap, km.names_line())
        assert km.forward == ("-Z" if swap else "+Z"), km
