"""Real videos whose containers miscount: J-HMDB's 182 training clips prepare whole, with the
declared count recorded; ``--strict-frames`` keeps the old contract; a stream with a hole is refused."""
from __future__ import annotations

import numpy as np
import pytest

from synthact import contract as C
from synthact.data.video import VideoInfo, check_decoded
from synthact.errors import BadData

from .conftest import records_of, run_cli

JHMDB = ("clap,climb_stairs,golf,jump,kick_ball,pick,pullup,run,shoot_bow,sit,stand,swing_baseball,throw,walk,"
         "wave")


def _prepare(fixtures, out, *extra):
    return run_cli("synthact", "prepare", "hmdb51", "--videos", str(fixtures / "real/videos/jhmdb_train"),
                   "--splits", str(fixtures / "real/splits/hmdb51"), "--out", str(out), "--size", "64x48",
                   "--allow-missing", "--quiet", "--workers", "2", *extra)


@pytest.mark.slow
def test_every_jhmdb_training_clip_prepares_with_its_declared_count_recorded(fixtures, tmp_path):
    videos = sorted((fixtures / "real/videos/jhmdb_train").glob("*/*.avi"))
    assert len(videos) == 182
    r = _prepare(fixtures, tmp_path / "jhmdb", "--classes", JHMDB)
    assert r.returncode == 0, r.stderr
    assert "182 videos prepared, 0 already done, 0 failed" in r.stdout
    assert "warning: 182 videos decode fewer frames than their containers declare" in r.stderr
    lines = records_of(tmp_path / "jhmdb")
    assert len(lines) == 182
    for rec in lines:
        assert 3 <= rec["declared_frames"] - rec["num_frames"] <= 8, rec
        assert C.count_frames(C.clip_dir(tmp_path / "jhmdb", rec["clip"])) == rec["num_frames"]
    train = C.read_annotations(tmp_path / "jhmdb/annotations/hmdb51_train_split_1_rawframes.txt")
    assert len(train) == 182       # exactly split 1's training clips of these classes


def test_strict_frames_refuses_what_the_container_overcounts(fixtures, tmp_path):
    r = _prepare(fixtures, tmp_path / "strict", "--classes", "wave", "--strict-frames")
    assert r.returncode == 1
    report = (tmp_path / "strict/failures.txt").read_text().splitlines()
    assert len(report) == len(list((fixtures / "real/videos/jhmdb_train/wave").glob("*.avi")))
    assert all("frames its container declares (--strict-frames)" in line for line in report)
    assert records_of(tmp_path / "strict") == []


@pytest.mark.parametrize("decoded, declared, gap_at, why", [
    (150, 300, None, "truncated: the stream stops after 150 of the 300"),
    (300, 300, 120, "s of the stream fail to decode after frame 121"),
])
def test_what_decoding_shows_is_refused(decoded, declared, gap_at, why):
    stamps = list(np.arange(decoded) * 40.0)
    if gap_at is not None:
        stamps = stamps[:gap_at + 1] + [s + 2000.0 for s in stamps[gap_at + 1:]]
    with pytest.raises(BadData, match=why):
        check_decoded("v.avi", VideoInfo(decoded, declared, 25.0, (320, 240)), stamps, strict=False)


def test_a_short_count_within_half_a_second_is_a_miscount_not_a_cut():
    stamps = list(np.arange(40) * 1000 / 30)
    check_decoded("v.avi", VideoInfo(40, 48, 30.0, (320, 240)), stamps, strict=False)
    with pytest.raises(BadData, match="--strict-frames"):
        check_decoded("v.avi", VideoInfo(40, 48, 30.0, (320, 240)), stamps, strict=True)


def test_a_folder_a_link_loop_a_dangling_link_and_text_named_avi_fail_alone(fixtures, tmp_path):
    import cv2
    names = [ln.split()[0] for ln in (fixtures / "real/splits/hmdb51/wave_test_split1.txt").read_text().splitlines()]
    wave = tmp_path / "videos/wave"
    wave.mkdir(parents=True)
    (wave / names[0]).mkdir()                                        # a folder named .avi
    (wave / names[1]).symlink_to(names[1])                           # a link to itself
    (wave / names[2]).symlink_to(tmp_path / "videos/gone.avi")       # a link to nothing
    (wave / names[3]).write_text("not a video\n")                    # text named .avi
    vw = cv2.VideoWriter(str(wave / names[4]), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for k in range(2):                                               # two frames: one flow pair, enough
        vw.write(np.full((48, 64, 3), 60 * k, np.uint8))
    vw.release()
    out = tmp_path / "out"
    r = run_cli("synthact", "prepare", "hmdb51", "--videos", str(tmp_path / "videos"), "--splits",
                str(fixtures / "real/splits/hmdb51"), "--out", str(out), "--classes", "wave", "--size", "64x48",
                "--allow-missing", "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "1 videos prepared, 0 already done, 4 failed" in r.stdout
    report = (out / "failures.txt").read_text().splitlines()
    assert len(report) == 4
    for name, why in ((names[0], "a folder, not a video"), (names[1], "a link to no file (broken or a loop)"),
                      (names[2], "a link to no file (broken or a loop)"), (names[3], "cannot open video")):
        assert any(f"{name}: {why}" in line for line in report), (name, report)
    assert [rec["num_frames"] for rec in records_of(out)] == [2]


def test_strict_frames_keeps_a_video_one_frame_short_and_its_warning_says_so(fixtures, tmp_path):
    r = run_cli("synthact", "prepare", "hmdb51", "--videos", str(fixtures / "real/videos/hmdb51"), "--splits",
                str(fixtures / "real/splits/hmdb51"), "--out", str(tmp_path / "out"), "--classes", "wave",
                "--size", "64x48", "--allow-missing", "--quiet", "--strict-frames")
    assert r.returncode == 0, r.stderr
    assert [(rec["num_frames"], rec["declared_frames"]) for rec in records_of(tmp_path / "out")] == [(48, 49)]
    assert "(--strict-frames refuses those more than 2 short)" in r.stderr
