"""Motion capture on the mannequin: parsing, retargeting, mirroring, bone maps, bad files, renders
(skeletons mapped by structure: tests/test_skeletons.py)."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from synthact import contract as C
from synthact.render.bvh import parse_bvh
from synthact.render.jobs import RenderJob, render_batch
from synthact.render.mannequin import INDEX, build_skeleton, sample_proportions
from synthact.render.mocap import resolve_bone_map, retarget, sample_positions

from .conftest import records_of

BVHS = ("01_01", "02_01", "05_06", "13_26", "13_32", "13_39", "13_40", "13_41", "13_42")


@pytest.fixture(scope="module")
def mocap(fixtures):
    return fixtures / "mocap/cmu_mb"


def _keys(mocap, name="02_01", mirror=False, n=20):
    return sample_positions(str(mocap / f"{name}.bvh"), None, n, 25, 0.3, 1.0, mirror, None)


def _dir(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_fixture_captures_parse(mocap):
    for name in BVHS:
        b = parse_bvh(mocap / f"{name}.bvh")
        P = b.positions()
        assert P.shape == (len(b.motion), len(b.names), 3) and np.isfinite(P).all()
        assert round(b.fps) == 120
        i = b.names.index
        assert np.median(P[:, i("Head"), 2] - P[:, i("LeftFoot"), 2]) > 10       # +Z is up


def test_each_bone_points_along_its_captured_segment(mocap):
    keys, info = _keys(mocap)
    assert info["capture_fps"] == pytest.approx(120, abs=0.01)
    skel = build_skeleton(sample_proportions(np.random.default_rng(0)))
    posed = retarget(skel, keys)
    for bone, (a, z) in (("thigh.l", ("hip.l", "knee.l")), ("forearm.r", ("elbow.r", "wrist.r")),
                         ("upper_arm.l", ("shoulder.l", "elbow.l")), ("shin.r", ("knee.r", "ankle.r"))):
        b = INDEX[bone]
        ours = posed.heads[:, INDEX[{"thigh.l": "shin.l", "forearm.r": "hand.r", "upper_arm.l": "forearm.l",
                                     "shin.r": "foot.r"}[bone]]] - posed.heads[:, b]
        cos = np.sum(_dir(ours) * _dir(keys[z] - keys[a]), axis=-1)
        assert cos.min() > 0.9999, bone


def test_mirroring_swaps_sides_and_reflects(mocap):
    keys, _ = _keys(mocap)
    mirrored, _ = _keys(mocap, mirror=True)
    flip = np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(mirrored["elbow.l"], keys["elbow.r"] * flip, atol=1e-9)
    np.testing.assert_allclose(mirrored["knee.r"], keys["knee.l"] * flip, atol=1e-9)


def test_speed_warp_and_frame_range(mocap):
    _, slow = sample_positions(str(mocap / "13_39.bvh"), [10, 200], 16, 25, 0.0, 0.5, False, None)
    _, fast = sample_positions(str(mocap / "13_39.bvh"), [10, 200], 16, 25, 0.0, 1.5, False, None)
    assert slow["start_frame"] == fast["start_frame"] == 10
    assert (fast["end_frame"] - 10) == pytest.approx(3 * (slow["end_frame"] - 10), abs=2)
    _, short = sample_positions(str(mocap / "13_39.bvh"), [0, 30], 64, 25, 0.5, 1.0, False, None)
    assert short["speed_used"] < 1.0 and short["end_frame"] <= 30         # slowed to fit, recorded


def _renamed(mocap, tmp_path, old, new):
    text = (mocap / "13_32.bvh").read_text()
    path = tmp_path / "renamed.bvh"
    path.write_text(text.replace(f"JOINT {old}\n", f"JOINT {new}\n"))
    return path


def test_a_named_map_overrides_the_structure_and_names_what_it_lacks(mocap, tmp_path):
    path = _renamed(mocap, tmp_path, "LeftForeArm", "LeftLowerArm")
    names = parse_bvh(path).names
    with pytest.raises(C.BadData, match=r"closest bone map 'cgspeed' lacks elbow.l \(LeftForeArm\)"):
        resolve_bone_map(names, "cgspeed", str(path))
    keys, _ = sample_positions(str(path), None, 4, 25, 0.0, 1.0, False, None)   # by structure: found
    from synthact.render.mocap import BONE_MAPS
    mapping = dict(BONE_MAPS["cgspeed"], **{"elbow.l": "LeftLowerArm"})
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(mapping))
    index = resolve_bone_map(names, tmp_path / "map.yaml", str(path))
    assert names[index["elbow.l"]] == "LeftLowerArm"
    mapped, _ = sample_positions(str(path), None, 4, 25, 0.0, 1.0, False, str(tmp_path / "map.yaml"))
    for k in keys:
        np.testing.assert_array_equal(mapped[k], keys[k])


def _snake(path):
    """A chain of 12 joints: no legs, no arms."""
    lines = ["HIERARCHY", "ROOT J0", "{", "OFFSET 0 0 0", "CHANNELS 6 Xposition Yposition Zposition "
             "Zrotation Xrotation Yrotation"]
    for j in range(1, 12):
        lines += [f"JOINT J{j}", "{", "OFFSET 0 0 5", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    lines += ["End Site", "{", "OFFSET 0 0 5", "}"] + ["}"] * 12
    lines += ["MOTION", "Frames: 4", "Frame Time: 0.033333"]
    lines += [" ".join(["0"] * 6 + [f"{10 * np.sin(f + j)} 0 0" for j in range(1, 12)]) for f in range(4)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("body", ["mannequin", "makehuman", "bodies/human-male.glb"])
def test_every_fixture_capture_renders_on_each_body_and_unmapped_skeletons_fail_alone(mocap, tmp_path, body,
                                                                                      fixtures):
    # (a corrupt capture refuses the whole run at plan time: tests/test_input_safety.py)
    _renamed(mocap, tmp_path, "LeftLeg", "LeftShin")             # mapped by structure all the same
    _snake(tmp_path / "snake.bvh")
    lib = {"motions": {f"m{name}": [str(mocap / f"{name}.bvh")] for name in BVHS}}
    lib["motions"]["renamed"] = ["renamed.bvh"]
    lib["motions"]["snake"] = ["snake.bvh"]
    (tmp_path / "motions.yaml").write_text(yaml.safe_dump(lib))
    out = tmp_path / "out"
    body = str(fixtures / body) if body.endswith(".glb") else body
    s = render_batch(RenderJob(out=out, classes=",".join(lib["motions"]) + ",wave", per_class=1, frames=4,
                               size=(64, 48), workers=2, motions=str(tmp_path / "motions.yaml"), body=body),
                     progress=False)
    failed = dict(s.failures)
    assert set(failed) == {"snake/snake_s0_00001"}
    assert "snake.bvh: not mapped as a human skeleton: 1 limb end(s)" in failed["snake/snake_s0_00001"]
    assert s.rendered == len(BVHS) + 2                          # every capture, and the procedural wave
    for rec in records_of(out):
        frames = np.stack([C.read_image(C.clip_dir(out, rec["clip"]) / C.img_name(k)) for k in range(1, 5)])
        assert (frames.max(axis=-1) > 20).mean(axis=(1, 2)).min() > 0.01, rec["clip"]
        if rec["class"] != "wave":
            assert rec["motion"]["source"] == "bvh" and rec["motion_used"]["capture_fps"] > 100
        assert rec["body"]["model"] == body
