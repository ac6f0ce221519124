"""render-clips --profile: framing, viewpoint and camera motion drawn from a dataset's shot
statistics, recorded, and really seen in the frames."""
from __future__ import annotations

import subprocess
from dataclasses import replace

import numpy as np
import pytest

from synthact import contract as C
from synthact.data.profile import load_profile
from synthact.render.animate import animate
from synthact.render.record import read_records
from synthact.render.sampling import VIEW_AZIMUTH, sample_record

from .conftest import BIN, refusal, run_cli

pytestmark = pytest.mark.slow   # renders with Blender: not in `make test-fast`

ARGS = ("--frames", "8", "--size", "96x72", "--quiet", "--workers", "2")


def _record(cls="wave", index=1, profile=None):
    return sample_record(cls, 0, index, 16, 25, (96, 72), "workbench", False, profile=profile)


def test_a_profile_changes_only_the_camera_and_records_its_draws():
    hmdb = load_profile("hmdb51")
    for i in range(1, 30):
        plain, shaped = _record("punch", i), _record("punch", i, hmdb)
        assert replace(shaped, camera=plain.camera, profile=None) == plain   # every other draw as before
        cam = shaped.camera
        assert shaped.profile == "hmdb51" and cam.framing in ("full", "upper", "head", "lower")
        centre = VIEW_AZIMUTH[cam.view]
        assert abs((cam.azimuth - centre + 180) % 360 - 180) <= 45
        if cam.handheld is None:   # a still camera neither pans nor zooms
            assert cam.pan == 0.0 and cam.zoom == 1.0


def test_the_draws_follow_the_class_shares():
    """HMDB-51's cartwheels are all full body, mostly seen from the side, mostly with a moving camera;
    our class names map onto HMDB's through the class map."""
    hmdb = load_profile("hmdb51")
    wheels = [_record("cartwheel", i, hmdb).camera for i in range(1, 201)]
    assert {c.framing for c in wheels} == {"full"}
    side = sum(c.view in ("left", "right") for c in wheels) / len(wheels)
    assert 0.65 < side < 0.85                      # 39 % + 36 % in the profile
    moving = sum(c.handheld is not None for c in wheels) / len(wheels)
    assert 0.82 < moving < 0.97                    # 91 %


def _bottom_rows_lit(root, clip) -> float:
    """Share of a clip's frames whose bottom row holds body pixels (the body runs out of the frame)."""
    d = C.clip_dir(root, clip)
    frames = [C.read_image(d / C.img_name(k), gray=True) for k in range(1, C.count_frames(d) + 1)]
    return float(np.mean([(f[-1] > 12).any() for f in frames]))


def test_an_upper_body_shot_crops_at_the_hips_and_a_full_one_does_not(tmp_path):
    hmdb = load_profile("hmdb51")
    # find clips the profile frames upper-body and full-body with a still camera (no shake to blur it)
    upper = next(i for i in range(1, 200) if _record("wave", i, hmdb).camera.framing == "upper")
    full = next(i for i in range(1, 200) if _record("wave", i, hmdb).camera.framing == "full")
    out = tmp_path / "p"
    r = run_cli("render-clips", "--out", str(out), "--classes", "wave", "--per-class", str(max(upper, full)),
                "--profile", "hmdb51", *ARGS)
    assert r.returncode == 0, r.stderr
    recs = {x.clip: x for x in read_records(out)}
    up, fu = f"wave/wave_s0_{upper:05d}", f"wave/wave_s0_{full:05d}"
    assert recs[up].camera.framing == "upper" and recs[fu].camera.framing == "full"
    assert _bottom_rows_lit(out, up) == 1.0      # the body leaves the frame at its bottom edge
    assert _bottom_rows_lit(out, fu) == 0.0      # the whole body, feet included, inside
    assert C.recorded_settings(out)["profile"] == "hmdb51"
    again = run_cli("render-clips", "--out", str(out), "--classes", "wave", "--per-class", "1", *ARGS)
    refusal(again, "profile")


def test_a_handheld_camera_moves_every_frame_and_a_still_one_does_not():
    hmdb = load_profile("hmdb51")
    recs = [_record("wave", i, hmdb) for i in range(1, 40)]
    moving = next(r for r in recs if r.camera.handheld is not None and r.camera.pan == 0.0)
    still = next(r for r in recs if r.camera.handheld is None)
    cam = animate(moving).camera
    steady = animate(replace(moving, camera=replace(moving.camera, handheld=None))).camera
    turn = np.abs(np.diff(cam.quaternion, axis=0)).sum(axis=1)
    assert (turn > 1e-5).all()                                   # the shake turns it in every frame
    assert np.abs(np.diff(steady.quaternion, axis=0)).max() < 1e-9
    assert np.linalg.norm(cam.position - steady.position, axis=1).max() > 0.0   # it drifts
    s = animate(still).camera
    if not s.follows:
        assert np.abs(np.diff(s.position, axis=0)).max() < 1e-9 and np.abs(np.diff(s.quaternion, axis=0)).max() < 1e-9


def test_a_bad_profile_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: mine\noverall: {body: {full: -1}}\n")
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--classes", "wave", "--per-class", "1",
                "--profile", str(bad), *ARGS)
    refusal(r, str(bad))
    assert not (tmp_path / "o" / C.MANIFEST).exists()


def test_a_background_changes_only_itself_and_is_recorded():
    for kind in ("points", "grid"):
        for i in range(1, 6):
            plain = _record("wave", i)
            withbg = sample_record("wave", 0, i, 16, 25, (96, 72), "workbench", False, background=kind)
            assert withbg.background.kind == kind and replace(withbg, background=None) == plain
    assert _record("wave", 1).background is None


def _outside_moving(root, clip) -> float:
    """Share of pixels far from the body (20 px and more) whose flow exceeds 1 px."""
    import cv2
    d = C.clip_dir(root, clip)
    shares = []
    for k in range(1, C.count_frames(d)):
        body = C.read_image(d / C.img_name(k), gray=True) > 60
        body = cv2.dilate(body.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0
        fx, fy = (C.read_image(d / n, gray=True).astype(float) for n in C.flow_names(k))
        mag = np.hypot((fx - 127.5) * 40 / 255, (fy - 127.5) * 40 / 255)
        shares.append((mag[~body] > 1).mean())
    return float(np.mean(shares))


def test_points_and_grid_let_a_moving_camera_show_in_the_flow(tmp_path):
    """The same hand-held full-body shot on black and on each background: on black the flow far from
    the body is still; on points and on a grid the camera's motion shows there."""
    hmdb = load_profile("hmdb51")
    n = next(i for i in range(1, 200) if _record("wave", i, hmdb).camera.handheld is not None
             and _record("wave", i, hmdb).camera.framing == "full")
    share = {}
    for kind in ("black", "points", "grid"):
        out = tmp_path / kind
        r = run_cli("render-clips", "--out", str(out), "--classes", "wave", "--per-class", str(n), "--profile",
                    "hmdb51", "--background", kind, "--frames", "6", "--size", "160x120", "--quiet", "--workers", "2")
        assert r.returncode == 0, r.stderr
        assert C.recorded_settings(out)["background"] == kind
        assert run_cli("extract-flow", "--root", str(out), "--method", "tvl1-fast", "--workers", "2",
                       "--quiet").returncode == 0
        share[kind] = _outside_moving(out, f"wave/wave_s0_{n:05d}")
    # TV-L1's smoothing carries some of the body's motion into the black around it; the backgrounds'
    # own motion doubles what moves there (measured: black 0.16, points 0.32, grid 0.34)
    assert share["points"] > 1.6 * share["black"] and share["grid"] > 1.6 * share["black"], share


def test_a_second_person_is_drawn_recorded_and_rendered(tmp_path):
    """HMDB-51's kick clips show two or more people in some shots: such a clip records its extra
    performer (read back typed) and renders more figure than the same record without it."""
    hmdb = load_profile("hmdb51")
    n = next(i for i in range(1, 200) if _record("kick", i, hmdb).extras)
    rec = _record("kick", n, hmdb)
    assert all(0.5 < np.hypot(e.x, e.y) < 1.6 for e in rec.extras)
    assert replace(rec, extras=None) == replace(_record("kick", n, hmdb), extras=None)
    out = tmp_path / "p"
    r = run_cli("render-clips", "--out", str(out), "--classes", "kick", "--per-class", str(n), "--profile", "hmdb51",
                "--frames", "4", "--size", "96x72", "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stderr
    back = {x.clip: x for x in read_records(out)}[rec.clip]
    assert back.extras == rec.extras and type(back.extras[0]).__name__ == "Extra"
    alone = tmp_path / "alone"
    code = ("from dataclasses import fields, replace\nfrom pathlib import Path\n"
            "from synthact.render.jobs import RenderTask, _init_worker, render_clip\n"
            "from synthact.render.record import ClipRecord, read_records\n"
            "if __name__ == '__main__':\n"
            f"    r = {{x.clip: x for x in read_records(Path({str(out)!r}))}}[{rec.clip!r}]\n"
            "    base = ClipRecord(**{f.name: getattr(r, f.name) for f in fields(ClipRecord)})\n"
            f"    _init_worker('workbench', (96, 72), 25, False, {str(tmp_path / 'log')!r})\n"
            f"    render_clip(RenderTask(replace(base, extras=None), {str(alone)!r}, False))\n")
    script = tmp_path / "alone.py"
    script.write_text(code)
    res = subprocess.run([str(BIN / "python"), str(script)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]

    def lit(root):
        d = C.clip_dir(root, rec.clip)
        return sum(int((C.read_image(d / C.img_name(k), gray=True) > 12).sum()) for k in range(1, 5))
    assert lit(out) > 1.15 * lit(alone)
