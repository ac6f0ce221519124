"""synthact predict on the fixture's real videos: one line per video, the same scores as train-tsn's
own evaluation of the same clips, two runs fused, a corrupt video failing alone."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthact import contract as C
from synthact.data.prepare import PrepareJob, prepare
from synthact.train.evaluate import fuse
from synthact.train.loop import TrainConfig, fit
from synthact.train.predict import predict_videos

from .conftest import refusal, run_cli

pytestmark = pytest.mark.slow   # trains the runs it predicts with: not in `make test-fast`

CLASSES = "ApplyEyeMakeup,BabyCrawling,Punch,PushUps"   # every UCF-101 fixture video; g01 clips are split 1's test


@pytest.fixture(scope="module")
def runs(fixtures, tmp_path_factory):
    """The fixture's UCF-101 videos prepared at 80x60 with DIS flow, and a tiny RGB and flow run
    (1 epoch, mobilenet_v3_small, 48 px) whose validation clips are the 4 g01 videos (TSN protocol)."""
    base = tmp_path_factory.mktemp("predict")
    real = base / "real"
    prepare(PrepareJob("ucf101", fixtures / "real/videos/ucf101", fixtures / "real/splits/ucf101", real, CLASSES,
                       "dis", (80, 60), 2), progress=False)
    out = {}
    for modality in ("rgb", "flow"):
        out[modality] = base / modality
        fit(TrainConfig(out=str(out[modality]), real="ucf101:split1", real_root=str(real), classes=CLASSES,
                        modality=modality, backbone="mobilenet_v3_small", size=48, epochs=1, batch_size=2,
                        workers=0, eval_protocol="tsn", device="cpu"), progress=False)
    return real, out


def _val_videos(run: Path, fixtures: Path) -> list[Path]:
    """The videos of a run's val list, in its order (rows of scores_tsn.npy)."""
    entries = C.read_annotations(run / "val_list.txt", clip_ids=False)
    return [fixtures / "real/videos/ucf101" / f"{Path(e.clip).parent.name}/{Path(e.clip).name}.avi" for e in entries]


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_predict_scores_as_train_tsns_own_evaluation(fixtures, runs, modality):
    _, out = runs
    run = out[modality]
    videos = _val_videos(run, fixtures)
    assert len(videos) == 4 and all(v.exists() for v in videos)
    r = predict_videos([run], videos, echo=None, device="cpu")
    got = np.stack([p.scores for p in r.predictions])
    want = np.load(run / "scores_tsn.npy")
    # the same frames and flow bit for bit (decode, INTER_AREA, JPEG round trip, flow from the JPEGs);
    # only the float sums may differ in the last bits
    assert np.abs(got - want).max() < 1e-5, np.abs(got - want).max()
    assert [p.top[0][0] for p in r.predictions] == [r.classes[i] for i in want.argmax(1)]
    labels = np.load(run / "labels.npy")
    assert r.top1 == pytest.approx(float((want.argmax(1) == labels).mean()))


def test_cli_one_line_per_video_accuracy_csv_and_fusion(fixtures, runs, tmp_path):
    _, out = runs
    table = tmp_path / "preds.csv"
    r = run_cli("synthact", "predict", "--run", str(out["rgb"]), "--run", str(out["flow"]), "--weights", "1,1.5",
                "--device", "cpu", "--csv", str(table), str(fixtures / "real/videos/ucf101"))
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.endswith(("right]", "wrong]"))]
    assert len(lines) == 5, r.stdout                            # 5 videos, all in <class>/ folders
    assert all(ln.count(", ") == 3 for ln in lines)            # top 5 of 4 classes: all 4
    assert "over 5 videos in <class>/ folders" in r.stdout and "5 videos classified, 0 failed" in r.stdout
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 5 and {row["true_class"] for row in rows} == set(CLASSES.split(","))
    # fused predictions of the val videos agree with fusing the runs' saved scores
    fused = fuse([out["rgb"], out["flow"]], [1.0, 1.5])
    want = np.load(out["rgb"] / "scores_tsn.npy") + 1.5 * np.load(out["flow"] / "scores_tsn.npy")
    by_video = {Path(row["video"]).name: row for row in rows}
    for video, s in zip(_val_videos(out["rgb"], fixtures), want, strict=True):
        row = by_video[video.name]
        assert row["class1"] == C.read_classes(out["rgb"] / C.CLASSES)[int(s.argmax())]
        assert float(row["score1"]) == pytest.approx(float(s.max()), abs=1e-4)
    assert fused["n"] == 4


def test_a_corrupt_video_fails_alone(fixtures, runs, tmp_path):
    _, out = runs
    videos = tmp_path / "videos" / "Punch"
    videos.mkdir(parents=True)
    good = fixtures / "real/videos/ucf101/Punch/v_Punch_g01_c01.avi"
    shutil.copy(good, videos / "good.avi")
    (videos / "garbage.avi").write_bytes(np.random.default_rng(0).bytes(5000))
    (videos / "cut.avi").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    r = run_cli("synthact", "predict", "--run", str(out["rgb"]), "--device", "cpu", "--protocol", "fast",
                str(tmp_path / "videos"))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "1 videos classified, 2 failed" in r.stdout
    failed = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(failed) == 2 and "Traceback" not in r.stderr, r.stderr
    assert any("garbage.avi" in ln for ln in failed) and any("cut.avi: truncated" in ln for ln in failed), failed
    assert sum("good.avi: " in ln for ln in r.stdout.splitlines()) == 1


def test_refusals_are_one_line(runs, tmp_path):
    _, out = runs
    refusal(run_cli("synthact", "predict", "--run", str(out["rgb"]), str(tmp_path / "nothing")), "no such file")
    refusal(run_cli("synthact", "predict", "--run", str(out["rgb"]), "--weights", "1,2", str(tmp_path)), "--weights")
    (tmp_path / "empty").mkdir()
    refusal(run_cli("synthact", "predict", "--run", str(out["rgb"]), str(tmp_path / "empty")), "no video files")
    refusal(run_cli("synthact", "predict", "--run", str(tmp_path / "empty"), str(tmp_path)), "config.json")


def test_predict_takes_a_jhmdb_clip_whose_container_overcounts(fixtures, runs):
    """J-HMDB's AVIs declare 3-8 frames more than decode; the video is whole and is classified."""
    _, out = runs
    video = sorted((fixtures / "real/videos/jhmdb_train/wave").glob("*.avi"))[0]
    r = run_cli("synthact", "predict", "--run", str(out["flow"]), "--protocol", "fast", str(video))
    assert r.returncode == 0, r.stderr
    assert "1 videos classified, 0 failed" in r.stdout


@pytest.mark.parametrize("key, value, words", [
    ("segments", 1000000, "segments 1000000: must be a whole number >= 1 and <= 64"),
    ("segments", -1, "segments -1: must be a whole number >= 1"),
    ("segments", "3", "segments '3': must be a whole number"),
    ("size", "32", "size '32': must be a whole number >= 16"),
    ("size", 0, "size 0: must be a whole number >= 16"),
    ("size", 100000, "size 100000: must be a whole number >= 16 and <= 4096"),
    ("size", float("nan"), "size nan: must be a whole number"),
    ("num_classes", None, "num_classes None: must be a whole number >= 1"),
    ("modality", "depth", "modality 'depth': choose from rgb, flow"),
    ("backbone", ["resnet18"], "backbone ['resnet18']: choose from"),
    ("info", "evil", "info 'evil': must be a mapping"),
    ("info", {"flow_method": "bogus"}, "flow_method 'bogus' is not one of tvl1, tvl1-fast"),
    ("info", {"flow_method": ["dis"]}, "flow_method ['dis'] is not one of"),
])
def test_a_run_folders_config_is_checked_as_for_resume(runs, tmp_path, key, value, words):
    """A hand-edited config.json is refused in one line before any model is built or video read."""
    import json
    _, out = runs
    run = tmp_path / "run"
    shutil.copytree(out["rgb"], run)
    cfg = json.loads((run / "config.json").read_text())
    cfg[key] = value
    (run / "config.json").write_text(json.dumps(cfg))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    r = run_cli("synthact", "predict", "--run", str(run), "--csv", str(tmp_path / "p.csv"), str(tmp_path))
    refusal(r, str(run / "config.json"), words)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
