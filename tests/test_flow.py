"""Flow and real-dataset preparation with real OpenCV and the fixture clips."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import cv2
import numpy as np
import pytest

from synthact import contract as C
from synthact.data.splits import load_splits, subset_classes
from synthact.data.video import decode_video
from synthact.flow.extract import run_flow
from synthact.flow.methods import make_flow
from synthact.render.jobs import RenderJob, render_batch

from .conftest import BIN, records_of, run_cli, wait_for_manifest


def test_encoding_round_trips_within_the_quantisation_step():
    rng = np.random.default_rng(0)
    flow = rng.uniform(-25, 25, (40, 50, 2)).astype(np.float32)
    back = C.decode_flow(*C.encode_flow(flow))
    inside = np.abs(flow) <= C.FLOW_BOUND
    step = 2 * C.FLOW_BOUND / 255
    assert np.abs(back - flow)[inside].max() <= step / 2 + 1e-5
    np.testing.assert_allclose(back[~inside], np.sign(flow[~inside]) * C.FLOW_BOUND, atol=1e-5)
    fx, fy = C.encode_flow(np.zeros((2, 2, 2)))
    assert fx.max() == fy.min() == 128          # zero motion is mid-grey
    fx, _ = C.encode_flow(np.full((1, 1, 2), 20.0))
    assert fx[0, 0] == 255


@pytest.mark.parametrize("method, tol", [("tvl1", 0.2), ("dis", 0.2), ("tvl1-fast", 0.3), ("farneback", 0.3)])
def test_a_known_shift_is_recovered(method, tol):
    rng = np.random.default_rng(1)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (160, 200)).astype(np.float32), (0, 0), 2.0)
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    dx, dy = 2.5, -1.5  # content moves right and up
    moved = cv2.warpAffine(tex, np.float32([[1, 0, dx], [0, 1, dy]]), (200, 160), borderMode=cv2.BORDER_REFLECT)
    flow = make_flow(method)(tex, moved)
    inner = flow[20:-20, 20:-20]
    assert abs(inner[..., 0].mean() - dx) < tol and abs(inner[..., 1].mean() - dy) < tol


def test_split_parsing_gives_the_official_counts(fixtures):
    ucf = load_splits("ucf101", fixtures / "real/splits/ucf101")
    assert len(ucf.classes) == 101
    assert (len(ucf.train[1]), len(ucf.test[1])) == (9537, 3783)
    assert (len(ucf.train[2]), len(ucf.test[2]), len(ucf.train[3]), len(ucf.test[3])) == (9586, 3734, 9624, 3696)
    hs = [v for v in ucf.train[1] if v.cls == "HandstandPushups"]
    assert hs and all(v.relpath.startswith("HandstandPushups/v_HandStandPushups_") for v in hs)
    assert ucf.classes.index("Hammering") < ucf.classes.index("HammerThrow")  # classInd order
    hmdb = load_splits("hmdb51", fixtures / "real/splits/hmdb51")
    assert len(hmdb.classes) == 51
    for k in (1, 2, 3):
        assert (len(hmdb.train[k]), len(hmdb.test[k])) == (3570, 1530)
    label_map = (fixtures / "real/mmaction2_testdata/label_maps/hmdb51_label_map.txt").read_text().split()
    assert hmdb.classes == label_map
    assert subset_classes("ucf101", "ucf25", ucf.classes)[:3] == ["Archery", "BaseballPitch", "BodyWeightSquats"]
    assert len(subset_classes("hmdb51", "hmdb", hmdb.classes)) == 23
    with pytest.raises(ValueError, match="has no class Moonwalk"):
        subset_classes("ucf101", "Punch,Moonwalk", ucf.classes)


@pytest.mark.slow
def test_prepare_ucf101_counts_frames_by_decoding(fixtures, tmp_path):
    out = tmp_path / "ucf"
    r = run_cli("synthact", "prepare", "ucf101", "--videos", str(fixtures / "real/videos/ucf101"),
                "--splits", str(fixtures / "real/splits/ucf101"), "--out", str(out),
                "--classes", "ApplyEyeMakeup,Punch", "--flow", "dis", "--workers", "2", "--quiet")
    assert r.returncode == 1, r.stderr             # most listed videos are not in the fixtures
    assert "videos listed in the splits are not on disk" in r.stderr
    missing = (out / "missing.txt").read_text().splitlines()
    assert any("v_Punch_g02_c01: listed in" in m for m in missing)
    d = C.clip_dir(out, "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01")
    assert C.count_frames(d) == 164
    assert (d / C.flow_names(163)[0]).exists() and not (d / C.flow_names(164)[0]).exists()
    assert C.read_image(d / C.img_name(1)).shape == (256, 340, 3)
    train1 = C.read_annotations(out / "annotations/ucf101_train_split_1_rawframes.txt")
    val1 = C.read_annotations(out / "annotations/ucf101_val_split_1_rawframes.txt")
    assert [e.line() for e in val1] == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01 164 0", "Punch/v_Punch_g01_c01 121 1"]
    assert [e.clip for e in train1] == ["Punch/v_Punch_g08_c01"]
    assert (out / "ucf101_label_map.txt").read_text().split() == ["ApplyEyeMakeup", "Punch"]
    # a rerun with --allow-missing redoes nothing and exits 0
    r = run_cli("synthact", "prepare", "ucf101", "--videos", str(fixtures / "real/videos/ucf101"),
                "--splits", str(fixtures / "real/splits/ucf101"), "--out", str(out),
                "--classes", "ApplyEyeMakeup,Punch", "--flow", "dis", "--allow-missing", "--quiet")
    assert r.returncode == 0 and "0 videos prepared, 3 already done" in r.stdout


def test_hmdb_clip_decodes_48_frames_not_the_declared_49(fixtures, tmp_path):
    info = decode_video(fixtures / "real/videos/hmdb51/wave/TrumanShow_wave_f_nm_np1_fr_med_26.avi",
                        (340, 256), lambda k, frame: C.write_jpeg(tmp_path / C.img_name(k), frame))
    assert info.num_frames == 48 and info.declared_frames == 49
    assert info.record()["source_size"] == [432, 240]
    assert C.count_frames(tmp_path) == 48


def _one_frame_video(path):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    vw.write(np.full((48, 64, 3), 100, np.uint8))
    vw.release()


def test_bad_videos_fail_alone_and_the_run_completes(fixtures, tmp_path):
    videos = tmp_path / "videos"
    good = fixtures / "real/videos/ucf101/PushUps/v_PushUps_g01_c01.avi"
    src = fixtures / "real/videos/ucf101/Punch/v_Punch_g01_c01.avi"
    for rel in ("PushUps/v_PushUps_g01_c01.avi", "Punch/v_Punch_g01_c01.avi", "Punch/v_Punch_g08_c01.avi",
                "Punch/v_Punch_g08_c02.avi"):
        (videos / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(good, videos / "PushUps/v_PushUps_g01_c01.avi")
    data = src.read_bytes()
    (videos / "Punch/v_Punch_g01_c01.avi").write_bytes(data[: len(data) // 3])      # truncated
    (videos / "Punch/v_Punch_g08_c01.avi").write_bytes(b"")                          # empty
    _one_frame_video(videos / "Punch/v_Punch_g08_c02.avi")                           # one frame
    out = tmp_path / "out"
    r = run_cli("synthact", "prepare", "ucf101", "--videos", str(videos),
                "--splits", str(fixtures / "real/splits/ucf101"),
                "--out", str(out), "--classes", "Punch,PushUps", "--allow-missing", "--quiet", "--workers", "2")
    assert r.returncode == 1
    assert "1 videos prepared, 0 already done, 3 failed" in r.stdout
    report = (out / "failures.txt").read_text()
    assert "v_Punch_g01_c01.avi: truncated: the stream stops after" in report
    assert "v_Punch_g08_c01.avi: cannot open video" in report or "v_Punch_g08_c01.avi: no frame decodes" in report
    assert "v_Punch_g08_c02.avi: only one frame decodes" in report
    assert len(report.splitlines()) == 3
    assert [e.clip for e in C.read_annotations(out / "annotations/ucf101_val_split_1_rawframes.txt")] == \
        ["PushUps/v_PushUps_g01_c01"]
    assert not list((out / C.RAWFRAMES).glob("*/.tmp-*"))


@pytest.fixture
def synth_root(tmp_path):
    root = tmp_path / "synth"
    assert render_batch(RenderJob(out=root, classes="jumping_jack,wave,punch", per_class=2, frames=10, size=(96, 72),
                                  workers=2), progress=False).ok
    return root


@pytest.mark.slow
def test_extract_flow_writes_pairs_and_refuses_to_mix(synth_root):
    r = run_cli("extract-flow", "--root", str(synth_root), "--method", "dis", "--workers", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "6 clips done, 0 already done, 0 failed of 6; 54 pairs" in r.stdout
    for clip in C.iter_clips(synth_root):
        d = C.clip_dir(synth_root, clip)
        assert len(list(d.glob("flow_x_*.jpg"))) == len(list(d.glob("flow_y_*.jpg"))) == 9
    flow = C.read_flow_pair(C.clip_dir(synth_root, "jumping_jack/jumping_jack_s0_00001"), 5)
    assert np.abs(flow).max() > 0.5                          # the body moved
    r = run_cli("extract-flow", "--root", str(synth_root), "--method", "tvl1", "--quiet")
    assert r.returncode == 2 and "holds dis flow (bound 20.0); refusing to mix in tvl1" in r.stderr
    r = run_cli("extract-flow", "--root", str(synth_root), "--method", "dis", "--quiet")
    assert r.returncode == 2 and "pass --resume" in r.stderr
    r = run_cli("extract-flow", "--root", str(synth_root), "--method", "dis", "--resume", "--quiet")
    assert r.returncode == 0 and "0 clips done, 6 already done" in r.stdout


def test_gt_flow_root_refuses_estimated_flow(tmp_path):
    root = tmp_path / "gt"
    assert render_batch(RenderJob(out=root, classes="wave", per_class=1, frames=3, size=(64, 48), engine="cycles",
                                  gt_flow=True), progress=False).ok
    with pytest.raises(ValueError, match="holds blender-vector flow"):
        run_flow(root, "dis", 1, progress=False)


@pytest.mark.slow
def test_killed_flow_run_resumes_without_redoing_finished_clips(synth_root):
    proc = subprocess.Popen([str(BIN / "extract-flow"), "--root", str(synth_root), "--method", "tvl1",
                             "--workers", "1", "--quiet"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_manifest(synth_root, 2, proc, C.FLOW_MANIFEST)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {r["clip"] for r in records_of(synth_root, C.FLOW_MANIFEST)}
    assert 2 <= len(finished) < 6
    stamps = {c: C.clip_dir(synth_root, c).stat().st_mtime_ns for c in finished}
    s = run_flow(synth_root, "tvl1", 2, resume=True, progress=False)
    assert s.ok and s.skipped == len(finished) and s.done == 6 - len(finished)
    assert {c: C.clip_dir(synth_root, c).stat().st_mtime_ns for c in finished} == stamps
    assert not list((synth_root / C.RAWFRAMES).glob("*/.tmp-*"))
    assert not list((synth_root / C.RAWFRAMES).glob("*/.old-*"))
    for clip in C.iter_clips(synth_root):
        d = C.clip_dir(synth_root, clip)
        assert C.count_frames(d) == 10 and len(list(d.glob("flow_x_*.jpg"))) == 9


def test_mmaction2_rawframes_load_through_our_reader(fixtures):
    d = fixtures / "real/mmaction2_testdata/tests/data/imgs"
    entries = C.read_annotations(fixtures / "real/mmaction2_testdata/tests/data/annotations/rawframe_test_list.txt")
    assert entries[0] == C.Entry("imgs", 5, 127)
    img = C.read_image(d / C.MMACTION2_FLOW.img_name(1))
    assert img.ndim == 3 and img.shape[2] == 3
    fx, fy = C.read_flow_jpegs(d, 1, C.MMACTION2_FLOW)
    assert fx.shape == fy.shape == img.shape[:2]
    flow = C.read_flow_pair(d, 5, layout=C.MMACTION2_FLOW)
    assert flow.shape == img.shape[:2] + (2,) and np.isfinite(flow).all()


@pytest.mark.slow
def test_merge_joins_roots_from_two_machines_and_refuses_mismatches(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root, seed in ((a, 1), (b, 2)):
        assert render_batch(RenderJob(out=root, classes="wave,clap", per_class=2, frames=4, size=(64, 48),
                                      seed=seed), progress=False).ok
        assert run_flow(root, "dis", 1, progress=False).ok
    out = tmp_path / "merged"
    r = run_cli("synthact", "merge", "--out", str(out), str(a), str(b))
    assert r.returncode == 0, r.stderr
    assert "8 clips merged, 0 already there, 8 in all, 2 classes" in r.stdout
    assert len(records_of(out)) == len(records_of(out, C.FLOW_MANIFEST)) == 8
    assert len(C.read_annotations(out / "annotations/synthetic_rawframes.txt")) == 8
    clip = "wave/wave_s2_00001"
    assert os.path.samefile(C.clip_dir(out, clip) / C.img_name(1), C.clip_dir(b, clip) / C.img_name(1))
    assert (C.clip_dir(out, clip) / C.flow_names(3)[0]).exists()
    again = run_cli("synthact", "merge", "--out", str(out), str(a), str(b))
    assert again.returncode == 0 and "0 clips merged, 8 already there" in again.stdout
    r = run_cli("synthact", "merge", "--out", str(tmp_path / "m2"), str(a), str(a))
    assert r.returncode == 2 and "is in both" in r.stderr
    c = tmp_path / "c"
    assert render_batch(RenderJob(out=c, classes="wave", per_class=1, frames=6, size=(64, 48), seed=3),
                        progress=False).ok
    r = run_cli("synthact", "merge", "--out", str(tmp_path / "m3"), str(a), str(c))
    assert r.returncode == 2 and "has frames=6" in r.stderr and "has frames=4" in r.stderr


def test_malformed_split_lines_are_named_by_file_and_line(fixtures, tmp_path):
    ucf = tmp_path / "ucf"
    shutil.copytree(fixtures / "real/splits/ucf101", ucf)
    lines = (ucf / "trainlist01.txt").read_text().split("\n")   # read_text turns CRLF into \n
    lines[4] = "Punch/v_Punch_g08_c01.avi 999"          # label disagrees with classInd
    (ucf / "trainlist01.txt").write_text("\r\n".join(lines))
    with pytest.raises(C.BadData, match=r"trainlist01.txt:5: label 999 disagrees with classInd"):
        load_splits("ucf101", ucf)
    hmdb = tmp_path / "hmdb"
    shutil.copytree(fixtures / "real/splits/hmdb51", hmdb)
    (hmdb / "wave_test_split2.txt").write_text("a_wave_video.avi 7\n")
    with pytest.raises(C.BadData, match=r"wave_test_split2.txt:1: expected '<video>.avi <0\|1\|2>'"):
        load_splits("hmdb51", hmdb)
