"""Motion from videos (motions extract): the clean-up on tracks built here, and the whole path on
real fixture clips: estimate, write a capture, map it, render it, mix it by class name."""
from __future__ import annotations

import json
import shutil
import sys

import cv2
import numpy as np
import pytest
import yaml

from synthact import contract as C
from synthact.data import motion_cleanup as M
from synthact.render.mocap import describe_capture, load_library
from tests.conftest import records_of, refusal, run_cli

pytestmark = pytest.mark.slow   # runs MediaPipe over videos: not in `make test-fast`

SPLITS = "real/splits/hmdb51"
VIDEOS = "real/videos/jhmdb_train"
# a 40-frame golf swing (golf has no procedural action) and a 23-frame wave, both split 1 training videos
GOLF = "golf/Golfswing_golf_f_cm_np1_fr_goo_0.avi"
WAVE = "wave/21_wave_u_nm_np1_fr_goo_5.avi"
TEST_WAVE = "20060723sfjffbartsinger_wave_f_cm_np1_ba_med_0.avi"   # tagged 2 (test) in wave_test_split1.txt

# a standing person facing the camera, BlazePose's axes (x right, y down, z away), metres from the hips
POSE = {M.HIP_L: (0.1, 0, 0), M.HIP_R: (-0.1, 0, 0), M.SHOULDER_L: (0.18, -0.5, 0), M.SHOULDER_R: (-0.18, -0.5, 0),
        M.ELBOW_L: (0.2, -0.25, 0), M.ELBOW_R: (-0.2, -0.25, 0), M.WRIST_L: (0.2, 0.0, 0), M.WRIST_R: (-0.2, 0.0, 0),
        M.PINKY_L: (0.2, 0.08, 0), M.PINKY_R: (-0.2, 0.08, 0), M.INDEX_L: (0.21, 0.08, 0), M.INDEX_R: (-0.21, 0.08, 0),
        M.KNEE_L: (0.1, 0.42, 0), M.KNEE_R: (-0.1, 0.42, 0), M.ANKLE_L: (0.1, 0.84, 0), M.ANKLE_R: (-0.1, 0.84, 0),
        M.TOE_L: (0.1, 0.9, -0.12), M.TOE_R: (-0.1, 0.9, -0.12), M.NOSE: (0, -0.65, -0.1),
        M.EYE_L: (0.03, -0.68, -0.08), M.EYE_R: (-0.03, -0.68, -0.08), M.EAR_L: (0.07, -0.66, 0),
        M.EAR_R: (-0.07, -0.66, 0), M.MOUTH_L: (0.02, -0.62, -0.09), M.MOUTH_R: (-0.02, -0.62, -0.09)}


def _track(n=90, fps=30.0, legs_seen=0.9) -> M.Track:
    """A person raising the left forearm steadily and walking right at 0.5 m/s, seen at 150 px/m."""
    world = np.zeros((n, M.LANDMARKS, 3))
    for i, p in POSE.items():
        world[:, i] = p
    t = np.arange(n) / fps
    world[:, M.WRIST_L, 0] += 0.2 * t            # the wrist moves out linearly
    px = 150.0
    image = world[..., :2] * px + np.array([100.0, 90.0])
    image[..., 0] += 0.5 * t[:, None] * px       # travel to the right, 0.5 m/s
    vis = np.full((n, M.LANDMARKS), 0.95)
    vis[:, list(M.LEGS)] = legs_seen
    return M.Track(world, image, vis, fps, (320, 240))


def _remove(track: M.Track, frames) -> M.Track:
    w, im, v = track.world.copy(), track.image.copy(), track.visibility.copy()
    w[frames], im[frames], v[frames] = np.nan, np.nan, 0.0
    return M.Track(w, im, v, track.fps, track.size)


def test_short_gaps_are_filled_and_long_gaps_split():
    full = _track()
    track = _remove(full, list(range(10, 13)) + list(range(40, 60)))   # 3 frames (0.1 s), 20 frames (0.67 s)
    segs = M.clean(track)
    assert [(s.start, s.end, s.filled) for s in segs] == [(0, 40, 3), (60, 90, 0)]
    assert all(s.dropped is None and s.body == "full" for s in segs)
    assert any("3 frame(s) interpolated" in step for step in segs[0].steps)
    # the filled frames follow the wrist's straight line
    truth = M.key_points(full.world[:40])["wrist.l"]
    np.testing.assert_allclose(segs[0].points["wrist.l"][8:15], truth[8:15], atol=1e-6)
    # the estimated travel: 0.5 m/s to the right, none in depth (the apparent size is constant)
    np.testing.assert_allclose(segs[1].travel[-1], [0.5 * 29 / 30, 0.0, 0.0], atol=0.02)


def test_a_jump_to_another_person_splits_and_short_or_unseen_segments_are_dropped():
    track = _track()
    track.image[50:] += np.array([250.0, 0.0])   # someone else, far to the right, from frame 50
    assert [(s.start, s.end) for s in M.clean(track)] == [(0, 50), (50, 90)]
    short = M.clean(_remove(_track(), list(range(10, 90))))
    assert len(short) == 1 and short[0].dropped.startswith("too short (10 frames")
    dim = _track()
    dim.visibility[:, list(M.LIMBS)] = 0.3
    dim.visibility[:, list(M.CORE)] = 0.6
    (seg,) = M.clean(dim)
    assert seg.dropped.startswith("low visibility")


def test_unseen_legs_stand_neutral_and_the_capture_is_marked_upper_body():
    (seg,) = M.clean(_track(legs_seen=0.1))
    assert seg.body == "upper" and not seg.travel.any()
    k = seg.points
    for s in "lr":   # knee and ankle straight under the hip
        np.testing.assert_allclose((k[f"knee.{s}"] - k[f"hip.{s}"])[:, [0, 2]], 0.0, atol=1e-9)
        assert (k[f"ankle.{s}"][:, 1] < k[f"knee.{s}"][:, 1]).all()


def test_savgol_has_no_lag_on_a_ramp_and_reduces_noise():
    t = np.arange(60, dtype=float)
    np.testing.assert_allclose(M.savgol(t, 7), t, atol=1e-9)   # a straight line passes unchanged, ends too
    noisy = np.sin(t / 8) + np.random.default_rng(0).normal(0, 0.05, 60)
    assert np.abs(M.savgol(noisy, 7) - np.sin(t / 8)).mean() < 0.7 * np.abs(noisy - np.sin(t / 8)).mean()


@pytest.fixture(scope="module")
def library(fixtures, tmp_path_factory):
    """The captures of a golf swing and a wave (split 1 training videos), extracted once."""
    lib = tmp_path_factory.mktemp("extract") / "lib"
    r = run_cli("synthact", "motions", "extract", str(fixtures / VIDEOS / GOLF), str(fixtures / VIDEOS / WAVE),
                "--dataset", "hmdb51", "--splits", str(fixtures / SPLITS), "--split", "1", "--out", str(lib), "--quiet",
                "--workers", "2")
    assert r.returncode == 0, r.stderr
    return lib, r.stdout


def test_a_real_clip_becomes_a_capture_that_maps_and_renders(library, tmp_path):
    lib, out = library
    assert "2 videos read (2 classes), 2 with a person" in out and "frames/s" in out
    loaded = load_library(lib / "motions.yaml")
    assert sorted(loaded["motions"]) == ["golf", "wave"]
    entry = yaml.safe_load((lib / "motions.yaml").read_text())["motions"]["golf"][0]
    assert entry["source"]["role"] == "train" and entry["source"]["split"] == "hmdb51 split 1"
    assert 0.5 < entry["quality"] <= 1 and entry["source"]["body"] == "full"
    for cls in ("golf", "wave"):
        km, text = describe_capture(loaded["motions"][cls][0]["file"])
        assert "mapped by structure" in text and km.up == "+Y" and km.forward == "+Z"
    # a golf swing swings: the wrists travel far (more than a forearm) relative to the chest
    from synthact.render.bvh import load_bvh
    from synthact.render.mocap import key_map
    f = loaded["motions"]["golf"][0]["file"]
    mt = (lib / "golf").stat().st_mtime_ns
    _, P = load_bvh(f, mt)
    k = key_map(f, mt, None).points(P)
    rel = k["wrist.r"] - k["neck"]
    assert np.linalg.norm(rel.max(axis=0) - rel.min(axis=0)) > 50   # centimetres

    from synthact.render.jobs import RenderJob, render_batch
    root = tmp_path / "synth"
    s = render_batch(RenderJob(out=root, classes=None, per_class=1, frames=4, size=(64, 48), workers=1,
                               motions=str(lib / "motions.yaml"), profile="hmdb51"), progress=False)
    assert s.ok and s.rendered == 2, s.failures
    rows = {r["class"]: r for r in records_of(root)}
    assert sorted(rows) == ["golf", "wave"]
    origin = rows["golf"]["motion"]["origin"]
    assert origin.startswith("video ") and GOLF.split("/")[1] in origin and origin.endswith("hmdb51 split 1 train")
    # train-tsn's label space takes the class with no procedural action by its name
    from synthact.train.mixing import _synthetic
    labels = ["brush_hair", "golf", "wave"]
    picked = _synthetic(root, "hmdb51", labels, 0, np.random.default_rng(0))
    assert sorted(labels[p.label] for p in picked) == ["golf", "wave"]


def test_a_test_video_is_refused_with_a_split_unless_allowed_and_then_recorded(fixtures, tmp_path):
    folder = tmp_path / "videos" / "wave"
    folder.mkdir(parents=True)
    shutil.copy(fixtures / VIDEOS / WAVE, folder / TEST_WAVE)
    args = ("synthact", "motions", "extract", str(tmp_path / "videos"), "--dataset", "hmdb51",
            "--splits", str(fixtures / SPLITS), "--split", "1", "--out", str(tmp_path / "lib"), "--quiet")
    refusal(run_cli(*args), TEST_WAVE, "test video of hmdb51 split 1", "--allow-test")
    assert not (tmp_path / "lib").exists()
    r = run_cli(*args, "--allow-test")
    assert r.returncode == 0, r.stderr
    info = json.loads((tmp_path / "lib/extraction.json").read_text())
    assert info["allow_test"] is True and info["test_videos_used"] == [str(folder / TEST_WAVE)]
    (entry,) = yaml.safe_load((tmp_path / "lib/motions.yaml").read_text())["motions"]["wave"]
    assert entry["source"]["role"] == "test"


def test_a_video_without_a_person_is_listed_as_dropped(tmp_path):
    folder = tmp_path / "videos" / "smoke"
    folder.mkdir(parents=True)
    w = cv2.VideoWriter(str(folder / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    rng = np.random.default_rng(0)
    for i in range(20):   # a grey wall with a moving bright square: no person
        img = np.full((120, 160, 3), 90, np.uint8) + rng.integers(0, 10, (120, 160, 3), dtype=np.uint8)
        img[40:60, 5 * i:5 * i + 20] = 230
        w.write(img)
    w.release()
    lib = tmp_path / "lib"
    r = run_cli("synthact", "motions", "extract", str(tmp_path / "videos"), "--out", str(lib), "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"dropped {folder / 'empty.avi'} frames 0-19: no person found" in r.stdout
    assert "1 videos read (1 classes), 0 with a person; 0 segments kept, 1 dropped (1 no person found)" in r.stdout
    info = json.loads((lib / "extraction.json").read_text())
    assert info["dropped"][0]["reason"] == "no person found" and not (lib / "motions.yaml").exists()


def test_without_mediapipe_extract_says_so_in_one_line(fixtures, tmp_path):
    code = ("import sys; sys.modules['mediapipe'] = None; from synthact.cli import main; "
            "sys.argv = ['synthact', 'motions', 'extract', sys.argv[1], '--out', sys.argv[2]]; main()")
    import subprocess
    r = subprocess.run([sys.executable, "-c", code, str(fixtures / VIDEOS / WAVE), str(tmp_path / "lib")],
                       capture_output=True, text=True, timeout=120)
    refusal(r, "needs mediapipe", "--no-deps mediapipe==0.10.21")


def test_closed_loop_a_rendered_capture_comes_back_with_its_limb_directions(fixtures, tmp_path):
    """Render a CMU walk with the skinned MakeHuman body, extract it back: limb directions agree
    (mean cosine in the torso frame; 0.93-0.94 measured over 48 frames, BENCHMARKS.md), and better
    than with the sides swapped."""
    from synthact.data.motion_fidelity import closed_loop
    (row,) = closed_loop(fixtures / "mocap/cmu_mb/02_01.bvh", tmp_path, clips=1, frames=24)
    assert row["person_share"] >= 0.7 and row["frames_compared"] >= 12, row
    assert row["all"] > 0.85 and row["all"] > row["swapped"] + 0.05, row


def test_closed_loop_with_a_fixed_camera_gets_the_travel_of_a_walk(fixtures, tmp_path):
    """Shot by a still camera, a CMU walk's travel across the ground comes back from the image hip
    track and the body's apparent size (0.90 of the source's 1.18 leg lengths measured here; 0.54-1.74
    over six clips of two captures, BENCHMARKS.md): within a factor of two, and the camera never followed."""
    from synthact.data.motion_fidelity import closed_loop
    (row,) = closed_loop(fixtures / "mocap/cmu_mb/02_01.bvh", tmp_path, clips=1, frames=24, fixed_camera=True)
    assert row["follow"] is False and row["body"] == "full", row
    assert row["travel_source"] > 0.5 and 0.5 < row["travel_extracted"] / row["travel_source"] < 2.0, row
    assert row["all"] > 0.85, row
    root = tmp_path / "clips"
    assert json.loads((root / C.ROOT_SETTINGS).read_text())["fixed_camera"] is True
    again = run_cli("render-clips", "--out", str(root), "--classes", "wave", "--per-class", "1", "--frames", "24",
                    "--size", "320x240", "--fps", "30", "--body", "makehuman", "--quiet")   # a moving camera
    refusal(again, str(root / C.ROOT_SETTINGS), "fixed_camera=True; this run asks fixed_camera=False")


def test_val_split_holds_out_its_test_videos_even_from_a_library_extracted_without_it(fixtures, tmp_path):
    """WAVE trains in split 1 and is tested on in split 2: with --val-split 2 it is skipped and never in
    motions.yaml, also where an earlier run into the same library (without --val-split) extracted it."""
    folder = tmp_path / "videos" / "wave"
    folder.mkdir(parents=True)
    shutil.copy(fixtures / VIDEOS / WAVE, folder / WAVE.split("/")[1])
    lib = tmp_path / "lib"
    args = ("synthact", "motions", "extract", str(tmp_path / "videos"), "--dataset", "hmdb51",
            "--splits", str(fixtures / SPLITS), "--out", str(lib), "--quiet")
    refusal(run_cli(*args, "--val-split", "2"), "--val-split 2: needs --split")
    refusal(run_cli(*args, "--split", "1", "--val-split", "1"), "--val-split 1: needs --split, and another split")
    assert not lib.exists()
    r = run_cli(*args, "--split", "1")
    assert r.returncode == 0 and (lib / "motions.yaml").exists(), r.stderr
    r = run_cli(*args, "--split", "1", "--val-split", "2")
    assert r.returncode == 0, r.stderr
    assert "0 videos read (0 classes), 0 with a person, 1 skipped" in r.stdout
    info = json.loads((lib / "extraction.json").read_text())
    assert info["val_split"] == 2 and info["skipped"] == [
        {"video": str(folder / WAVE.split("/")[1]), "reason": "held out to validate: hmdb51 split 2 tests on it"}]
    assert not (lib / "motions.yaml").exists()   # the earlier run's library listed WAVE's capture


def test_videos_that_do_not_decode_are_dropped_and_counted_by_reason(tmp_path):
    folder = tmp_path / "videos" / "wave"
    folder.mkdir(parents=True)
    (folder / "zero.avi").write_bytes(b"")
    (folder / "text.avi").write_text("not a video\n")
    r = run_cli("synthact", "motions", "extract", str(tmp_path / "videos"), "--out", str(tmp_path / "lib"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"dropped {folder / 'zero.avi'}: cannot open the video" in r.stdout
    assert "2 dropped (2 cannot open the video)" in r.stdout


def test_extracted_motion_of_a_class_without_a_procedural_action_trains_in_the_dataset_label_space(
        library, fixtures, tmp_path):
    """HMDB-51's ``smoke`` has no procedural action: a library class of that name renders and
    train-tsn mixes its clips into the label space by name, with no classes.yaml entry."""
    lib, _ = library
    text = yaml.safe_load((lib / "motions.yaml").read_text())
    text["motions"] = {"smoke": text["motions"]["golf"], "wave": text["motions"]["wave"]}
    for entries in text["motions"].values():
        for e in entries:
            e["file"] = str(lib / e["file"])
    smoke_lib = tmp_path / "motions.yaml"
    smoke_lib.write_text(yaml.safe_dump(text))
    synth = tmp_path / "synth"
    r = run_cli("render-clips", "--out", str(synth), "--motions", str(smoke_lib), "--per-class", "2", "--frames", "6",
                "--size", "64x48", "--profile", "hmdb51", "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted({x["class"] for x in records_of(synth)}) == ["smoke", "wave"]
    real = tmp_path / "real"
    r = run_cli("synthact", "prepare", "hmdb51", "--videos", str(fixtures / VIDEOS), "--splits", str(fixtures / SPLITS),
                "--out", str(real), "--classes", "smoke,wave", "--size", "64x48", "--allow-missing", "--quiet")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    r = run_cli("train-tsn", "--out", str(run), "--real", "hmdb51:split1-val2", "--real-root", str(real),
                "--classes", "smoke,wave", "--synthetic-only", "--synthetic", "4", "--synthetic-root", str(synth),
                "--backbone", "mobilenet_v3_small", "--size", "32", "--epochs", "1", "--batch-size", "2",
                "--workers", "0", "--eval-protocol", "fast", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (run / "classes.txt").read_text().split() == ["smoke", "wave"]
    labels = sorted(int(ln.split()[2]) for ln in open(run / "train_list.txt"))
    assert labels == [0, 0, 1, 1]   # two smoke clips, two wave clips


def test_a_library_another_run_is_writing_is_refused_in_one_line(fixtures, tmp_path):
    from synthact.rootlock import root_lock
    lib = tmp_path / "lib"
    with root_lock(lib):
        r = run_cli("synthact", "motions", "extract", str(fixtures / VIDEOS / WAVE), "--out", str(lib), "--quiet")
    assert "in use by pid" in refusal(r)
    assert not (lib / "motions.yaml").exists()
