"""The numpy side of rendering: body, actions, kinematics, camera framing, records (no bpy)."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from synthact.assets import class_map, resolve_classes, target_class
from synthact.render.actions import ACTIONS, evaluate
from synthact.render.animate import animate
from synthact.render.camera import SENSOR_WIDTH
from synthact.render.mannequin import (
    INDEX,
    NAMES,
    PARENT,
    build_skeleton,
    sample_proportions,
)
from synthact.render.motion import (
    forward_kinematics,
    local_rotations,
    matrix_to_quaternion,
    mirror,
    pose_clip,
    posed_vertices,
    rot,
)
from synthact.render.sampling import sample_record


def _record(cls, index=1, frames=32, seed=0):
    return sample_record(cls, seed, index, frames, 25, (340, 256), "workbench", False)


def test_every_library_class_is_mapped_and_subsets_resolve():
    cm = class_map()
    assert set(cm["actions"]) == set(ACTIONS)
    assert len(ACTIONS) >= 25
    ucf25 = resolve_classes("ucf25")
    assert len(ucf25) == 25
    assert len({target_class(c, "ucf101") for c in ucf25}) == 25
    assert all(target_class(c, "hmdb51") for c in resolve_classes("hmdb"))
    with pytest.raises(ValueError, match="unknown class nosuch"):
        resolve_classes("wave,nosuch")


def test_forward_kinematics_keeps_bone_lengths():
    skel = build_skeleton(sample_proportions(np.random.default_rng(3)))
    t = np.arange(40) / 25
    ch = evaluate(ACTIONS["cartwheel"], t, {"speed": 1, "amp": 1, "phase": 0.2, "mirror": False})
    posed = pose_clip(skel, ch, len(t))
    for b, p in enumerate(PARENT):
        if p >= 0:
            rest = np.linalg.norm(skel.heads[b] - skel.heads[p])
            got = np.linalg.norm(posed.heads[:, b] - posed.heads[:, p], axis=1)
            np.testing.assert_allclose(got, rest, atol=1e-9)


def test_anatomical_directions():
    skel = build_skeleton(sample_proportions(np.random.default_rng(0)))
    hand = INDEX["hand.l"]
    def tip(**ch):
        L, off = local_rotations(ch, 1)
        posed = forward_kinematics(skel, L, off)
        return posed.heads[0, hand] - posed.heads[0, INDEX["upper_arm.l"]]
    assert tip(**{"sh_flex.l": 90})[1] < -0.3       # forwards is -Y
    assert tip(**{"sh_abd.l": 90})[0] > 0.3         # the left arm abducts to +X
    assert tip(**{"sh_abd.l": 180})[2] > 0.3        # overhead


def test_mirror_reflects_the_pose():
    skel = build_skeleton(sample_proportions(np.random.default_rng(1)))
    t = np.arange(30) / 25
    params = {"speed": 1.0, "amp": 1.0, "phase": 0.3, "mirror": False}
    a = pose_clip(skel, evaluate(ACTIONS["golf_swing"], t, params), len(t))
    b = pose_clip(skel, evaluate(ACTIONS["golf_swing"], t, {**params, "mirror": True}), len(t))
    swap = [NAMES.index(n.replace(".l", ".x").replace(".r", ".l").replace(".x", ".r")) for n in NAMES]
    reflected = b.heads[:, swap] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(reflected, a.heads, atol=1e-6)


@pytest.mark.parametrize("cls", sorted(ACTIONS))
def test_each_action_moves_stays_grounded_and_in_frame(cls):
    rec = _record(cls)
    anim = animate(rec)
    verts = posed_vertices(anim.skeleton, anim.posed)
    assert np.isfinite(verts).all()
    if ACTIONS[cls].ground == "contact":
        # the lowest vertex rests on the floor, or above it by the action's lift (jumps)
        lift = evaluate(ACTIONS[cls], np.arange(32) / 25, asdict(rec.action))["lift"]
        assert np.all(lift >= 0.0)
        np.testing.assert_allclose(verts[:, :, 2].min(axis=1), lift, atol=1e-6)
    # the body moves: joints travel a visible distance over the clip
    spread = np.ptp(anim.posed.heads, axis=0).max()
    assert spread > 0.05, f"{cls} barely moves"
    # every vertex projects inside the frame, within the sampled fill
    cam = anim.camera
    w, h = rec.size
    from synthact.render.camera import _basis
    back, right, up, fwd = _basis(rec.camera.azimuth + rec.camera.pan * np.linspace(0, 1, 32), rec.camera.elevation)
    rel = verts - cam.position[:, None]
    depth = np.einsum("nvi,ni->nv", rel, fwd)
    assert depth.min() > 0.1
    x = np.einsum("nvi,ni->nv", rel, right) / depth * (cam.lens / SENSOR_WIDTH * 2)[:, None]
    y = np.einsum("nvi,ni->nv", rel, up) / depth * (cam.lens / SENSOR_WIDTH * 2)[:, None] * w / h
    assert max(np.abs(x).max(), np.abs(y).max()) <= rec.camera.fill + 1e-3


def test_records_are_reproducible_and_differ_by_seed():
    assert _record("wave", 3) == _record("wave", 3)
    assert _record("wave", 3).camera != _record("wave", 4).camera
    assert _record("wave", 3, seed=1).seed != _record("wave", 3, seed=0).seed


def test_quaternions_match_matrices():
    rng = np.random.default_rng(0)
    R = rot(0, rng.uniform(-180, 180, 50)) @ rot(1, rng.uniform(-180, 180, 50)) @ rot(2, rng.uniform(-180, 180, 50))
    q = matrix_to_quaternion(R)
    w, x, y, z = q.T
    back = np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], 1)
    np.testing.assert_allclose(back, R, atol=1e-9)


def test_mirror_is_an_involution():
    ch = {"sh_flex.l": np.ones(3), "spine_twist": np.full(3, 20.0), "yaw": np.full(3, 5.0)}
    back = mirror(mirror(ch))
    assert set(back) == set(ch)
    for k in ch:
        np.testing.assert_array_equal(back[k], ch[k])
