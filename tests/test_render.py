"""render-clips with real bpy at small sizes: files, determinism, resume after kills, GT flow, bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthact import contract as C
from synthact.render.actions import ACTIONS
from synthact.render.jobs import RenderJob, render_batch

from .conftest import BIN, records_of, run_cli, wait_for_manifest

pytestmark = pytest.mark.slow   # renders with Blender: not in `make test-fast`

SMALL = ("--size", "96x72", "--quiet")


def _frames(root: Path) -> dict[str, np.ndarray]:
    return {clip: np.stack([C.read_image(C.clip_dir(root, clip) / C.img_name(k))
                            for k in range(1, C.count_frames(C.clip_dir(root, clip)) + 1)])
            for clip in C.iter_clips(root)}


def test_small_batch_writes_the_contract(tmp_path):
    out = tmp_path / "synth"
    r = run_cli("render-clips", "--out", str(out), "--classes", "wave,walk", "--per-class", "2",
                "--frames", "8", "--workers", "2", *SMALL)
    assert r.returncode == 0, r.stderr
    assert "4 rendered, 0 already done, 0 failed of 4 clips" in r.stdout
    lines = records_of(out)
    assert sorted(x["clip"] for x in lines) == ["walk/walk_s0_00001", "walk/walk_s0_00002",
                                                "wave/wave_s0_00001", "wave/wave_s0_00002"]
    for rec in lines:
        for key in ("body", "action", "camera", "light", "seed", "frames", "size", "engine", "num_frames"):
            assert key in rec
        folder = C.clip_dir(out, rec["clip"])
        assert C.count_frames(folder) == 8
        img = C.read_image(folder / C.img_name(1))
        assert img.shape == (72, 96, 3)
        assert img[0, 0].max() < 8 and img.max() > 60       # black background, a lit body
    assert C.read_classes(out / "classes.txt") == ["walk", "wave"]
    entries = C.read_annotations(out / "annotations" / "synthetic_rawframes.txt")
    assert [e.line() for e in entries] == ["walk/walk_s0_00001 8 0", "walk/walk_s0_00002 8 0",
                                          "wave/wave_s0_00001 8 1", "wave/wave_s0_00002 8 1"]
    assert cv2.imread(str(out / "preview.png")) is not None
    # a rerun finds everything done
    r = run_cli("render-clips", "--out", str(out), "--classes", "wave,walk", "--per-class", "2",
                "--frames", "8", *SMALL)
    assert r.returncode == 0 and "0 rendered, 4 already done" in r.stdout


def test_same_seed_same_pixels_other_seed_other_pixels(tmp_path):
    job = dict(classes="squat,tai_chi", per_class=1, frames=6, size=(96, 72), workers=2)
    a = render_batch(RenderJob(out=tmp_path / "a", seed=5, **job), progress=False)
    b = render_batch(RenderJob(out=tmp_path / "b", seed=5, **job), progress=False)
    c = render_batch(RenderJob(out=tmp_path / "c", seed=6, **job), progress=False)
    assert a.ok and b.ok and c.ok
    fa, fb, fc = _frames(tmp_path / "a"), _frames(tmp_path / "b"), _frames(tmp_path / "c")
    assert fa.keys() == fb.keys()
    for clip in fa:
        np.testing.assert_array_equal(fa[clip], fb[clip])
    assert not np.array_equal(fa["squat/squat_s5_00001"], fc["squat/squat_s6_00001"])


def _workers_of(pid: int) -> list[int]:
    kids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmd:
            kids.append(int(p.name))
    return kids


BATCH = ("--classes", "jump,clap,kick", "--per-class", "3", "--frames", "24", "--size", "96x72", "--quiet")


def _check_complete(out: Path, clips: int) -> None:
    lines = records_of(out)
    names = [x["clip"] for x in lines]
    assert len(names) == len(set(names)) == clips
    assert sorted(names) == sorted(C.iter_clips(out))
    assert not list((out / C.RAWFRAMES).glob("*/.tmp-*"))
    for name in names:
        assert C.count_frames(C.clip_dir(out, name)) == 24


def test_kill_9_of_a_worker_loses_nothing(tmp_path):
    out = tmp_path / "synth"
    proc = subprocess.Popen([str(BIN / "render-clips"), "--out", str(out), "--workers", "1", *BATCH],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_manifest(out, 2, proc)
    workers = _workers_of(proc.pid)
    assert workers, "no render worker found"
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "9 rendered, 0 already done, 0 failed of 9 clips" in stdout
    _check_complete(out, 9)


def test_kill_9_of_the_batch_then_rerun_resumes(tmp_path):
    out = tmp_path / "synth"
    proc = subprocess.Popen([str(BIN / "render-clips"), "--out", str(out), "--workers", "2", *BATCH],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_manifest(out, 3, proc)
    os.killpg(proc.pid, signal.SIGKILL)    # the main process and its workers, mid-clip
    proc.wait()
    listed = {x["clip"] for x in records_of(out)}
    assert 3 <= len(listed) < 9
    # a clip committed in the instant before the kill, its manifest line not yet written, waits
    # beside its folder as a record: the rerun appends it, so it is finished work too
    waiting = {c for c in set(C.iter_clips(out)) - listed
               if C.pending_path(out, c).is_file() and C.clip_dir(out, c).is_dir()}
    finished = listed | waiting
    before = {c: C.clip_dir(out, c).stat().st_mtime_ns for c in finished}
    r = run_cli("render-clips", "--out", str(out), "--workers", "2", *BATCH)
    assert r.returncode == 0, r.stderr
    skipped = int(r.stdout.split(" already done")[0].rsplit(" ", 1)[1])
    assert skipped == len(finished)
    _check_complete(out, 9)
    assert {c: C.clip_dir(out, c).stat().st_mtime_ns for c in finished} == before  # not redone


def test_torn_manifest_line_is_dropped_and_the_clip_recovered(tmp_path):
    out = tmp_path / "synth"
    job = RenderJob(out=out, classes="wave", per_class=2, frames=4, size=(64, 48))
    assert render_batch(job, progress=False).ok
    text = (out / C.MANIFEST).read_text().splitlines()
    # killed mid-write of the second line: its record still waits beside the committed folder
    C.write_json(C.pending_path(out, json.loads(text[1])["clip"]), json.loads(text[1]))
    (out / C.MANIFEST).write_text(text[0] + "\n" + text[1][: len(text[1]) // 2])
    s = render_batch(job, progress=False)
    assert s.ok and s.skipped == 2 and s.rendered == 0
    assert [r["clip"] for r in records_of(out)] == [json.loads(t)["clip"] for t in text]
    assert not list(out.rglob(".pending-*"))


def test_a_failing_clip_is_reported_and_the_batch_goes_on(tmp_path):
    out = tmp_path / "synth"
    blocker = out / C.RAWFRAMES / "clap" / ".tmp-clap_s0_00002"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the clip's staging folder must go")
    r = run_cli("render-clips", "--out", str(out), "--classes", "clap", "--per-class", "3", "--frames", "4",
                "--size", "64x48", "--quiet")
    assert r.returncode == 1
    assert "2 rendered, 0 already done, 1 failed of 3 clips" in r.stdout
    assert "failed clap/clap_s0_00002" in r.stderr
    assert len(records_of(out)) == 2


@pytest.mark.parametrize("args, message", [
    (("--classes", "wave,moonwalk", "--per-class", "1"), "unknown class moonwalk"),
    (("--classes", "wave", "--per-class", "1", "--size", "340by256"), "bad size '340by256'"),
    (("--classes", "wave", "--per-class", "1", "--size", "4x4"), "bad size '4x4'"),
    (("--classes", "wave"), "give exactly one of --per-class N or --total N"),
    (("--classes", "wave", "--per-class", "1", "--gt-flow"), "--gt-flow needs --engine cycles"),
])
def test_bad_input_gets_one_clear_line(tmp_path, args, message):
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and message in r.stderr


def test_unwritable_output_gets_one_clear_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    r = run_cli("render-clips", "--out", str(afile / "sub"), "--classes", "wave", "--per-class", "1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and f"{afile / 'sub'}: output folder is not writable" in r.stderr


def test_rerun_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "synth"
    assert render_batch(RenderJob(out=out, classes="wave", per_class=1, frames=4, size=(64, 48)), progress=False).ok
    with pytest.raises(ValueError, match="holds clips with frames=4; this run asks frames=6"):
        render_batch(RenderJob(out=out, classes="wave", per_class=1, frames=6, size=(64, 48)), progress=False)


def test_every_action_renders_a_visible_body(tmp_path):
    out = tmp_path / "all"
    s = render_batch(RenderJob(out=out, classes="all", per_class=1, frames=3, size=(64, 48), workers=2),
                     progress=False)
    assert s.ok, s.failures
    assert s.rendered == len(ACTIONS)
    for clip, frames in _frames(out).items():
        body = (frames.max(axis=-1) > 20).mean(axis=(1, 2))
        assert np.all(body > 0.01), f"{clip}: body hardly visible ({body})"


def test_gt_flow_maps_frame_k_plus_1_back_onto_frame_k(tmp_path):
    out = tmp_path / "gt"
    s = render_batch(RenderJob(out=out, classes="jumping_jack,walk", per_class=1, frames=6, size=(160, 120),
                               engine="cycles", gt_flow=True, video=True), progress=False)
    assert s.ok, s.failures
    for clip in C.iter_clips(out):
        d = C.clip_dir(out, clip)
        assert C.count_frames(d) == 6
        assert (d / "clip.mp4").stat().st_size > 0
        assert not (d / C.flow_names(6)[0]).exists()          # N frames, N-1 pairs
        errors = {}
        for sign in ((1, 1), (-1, -1)):
            warped_err, still_err = [], []
            for k in range(1, 6):
                a = C.read_image(d / C.img_name(k), True).astype(np.float32)
                b = C.read_image(d / C.img_name(k + 1), True).astype(np.float32)
                flow = C.read_flow_pair(d, k) * np.array(sign, np.float32)
                body = a > 20
                # background away from the body (JPEG rings near edges) is zero motion: 128
                fx = C.read_image(d / C.flow_names(k)[0], True)
                far = cv2.dilate((a > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
                assert far.mean() > 0.3 and np.all(np.abs(fx[far].astype(int) - 128) <= 1)
                gy, gx = np.mgrid[0:a.shape[0], 0:a.shape[1]].astype(np.float32)
                warped = cv2.remap(b, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR)
                warped_err.append(np.abs(warped - a)[body].mean())
                still_err.append(np.abs(b - a)[body].mean())
            errors[sign] = (np.mean(warped_err), np.mean(still_err))
        good, still = errors[(1, 1)]
        assert good < 0.6 * still, (clip, errors)
        assert good < errors[(-1, -1)][0], (clip, errors)
        assert json.loads((out / C.MANIFEST).read_text().splitlines()[0])["gt_flow"] is True


def test_rendering_works_after_the_caller_imported_bpy(tmp_path):
    # bpy puts its script folders in sys.path, and spawned workers inherit sys.path
    code = ("import bpy\nfrom synthact.render.jobs import RenderJob, render_batch\n"
            "if __name__ == '__main__':\n"
            f"    s = render_batch(RenderJob(out={str(tmp_path / 'o')!r}, classes='wave', per_class=1, frames=2,"
            " size=(64, 48)), progress=False)\n    print(s.ok, s.failures)\n")
    script = tmp_path / "user_script.py"
    script.write_text(code)
    r = subprocess.run([str(BIN / "python"), str(script)], capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == "True []", r.stdout + r.stderr[-2000:]
