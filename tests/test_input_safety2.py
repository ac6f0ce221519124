"""The newer surfaces against careless and hostile input (issue 22): profiles, bounds, a Ray address
that is not Ray, info, fused scores and ablate grids. Each case is one ``error:`` line, exit 2,
and nothing written (the folder asked for is not even made)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthact import contract as C

from .conftest import BIN, records_of, refusal, run_cli, wait_for_manifest

PROFILE = "overall:\n  body: {full: 1}\n  camera: {moving: 1}\n  people: {1: 1}\n  view: {front: 1}\n"
RENDER = ("--classes", "wave", "--per-class", "1", "--frames", "2", "--size", "48x36", "--quiet")


def _tree(folder: Path) -> dict:
    """Every file under ``folder`` and its bytes: what "nothing changed" is compared on."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("edit, words", [
    (("body: {full: 1}", "body: {full: 1.0e+308, upper: 1.0e+308}"), "overall.body: the weights sum to inf"),
    (("people: {1: 1}", "people: {1: 1, 5000: 1}"), "overall.people: value 5000: people is a whole number of "
                                                    "figures, 1 to 10"),
])
def test_a_profile_that_overflows_or_asks_for_a_crowd_is_refused(tmp_path, edit, words):
    good = tmp_path / "good.yaml"
    good.write_text(PROFILE)
    from synthact.data.profile import load_profile
    assert load_profile(good).overall.people == {1: 1.0}      # the unedited profile is taken
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROFILE.replace(*edit))
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--profile", str(bad), *RENDER)
    refusal(r, str(bad), words)
    assert not (tmp_path / "o").exists()


def _grid(tmp_path: Path, **over) -> Path:
    cfg = {"real": "target", "real_root": str(tmp_path / "target"), "synthetic": [0], "train": {"workers": 0}}
    cfg.update(over)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("over, words", [
    ({"cell_gpus": 1000}, "cell_gpus 1000: expected a whole number >= 1 and <= 16"),
    ({"train": {"workers": 5000}}, "train.workers 5000: must be a whole number >= 0 and <= 64"),
    ({"train": {"segments": 1000000}}, "train.segments 1000000: must be a whole number >= 1 and <= 64"),
    ({"train": {"size": 100000}}, "train.size 100000: must be a whole number >= 16 and <= 4096"),
    ({"seeds": list(range(1000)), "synthetic": [0, 1]}, "the grid crosses 2000 cells, more than 1000"),
    ({"seeds": list(range(100)), "splits": [1, 2, 3], "synthetic": list(range(1, 101)),
      "real_fraction": [0.1, 0.5], "modality": ["rgb", "flow", "fusion"]}, "the grid crosses 180000 cells"),
    ({"synthetic": [0, 1], "real_fraction": [0], "synthetic_root": "s", "train": {"engine": "mmaction2"},
      "stage1": {"adapt_bn": True}}, "stage1.adapt_bn: applies to the synthact engine only"),
])
def test_ablate_bounds_are_one_line(tmp_path, over, words):
    path = _grid(tmp_path, **over)
    start = time.monotonic()
    r = run_cli("synthact", "ablate", "--config", str(path), "--out", str(tmp_path / "o"), timeout=120)
    refusal(r, str(path), words)
    assert time.monotonic() - start < 60 and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_train_tsn_workers_are_bounded(tmp_path):
    r = run_cli("train-tsn", "--out", str(tmp_path / "r"), "--real", "target:split1", "--real-root",
                str(tmp_path / "target"), "--workers", "5000")
    refusal(r, "--workers 5000: must be a whole number >= 0 and <= 64")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ --ray-address to something else
class Listener:
    """A TCP server on 127.0.0.1 that accepts and answers with ``reply`` (nothing: stays silent);
    it stops itself after ``lifetime`` seconds whatever happens."""

    def __init__(self, reply: bytes, lifetime: float = 60.0):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply, self.end, self.conns = reply, time.monotonic() + lifetime, []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while time.monotonic() < self.end:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(conn)
            if self.reply:
                conn.sendall(self.reply)
        self.close()

    def close(self) -> None:
        self.end = 0
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("reply, words", [
    (b"", "no HTTP/2 answer within 5 s"),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "it answered but not in HTTP/2"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "it answered but not in HTTP/2"),
])
def test_a_ray_address_that_is_not_ray_is_refused_at_once(tmp_path, reply, words):
    server = Listener(reply)
    try:
        address = f"127.0.0.1:{server.port}"
        start = time.monotonic()
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--executor", "ray", "--ray-address", address,
                    *RENDER, env=env, timeout=120)
        refusal(r, f"--ray-address {address}: something listens there but it is not a Ray cluster's GCS", words)
        assert time.monotonic() - start < 60 and server.conns   # the handshake was tried, and gave up in time
        assert not (tmp_path / "o").exists()
    finally:
        server.close()


# ------------------------------------------------------------------ synthact info
@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """One rendered clip (2 frames, 48x36): a root for info to read, copied per case."""
    root = tmp_path_factory.mktemp("info") / "root"
    assert run_cli("render-clips", "--out", str(root), *RENDER).returncode == 0
    return root


def _manifest(root: Path, **change) -> None:
    path = root / "manifest.jsonl"
    rec = json.loads(path.read_text().splitlines()[0])
    rec.update(change)
    path.write_text(json.dumps(rec) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("damage, words", [
    (lambda r: _manifest(r, num_frames="abc"), "num_frames 'abc' is not a whole number >= 0"),
    (lambda r: (r / "manifest.jsonl").write_text((r / "manifest.jsonl").read_text()
                                                 .replace('"num_frames": 2', '"num_frames": NaN')),
     "num_frames nan is not a whole number >= 0"),
    (lambda r: _manifest(r, motion="evil"), "motion 'evil' is not a mapping"),
    (lambda r: (r / "failures.txt").write_bytes(bytes(range(128, 256)) * 4), "cannot read failure list"),
])
def test_info_on_a_malformed_root_is_one_line(small, tmp_path, damage, words):
    root = tmp_path / "root"
    shutil.copytree(small, root)
    assert run_cli("synthact", "info", str(root)).returncode == 0       # the copy as rendered is read
    damage(root)
    before = _tree(tmp_path)
    refusal(run_cli("synthact", "info", str(root)), str(root), words)
    refusal(run_cli("synthact", "info", str(root), "--json"), words)
    assert _tree(tmp_path) == before


def _run_folder(folder: Path) -> Path:
    """The files info reads of a train-tsn run folder, as a finished 2-epoch run leaves them."""
    folder.mkdir()
    settings = {"out": str(folder), "real": "target:split1", "real_root": "target", "backbone": "resnet18",
                "modality": "rgb", "segments": 3, "size": 32, "num_classes": 3, "epochs": 2, "info": {"classes": 3}}
    (folder / "config.json").write_text(json.dumps(settings))
    (folder / "log.csv").write_text("epoch,train_loss,train_acc,val_top1\n1,1.1,0.3,0.4\n2,0.9,0.5,0.5\n")
    (folder / "metrics.json").write_text(json.dumps({"top1": 0.5, "mean_class": 0.5, "protocol": "tsn", "n": 6}))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("name, text, words", [
    ("log.csv", "epoch,train_loss,train_acc,val_top1\n1,1.1,0.3,abc\n", "log.csv:2: epoch '1', val_top1 'abc'"),
    ("log.csv", "epoch,train_loss,train_acc,val_top1\nxx,1.1,0.3,0.4\n", "log.csv:2: epoch 'xx'"),
    ("log.csv", b"epoch,val_top1\n\xff\xfe\x00\x81,\x99\n", "log.csv: cannot read training log"),
    ("config.json", "[1, 2, 3]", "config.json: not a train-tsn run's settings (expected a JSON object"),
    ("config.json", '{"out": "r", "real": "t:split1", "real_root": "t", "backbone": "resnet18", "modality": "rgb", '
                    '"segments": 3, "size": 32, "num_classes": 3, "epochs": -2}',
     "config.json: epochs -2: must be a whole"),
    ("metrics.json", "[0.5]", "metrics.json: not a run's metrics (expected a JSON object)"),
])
def test_info_on_a_malformed_run_folder_is_one_line(tmp_path, name, text, words):
    run = _run_folder(tmp_path / "run")
    r = run_cli("synthact", "info", str(run), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["best_epoch"] == 2, r.stderr
    (run / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    before = _tree(tmp_path)
    refusal(run_cli("synthact", "info", str(run)), str(run / name), words)
    assert _tree(tmp_path) == before


def test_info_json_is_strict_json_with_nan_named(tmp_path):
    run = _run_folder(tmp_path / "run")
    (run / "metrics.json").write_text('{"top1": NaN, "mean_class": Infinity, "protocol": "tsn", "n": 6}')
    r = run_cli("synthact", "info", str(run), "--json")
    assert r.returncode == 0, r.stderr
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout
    info = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert info["final"]["top1"] is None and info["final"]["mean_class"] is None and info["final"]["n"] == 6
    assert r.stderr.strip() == f"warning: final.top1, final.mean_class: not a finite number in {run}; written as null"


# ------------------------------------------------------------------ evaluate --fuse
def _scored(folder: Path, scores) -> Path:
    """A run folder as the final evaluation leaves it for fusion: 4 val clips, 3 classes."""
    folder.mkdir()
    (folder / "val_list.txt").write_text("".join(f"c/v{i} 8 {i % 3}\n" for i in range(4)))
    (folder / "classes.txt").write_text("a\nb\nc\n")
    np.save(folder / "labels.npy", np.arange(4) % 3)
    np.save(folder / "scores_tsn.npy", scores, allow_pickle=True)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("scores, words", [
    (np.array([{"a": 1}] * 4, dtype=object), "not a saved scores array (Object arrays cannot be loaded"),
    (np.ones((4, 2)), "scores of dtype float64, shape (4, 2): expected finite numbers of shape (4, 3)"),
    (np.ones((3, 3)), "shape (3, 3): expected finite numbers of shape (4, 3)"),
    (np.full((4, 3), np.nan), "shape (4, 3): expected finite numbers of shape (4, 3)"),
    (np.array(["x"] * 12).reshape(4, 3), "scores of dtype <U1"),
])
def test_fusing_malformed_scores_is_one_line(tmp_path, scores, words):
    rgb = _scored(tmp_path / "rgb", np.eye(3)[np.arange(4) % 3])
    flow = _scored(tmp_path / "flow", scores)
    ok = _scored(tmp_path / "ok", np.eye(3)[np.arange(4) % 3] * 0.5)
    r = run_cli("synthact", "evaluate", "--fuse", str(rgb), "--fuse", str(ok), "--out", str(tmp_path / "good"))
    assert r.returncode == 0 and "top-1 1.0000" in r.stdout, r.stderr
    before = _tree(tmp_path)
    r = run_cli("synthact", "evaluate", "--fuse", str(rgb), "--fuse", str(flow), "--out", str(tmp_path / "fused"))
    refusal(r, str(flow / "scores_tsn.npy"), words)
    assert _tree(tmp_path) == before and not (tmp_path / "fused").exists()


def test_fusing_labels_out_of_range_is_one_line(tmp_path):
    rgb = _scored(tmp_path / "rgb", np.eye(3)[np.arange(4) % 3])
    flow = _scored(tmp_path / "flow", np.eye(3)[np.arange(4) % 3])
    np.save(rgb / "labels.npy", np.array([0, 1, 2, 7]))
    r = run_cli("synthact", "evaluate", "--fuse", str(rgb), "--fuse", str(flow), "--out", str(tmp_path / "fused"))
    refusal(r, str(rgb / "labels.npy"), "expected one class index 0..2 per clip")
    assert not (tmp_path / "fused").exists()


# ------------------------------------------------------------------ Ctrl-C and SIGTERM of a batch
SLOW = ("--classes", "jump,clap,kick", "--per-class", "3", "--frames", "24", "--size", "96x72", "--workers", "2",
        "--quiet")
STOPPED = re.compile(r"interrupted: (SIGINT|SIGTERM) during (render|flow tvl1|prepare hmdb51): (\d+) of (\d+) "
                     r"(?:clips|videos) finished and "
                     r"recorded, 0 failed, (\d+) not done; rerun the same command to do the rest")


def _descendants(pid: int) -> set[int]:
    """Every process under ``pid`` (its workers, their children, multiprocessing's resource tracker)."""
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
            found |= {int(child)} | _descendants(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _stop(proc: subprocess.Popen, sig: int, manifest: Path, n: int) -> tuple[str, set[int]]:
    """Send ``sig`` once ``n`` clips are in ``manifest``: SIGINT to the process group (a terminal's
    Ctrl-C), SIGTERM to the main process alone (a scheduler's kill); its stderr and former children."""
    wait_for_manifest(manifest.parent, n, proc, manifest.name)
    children = _descendants(proc.pid)
    assert len(children) >= 2, children          # the workers (and the resource tracker)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    end = time.monotonic() + 10
    while any(map(_alive, children)) and time.monotonic() < end:
        time.sleep(0.1)
    assert not [p for p in children if _alive(p)], "a worker or the resource tracker outlived the batch"
    return err, children


def _check_stopped(err: str, sig: int, proc: subprocess.Popen, listed: int, total: int) -> None:
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    m = STOPPED.fullmatch(lines[0])
    assert m and m.group(1) == signal.Signals(sig).name, lines[0]
    finished, of, left = map(int, m.group(3, 4, 5))
    assert of == total and finished + left == of and finished <= listed


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_render_says_what_it_finished_and_leaves_no_worker(tmp_path, sig):
    out = tmp_path / "synth"
    proc = subprocess.Popen([str(BIN / "render-clips"), "--out", str(out), *SLOW], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    err, _ = _stop(proc, sig, out / C.MANIFEST, 2)
    listed = records_of(out)
    _check_stopped(err, sig, proc, len(listed), 9)
    assert int(STOPPED.fullmatch(err.strip()).group(3)) == len(listed) < 9
    for rec in listed:    # only whole clips are recorded
        assert C.count_frames(C.clip_dir(out, rec["clip"])) == rec["num_frames"] == 24
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]
    r = run_cli("render-clips", "--out", str(out), *SLOW)       # and the rerun finishes the rest
    assert r.returncode == 0, r.stderr
    assert len(records_of(out)) == 9 and C.leftovers(out) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_flow_extraction_records_what_it_finished_and_leaves_no_worker(tmp_path, sig):
    root = tmp_path / "root"
    assert run_cli("render-clips", "--out", str(root), "--classes", "jump,clap,kick", "--per-class", "2",
                   "--frames", "24", "--size", "128x96", "--workers", "2", "--quiet").returncode == 0
    proc = subprocess.Popen([str(BIN / "extract-flow"), "--root", str(root), "--method", "tvl1", "--workers", "2",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    err, _ = _stop(proc, sig, root / C.FLOW_MANIFEST, 1)
    flowed = records_of(root, C.FLOW_MANIFEST)
    _check_stopped(err, sig, proc, len(flowed), 6)
    assert 1 <= len(flowed) < 6
    for rec in flowed:    # each recorded clip has all 23 flow pairs
        folder = C.clip_dir(root, rec["clip"])
        assert len(list(folder.glob("flow_x_*.jpg"))) == len(list(folder.glob("flow_y_*.jpg"))) == 23
    r = run_cli("extract-flow", "--root", str(root), "--method", "tvl1", "--workers", "2", "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(records_of(root, C.FLOW_MANIFEST)) == 6 and C.leftovers(root) == 0


PREPARE = ("--classes", "wave", "--size", "64x48", "--flow", "tvl1", "--workers", "2", "--allow-missing", "--quiet")


@pytest.fixture(scope="module")
def eight_videos(fixtures, tmp_path_factory) -> tuple[Path, Path]:
    """Eight J-HMDB wave videos in a folder of their own, and the root an uninterrupted prepare makes of them."""
    base = tmp_path_factory.mktemp("prepare")
    (base / "videos" / "wave").mkdir(parents=True)
    for p in sorted((fixtures / "real/videos/jhmdb_train/wave").glob("*.avi"))[:8]:
        shutil.copyfile(p, base / "videos" / "wave" / p.name)
    whole = base / "whole"
    r = run_cli(*_prepare_cmd(fixtures, base / "videos", whole))
    assert r.returncode == 0 and len(records_of(whole)) == 8, r.stderr
    return base / "videos", whole


def _prepare_cmd(fixtures: Path, videos: Path, out: Path) -> tuple[str, ...]:
    return ("synthact", "prepare", "hmdb51", "--videos", str(videos), "--splits", str(fixtures / "real/splits/hmdb51"),
            "--out", str(out), *PREPARE)


def _result(root: Path) -> tuple:
    """What a prepared root holds, less the time each video took: records, lists and every frame's bytes."""
    records = sorted(({k: v for k, v in r.items() if k != "seconds"} for r in records_of(root)),
                     key=lambda r: r["clip"])
    lists = {p.name: p.read_text() for p in sorted((root / C.ANNOTATIONS).iterdir())}
    frames = {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / C.RAWFRAMES).rglob("*.jpg"))}
    flowed = sorted(r["clip"] for r in records_of(root, C.FLOW_MANIFEST))
    return records, lists, frames, flowed


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_prepare_records_only_whole_videos_and_its_rerun_ends_as_an_unstopped_one(fixtures, eight_videos,
                                                                                           tmp_path, sig):
    videos, whole = eight_videos
    out = tmp_path / "real"
    proc = subprocess.Popen([str(BIN / "synthact"), *_prepare_cmd(fixtures, videos, out)[1:]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    err, _ = _stop(proc, sig, out / C.MANIFEST, 1)
    listed = records_of(out)
    _check_stopped(err, sig, proc, len(listed), 8)
    assert 1 <= len(listed) < 8, "the run finished before the signal: nothing was interrupted"
    recorded = {r["clip"] for r in listed}
    assert {r["clip"] for r in records_of(out, C.FLOW_MANIFEST)} <= recorded
    for rec in listed:    # only whole videos are recorded: every frame and every flow pair
        folder = C.clip_dir(out, rec["clip"])
        assert C.count_frames(folder) == rec["num_frames"] and rec["flow_pairs"] == rec["num_frames"] - 1
        assert len(list(folder.glob("flow_x_*.jpg"))) == len(list(folder.glob("flow_y_*.jpg"))) == rec["flow_pairs"]
    for clip in C.iter_clips(out):    # a clip folder in view is recorded, or its record waits beside it
        assert clip in recorded or C.pending_path(out, clip).exists(), clip
    for path in (out / C.ANNOTATIONS).glob("*.txt") if (out / C.ANNOTATIONS).is_dir() else ():
        assert {e.clip for e in C.read_annotations(path)} <= recorded, path
    r = run_cli(*_prepare_cmd(fixtures, videos, out))     # the rerun finishes the rest
    assert r.returncode == 0, r.stderr
    assert C.leftovers(out) == 0 and _result(out) == _result(whole)
