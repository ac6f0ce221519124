"""Nothing written through a link, nothing read from outside (issue 22): the lock, temporary files,
compare's and export's output folders, merge's sources, shard indexes and profiles. Each case
refuses in one line with exit 2 before anything changes, and nothing outside the root changes."""
from __future__ import annotations

import fcntl
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthact import contract as C
from synthact import shards
from synthact.errors import BadData, RootBusy
from synthact.export import MARKER
from synthact.rootlock import LOCK, root_lock

from .conftest import BIN, records_of, refusal, run_cli
from .test_root_safety import _copy, snapshot

SMALL = ("--frames", "4", "--size", "64x48", "--quiet")


def _box(prepared: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the root in ``box/root`` and a user's file ``box/outside.txt`` beside it."""
    root, _ = _copy(prepared, tmp_path)
    outside = tmp_path / "box" / "outside.txt"
    outside.write_text("the user's own file\n")
    return root, outside


def _outside(tmp_path: Path, root: Path) -> dict:
    """Everything under ``box`` but the root."""
    return {k: v for k, v in snapshot(tmp_path / "box").items() if not k.startswith(root.name)}


# ---------------------------------------------------------------- 1, 21: the lock
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["symlink", "dangling", "hardlink", "fifo"])
def test_a_planted_lock_is_refused_and_nothing_outside_changes(prepared, tmp_path, kind):
    root, outside = _box(prepared, tmp_path)
    lock = root / LOCK
    lock.unlink(missing_ok=True)
    if kind == "symlink":
        lock.symlink_to(outside)
    elif kind == "dangling":
        lock.symlink_to(tmp_path / "box" / "created.txt")
    elif kind == "hardlink":
        os.link(outside, lock)
    else:
        os.mkfifo(lock)
    before = _outside(tmp_path, root)
    r = run_cli("extract-flow", "--root", str(root), "--method", "dis", "--quiet", timeout=120)
    line = refusal(r, str(lock))
    assert {"symlink": "symlink", "dangling": "symlink", "hardlink": "2 links", "fifo": "not a regular"}[kind] in line
    assert _outside(tmp_path, root) == before
    assert outside.read_text() == "the user's own file\n" and not (tmp_path / "box" / "created.txt").exists()


def test_a_held_lock_holding_json_that_is_not_a_mapping_names_another_process(tmp_path):
    (tmp_path / LOCK).write_text("[1, 2, 3]")
    fd = os.open(tmp_path / LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held as another holder would, by another open file
        with pytest.raises(RootBusy, match="in use by another process"):
            with root_lock(tmp_path):
                pass
        r = run_cli("render-clips", "--out", str(tmp_path), "--classes", "wave", "--per-class", "1", *SMALL)
        refusal(r, "in use by another process")
    finally:
        os.close(fd)


# ---------------------------------------------------------------- 2: temporary files
@pytest.mark.slow
def test_planted_temporary_files_are_never_written_through(prepared, tmp_path):
    root, outside = _box(prepared, tmp_path)
    for name in ("manifest.tmp", "manifest.jsonl.tmp", "root.json.tmp", "classes.txt.tmp",
                 "annotations/synthetic_rawframes.txt.tmp"):
        (root / name).symlink_to(outside)
    before = _outside(tmp_path, root)
    r = run_cli("render-clips", "--out", str(root), "--classes", "wave,clap", "--per-class", "3", *SMALL)
    assert r.returncode == 0, r.stderr
    assert _outside(tmp_path, root) == before
    for name in (C.MANIFEST, C.ROOT_SETTINGS, C.CLASSES, "annotations/synthetic_rawframes.txt"):
        assert not (root / name).is_symlink(), name
    assert len(records_of(root)) == 6


@pytest.mark.slow
def test_an_annotations_folder_linked_elsewhere_is_refused(prepared, tmp_path):
    root, _ = _box(prepared, tmp_path)
    elsewhere = tmp_path / "box" / "elsewhere"
    shutil.move(root / C.ANNOTATIONS, elsewhere)
    (root / C.ANNOTATIONS).symlink_to(elsewhere, target_is_directory=True)
    before = _outside(tmp_path, root)
    r = run_cli("render-clips", "--out", str(root), "--classes", "wave,clap", "--per-class", "2", *SMALL)
    refusal(r, str(root / C.ANNOTATIONS), "outside")
    assert _outside(tmp_path, root) == before


def test_atomic_write_never_writes_through_a_link_at_its_temporary_name_or_its_path(tmp_path, monkeypatch):
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    names = iter(["0" * 16, "1" * 16])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(names))  # the first name is taken
    (tmp_path / f".a.json.{'0' * 16}.tmp").symlink_to(outside)
    (tmp_path / "a.json").symlink_to(outside)
    C.write_json(tmp_path / "a.json", {"x": 1})
    assert outside.read_text() == "mine"
    assert not (tmp_path / "a.json").is_symlink() and C.read_json(tmp_path / "a.json") == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".a.json.0000000000000000.tmp", "a.json",
                                                                 "outside.txt"])


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_manifest_that_is_a_link_or_fifo_is_never_appended_to(tmp_path, kind):
    outside = tmp_path / "outside.jsonl"
    outside.write_text("")
    path = tmp_path / C.MANIFEST
    path.symlink_to(outside) if kind == "symlink" else os.mkfifo(path)
    with pytest.raises(BadData, match="refusing to write through it") as exc:
        C.append_manifest(tmp_path, {"clip": "wave/a"})
    assert "\n" not in str(exc.value) and outside.read_text() == ""


def test_a_hard_linked_manifest_is_made_the_roots_own_before_appending(tmp_path):
    outside = tmp_path / "copy.jsonl"  # as `cp -al` shares it with another root
    outside.write_text('{"clip": "wave/a"}\n')
    os.link(outside, tmp_path / C.MANIFEST)
    C.append_manifest(tmp_path, {"clip": "wave/b"})
    assert outside.read_text() == '{"clip": "wave/a"}\n'
    assert [r["clip"] for r in records_of(tmp_path)] == ["wave/a", "wave/b"]
    assert (tmp_path / C.MANIFEST).stat().st_nlink == 1


# ---------------------------------------------------------------- 3, 19: compare
@pytest.mark.slow
def test_compare_refuses_a_users_folder_and_replaces_its_own(prepared, tmp_path):
    root, _ = _box(prepared, tmp_path)
    user = tmp_path / "box" / "mine"
    user.mkdir()
    (user / "report.md").write_text("my report")
    (user / "stats.json").write_text("{}")
    before = _outside(tmp_path, root)
    r = run_cli("synthact", "compare", "--real", str(root), "--synthetic", str(root), "--out", str(user))
    refusal(r, str(user), "not empty")
    assert _outside(tmp_path, root) == before and not (user / LOCK).exists()
    out = tmp_path / "gap"
    for _ in range(2):  # its own folder: replaced
        r = run_cli("synthact", "compare", "--real", str(root), "--synthetic", str(root), "--out", str(out))
        assert r.returncode == 0, r.stderr
    assert json.loads((out / "stats.json").read_text())["gap"] == 0.0


@pytest.mark.slow
def test_compare_skips_and_lists_a_clip_whose_flow_images_differ_in_size(prepared, tmp_path):
    root, _ = _box(prepared, tmp_path)
    folder = C.clip_dir(root, "wave/wave_s0_00001")
    C.write_jpeg(folder / "flow_x_00002.jpg", np.full((24, 32), 128, np.uint8))
    r = run_cli("synthact", "compare", "--real", str(root), "--synthetic", str(prepared), "--out",
                str(tmp_path / "gap"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "skipped real wave/wave_s0_00001" in r.stderr and "differ in size" in r.stderr
    stats = json.loads((tmp_path / "gap" / "stats.json").read_text())
    assert [s["clip"] for s in stats["skipped"]] == ["wave/wave_s0_00001"]


# ---------------------------------------------------------------- 4, 9, 23: merge
@pytest.mark.slow
def test_merge_refuses_an_output_inside_a_source(prepared, tmp_path):
    root, _ = _box(prepared, tmp_path)
    before = snapshot(tmp_path / "box")
    r = run_cli("synthact", "merge", "--out", str(root / "merged"), str(root))
    refusal(r, "--out", "outside every source")
    assert snapshot(tmp_path / "box") == before


@pytest.mark.slow
def test_merge_never_follows_a_clip_link_inside_its_source(prepared, tmp_path):
    root, _ = _box(prepared, tmp_path)
    clip = C.clip_dir(root, "wave/wave_s0_00002")
    shutil.rmtree(clip)
    clip.symlink_to(C.clip_dir(root, "wave/wave_s0_00001"), target_is_directory=True)
    out = tmp_path / "merged"
    refusal(run_cli("synthact", "merge", "--out", str(out), str(root)), str(clip), "a link")
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_merge_checks_every_clip_before_committing_any(prepared, tmp_path, kind):
    root, outside = _box(prepared, tmp_path)
    last = C.clip_dir(root, records_of(root)[-1]["clip"])
    bad = last / "img_00003.jpg"
    bad.unlink()
    bad.symlink_to(outside) if kind == "symlink" else os.mkfifo(bad)
    out = tmp_path / "merged"
    refusal(run_cli("synthact", "merge", "--out", str(out), str(root), timeout=120), str(bad), "not a plain file")
    assert not out.exists()


# ---------------------------------------------------------------- 5, 6, 11, 15: shard indexes
@pytest.fixture(scope="module")
def sharded(prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "shards"
    r = run_cli("synthact", "export", str(prepared), "--format", "webdataset", "--out", str(out), "--shard-size", "2")
    assert r.returncode == 0, r.stderr
    return out


def _lied(sharded: Path, tmp_path: Path, change) -> Path:
    """A copy of the shard folder whose first index line ``change`` rewrote."""
    folder = tmp_path / "shards"
    shutil.copytree(sharded, folder)
    lines = [json.loads(ln) for ln in (folder / shards.INDEX).read_text().splitlines()]
    change(lines[0])
    (folder / shards.INDEX).write_text("".join(json.dumps(e) + "\n" for e in lines))
    shards.index.cache_clear()
    return folder


def _refused(call, *words: str) -> str:
    with pytest.raises(BadData) as exc:
        call()
    msg = str(exc.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    return msg


@pytest.mark.slow
@pytest.mark.parametrize("shard", ["/etc/passwd.tar", "../outside.tar", "sub/shard.tar", "shard-000000"])
def test_a_shard_outside_its_folder_is_refused(sharded, tmp_path, shard):
    (tmp_path / "outside.tar").write_bytes((sharded / "shard-000000.tar").read_bytes())
    folder = _lied(sharded, tmp_path, lambda e: e.update(shard=shard))
    msg = _refused(lambda: shards.entries(folder), f"{folder / shards.INDEX}:1", "shard")
    assert "etc/passwd" not in msg.replace(repr(shard), "") and str(tmp_path / "outside.tar") not in msg


@pytest.mark.slow
@pytest.mark.parametrize("change, field", [
    (lambda e: e.update(num_frames="4"), "num_frames"), (lambda e: e.pop("num_frames"), "num_frames"),
    (lambda e: e.update(members=[1, 2]), "members"),
    (lambda e: e["members"]["img_00001.jpg"].update(size="12"), "members.img_00001.jpg"),
    (lambda e: e["members"]["img_00001.jpg"].update(size=1e15), "members.img_00001.jpg"),
    (lambda e: e["members"]["img_00001.jpg"].update(size=10 ** 15), "members.img_00001.jpg"),
    (lambda e: e["members"]["img_00001.jpg"].update(offset=-1), "members.img_00001.jpg"),
    (lambda e: e.update(clip="nope/x"), "not in"),
])
def test_malformed_index_lines_are_refused_in_one_line(sharded, tmp_path, change, field):
    folder = _lied(sharded, tmp_path, change)
    _refused(lambda: shards.entries(folder), str(folder), field)


def _shift(e: dict) -> None:
    for m in e["members"].values():  # every member of the clip a block off: each read meets another header
        m["offset"] += 512


@pytest.mark.slow
@pytest.mark.parametrize("change, words", [(lambda e: e.update(shard="/etc/passwd.tar"), "shard"),
                                           (lambda e: e.update(num_frames="4"), "num_frames"),
                                           (_shift, "are not those of")])
def test_training_on_a_lying_index_is_refused_in_one_line(prepared, sharded, tmp_path, change, words):
    from synthact.data.target_domain import write_split_lists
    target = tmp_path / "target"
    shutil.copytree(prepared, target)
    write_split_lists(target, val_every=2)
    folder = _lied(sharded, tmp_path, change)
    r = run_cli("train-tsn", "--real", "target:split1", "--real-root", str(target), "--synthetic-root", str(folder),
                "--synthetic", "4", "--modality", "rgb", "--out", str(tmp_path / "run"), "--epochs", "1", "--size",
                "32", "--workers", "2", "--quiet")
    refusal(r, str(folder / shards.INDEX), words)


@pytest.mark.slow
def test_an_index_offset_that_lies_is_caught_at_the_members_header(sharded, tmp_path):
    good = json.loads((sharded / shards.INDEX).read_text().splitlines()[0])["members"]["img_00002.jpg"]
    folder = _lied(sharded, tmp_path, lambda e: e["members"].update({"img_00001.jpg": dict(good)}))
    e = next(iter(shards.index(str(folder)).values()))  # the first line, the one that lies
    _refused(lambda: shards.read_member(folder, e["clip"], "img_00001.jpg"), "img_00001.jpg", "not those of")
    assert shards.read_member(folder, e["clip"], "img_00002.jpg")[:2] == b"\xff\xd8"  # the truth still reads


@pytest.mark.slow
def test_a_fifo_or_link_as_shard_is_refused_without_blocking(sharded, tmp_path):
    folder = _lied(sharded, tmp_path, lambda e: None)
    e = next(iter(shards.index(str(folder)).values()))
    shard = folder / e["shard"]
    shard.unlink()
    os.mkfifo(shard)
    _refused(lambda: shards.read_member(folder, e["clip"], "img_00001.jpg"), str(shard), "not a regular file")
    shard.unlink()
    shard.symlink_to(sharded / e["shard"])
    shards._headers.cache_clear()
    _refused(lambda: shards.read_member(folder, e["clip"], "img_00001.jpg"), str(shard), "never followed")


# ---------------------------------------------------------------- 7: profiles
PROFILE = "overall: {body: {full: 1}, camera: {static: 1}, people: {1: 1}, view: {%s: 1}}\n"


@pytest.mark.slow
def test_two_profiles_with_one_name_never_mix_in_a_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "mine.yaml").write_text(PROFILE % "front")
    (tmp_path / "b" / "mine.yaml").write_text(PROFILE % "back")
    out = tmp_path / "synth"
    args = ("render-clips", "--out", str(out), "--classes", "wave", "--frames", "2", "--size", "64x48", "--quiet")
    r = run_cli(*args, "--per-class", "1", "--profile", str(tmp_path / "a" / "mine.yaml"))
    assert r.returncode == 0, r.stderr
    settings = C.recorded_settings(out)
    assert settings["profile"] == "mine" and len(settings["profile_sha256"]) == 64
    before = snapshot(out)
    r = run_cli(*args, "--per-class", "2", "--profile", str(tmp_path / "b" / "mine.yaml"))
    refusal(r, str(out / C.ROOT_SETTINGS), "profile_sha256")
    assert snapshot(out) == before
    r = run_cli(*args, "--per-class", "2", "--profile", str(tmp_path / "a" / "mine.yaml"))  # the same: added
    assert r.returncode == 0 and len(records_of(out)) == 2, r.stderr


# ---------------------------------------------------------------- 10, 20, 27: export
@pytest.mark.slow
@pytest.mark.parametrize("field, value", [("fps", "abc"), ("num_frames", "6"), ("num_frames", 0),
                                          ("fps", float("nan")), ("num_frames", 9)])
def test_export_refuses_manifest_values_that_make_no_video_before_writing(prepared, tmp_path, field, value):
    root, _ = _box(prepared, tmp_path)
    recs = records_of(root)
    recs[1][field] = value
    (root / C.MANIFEST).write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "box" / "mp4"
    refusal(run_cli("synthact", "export", str(root), "--format", "videos", "--out", str(out)), recs[1]["clip"],
            f"{root / C.MANIFEST}:2")
    assert not out.exists()


@pytest.mark.slow
def test_export_never_writes_a_video_short_of_its_frames_nor_leaves_a_folder(prepared, tmp_path):
    root, _ = _box(prepared, tmp_path)
    clip = records_of(root)[0]["clip"]
    C.write_jpeg(C.clip_dir(root, clip) / "img_00003.jpg", np.zeros((24, 32, 3), np.uint8))  # dropped by the writer
    out = tmp_path / "mp4"
    refusal(run_cli("synthact", "export", str(root), "--format", "videos", "--out", str(out)), clip, "decodes to")
    assert not (out / clip.split("/")[0]).exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK, MARKER])


@pytest.mark.slow
def test_a_refused_export_leaves_no_lock_in_a_users_folder(prepared, tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    for fmt in ("videos", "webdataset"):
        refusal(run_cli("synthact", "export", str(prepared), "--format", fmt, "--out", str(user)), "not empty")
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_an_export_killed_mid_way_is_finished_by_its_rerun(prepared, tmp_path):
    out = tmp_path / "shards"
    args = ("synthact", "export", str(prepared), "--format", "webdataset", "--out", str(out), "--shard-size", "1")
    proc = subprocess.Popen([str(BIN / args[0]), *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.time() + 120
    while time.time() < end and proc.poll() is None and not (out / "shard-000000.tar").exists():
        time.sleep(0.01)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (out / "shard-000002.tar").unlink(missing_ok=True)  # as if killed before its rename
    (out / ".shard-000002.tar.0123456789abcdef.tmp").write_bytes(b"torn")
    (out / shards.INDEX).unlink(missing_ok=True)
    r = run_cli(*args)
    assert r.returncode == 0 and "shards kept from an earlier run" in r.stdout, r.stdout + r.stderr
    assert not (out / ".shard-000002.tar.0123456789abcdef.tmp").exists()
    fresh = tmp_path / "fresh"
    assert run_cli(*args[:-3], str(fresh), "--shard-size", "1").returncode == 0
    assert (out / shards.INDEX).read_text() == (fresh / shards.INDEX).read_text()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in fresh.iterdir())
    for p in fresh.glob("*.tar"):
        assert (out / p.name).read_bytes() == p.read_bytes()
    r = run_cli(*args[:-2], "--shard-size", "2")  # another export into it: refused
    refusal(r, "shard_size")


# ---------------------------------------------------------------- the link fuzz: every file, every kind
STAGES = {  # a stage, and the files it writes in the folder it is given
    "render": ([C.MANIFEST, C.ROOT_SETTINGS, C.CLASSES, "annotations/synthetic_rawframes.txt", C.PREVIEW, LOCK,
                "render.log"],
               lambda root, out: ("render-clips", "--out", str(root), "--classes", "wave,clap", "--per-class", "3",
                                  *SMALL)),
    "flow": ([C.FLOW_MANIFEST, C.FLOW_INFO, LOCK],
             lambda root, out: ("extract-flow", "--root", str(root), "--method", "dis", "--quiet")),
    "merge": ([C.MANIFEST, C.ROOT_SETTINGS, C.FLOW_INFO, C.FLOW_MANIFEST, C.CLASSES, LOCK],
              lambda root, out: ("synthact", "merge", "--out", str(out), str(root))),
    "export": ([shards.INDEX, "shard-000000.tar", C.ROOT_SETTINGS, C.CLASSES, MARKER, LOCK],
               lambda root, out: ("synthact", "export", str(root), "--format", "webdataset", "--out", str(out))),
    "compare": (["report.md", "stats.json", "per_class.png", "compare.json", LOCK],
                lambda root, out: ("synthact", "compare", "--real", str(root), "--synthetic", str(root), "--out",
                                   str(out))),
}


CASES = [(stage, name, kind) for stage, (names, _) in STAGES.items() for name in names
         for kind in ("symlink", "hardlink", "fifo")]


@pytest.mark.slow
@pytest.mark.parametrize("stage, name, kind", CASES)
def test_link_fuzz_every_written_file_as_a_link_or_fifo(prepared, tmp_path, stage, name, kind):
    root, outside = _box(prepared, tmp_path)
    if stage == "flow":
        for n in (C.FLOW_MANIFEST, C.FLOW_INFO):
            (root / n).unlink()
    out = tmp_path / "box" / "out"
    out.mkdir()
    marker = {"compare": {"made_by": "synthact compare"},  # their own folder, as a killed run left it
              "export": {"made_by": "synthact export", "root": str(root.resolve()), "format": "webdataset",
                         "shard_size": 100}}.get(stage)
    if marker:
        (out / ("compare.json" if stage == "compare" else MARKER)).write_text(json.dumps(marker))
    folder = out if stage in ("merge", "export", "compare") else root
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    {"symlink": lambda: path.symlink_to(outside), "hardlink": lambda: os.link(outside, path),
     "fifo": lambda: os.mkfifo(path)}[kind]()
    before = _outside(tmp_path, root)
    r = run_cli(*STAGES[stage][1](root, out), timeout=300)
    if r.returncode != 0:
        refusal(r)
    after = _outside(tmp_path, root)
    assert outside.read_text() == "the user's own file\n"
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert all(k.startswith("out") for k in changed), changed  # only the stage's own output folder


RUN_FILES = ["checkpoint.pt", "model.pt", "config.json", "metrics.json", "log.csv", "confusion.png", "labels.npy",
             "scores_fast.npy", "train_list.txt", "val_list.txt", C.CLASSES, LOCK]


@pytest.fixture(scope="module")
def target(prepared, tmp_path_factory):
    """The small root with split lists, as a target domain to train on."""
    from synthact.data.target_domain import write_split_lists
    root = tmp_path_factory.mktemp("target") / "target"
    shutil.copytree(prepared, root)
    write_split_lists(root, val_every=2)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name, kind", random.Random(22).sample([(n, k) for n in RUN_FILES
                                                                  for k in ("symlink", "hardlink", "fifo")], 8))
def test_seeded_link_fuzz_of_a_training_run_folder(target, tmp_path, name, kind):
    """A run folder's files (a seeded eighth of them, each kind): trained or refused, nothing outside
    changed (a training run costs seconds, so not every case runs every time)."""
    (tmp_path / "box").mkdir()
    outside = tmp_path / "box" / "outside.txt"
    outside.write_text("the user's own file\n")
    run = tmp_path / "box" / "run"
    run.mkdir()
    path = run / name
    {"symlink": lambda: path.symlink_to(outside), "hardlink": lambda: os.link(outside, path),
     "fifo": lambda: os.mkfifo(path)}[kind]()
    before = _outside(tmp_path, run)
    r = run_cli("train-tsn", "--real", "target:split1", "--real-root", str(target), "--synthetic-root", str(target),
                "--synthetic", "2", "--modality", "rgb", "--out", str(run), "--epochs", "1", "--size", "32",
                "--workers", "0", "--eval-protocol", "fast", "--batch-size", "4", "--quiet", timeout=300)
    if r.returncode != 0:
        refusal(r)
    assert outside.read_text() == "the user's own file\n" and _outside(tmp_path, run) == before


@pytest.mark.slow
def test_tar_members_of_an_export_are_plain_files(sharded):
    with tarfile.open(sharded / "shard-000000.tar") as tar:
        assert all(m.isreg() for m in tar)


@pytest.mark.slow
def test_an_mp4_export_decodes_to_every_frame(prepared, tmp_path):
    out = tmp_path / "mp4"
    r = run_cli("synthact", "export", str(prepared), "--format", "videos", "--out", str(out))
    assert r.returncode == 0, r.stderr
    line = (out / C.ANNOTATIONS / "videos.txt").read_text().splitlines()[0]
    cap = cv2.VideoCapture(str(out / line.split()[0]))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 4


# ---------------------------------------------------------------- the link fuzz of prepare, ablate and mmaction2
KINDS = ("symlink", "dirlink", "hardlink", "fifo")   # a link to a file outside, a link to a folder outside


def _plant(path: Path, kind: str, outside: Path) -> None:
    """``kind`` at ``path`` (what was there removed): never to be written through by the stage."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    {"symlink": lambda: path.symlink_to(outside), "dirlink": lambda: path.symlink_to(outside.parent / "elsewhere"),
     "hardlink": lambda: os.link(outside, path), "fifo": lambda: os.mkfifo(path)}[kind]()


def _outside_box(tmp_path: Path) -> Path:
    """``box/outside.txt``, a user's file, and ``box/elsewhere/``, a user's folder holding one."""
    (tmp_path / "box" / "elsewhere").mkdir(parents=True)
    (tmp_path / "box" / "elsewhere" / "keep.txt").write_text("the user's own folder\n")
    outside = tmp_path / "box" / "outside.txt"
    outside.write_text("the user's own file\n")
    return outside


def _untouched(r: subprocess.CompletedProcess, tmp_path: Path, folder: Path, before: dict, outside: Path) -> None:
    """Done (exit 0), or refused in one line (a failed item: its own line in the report, exit 1), and
    nothing outside ``folder`` changed."""
    if r.returncode == 2:
        refusal(r)
    else:
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, (r.returncode, r.stderr)
    assert outside.read_text() == "the user's own file\n"
    assert _outside(tmp_path, folder) == before


@pytest.fixture(scope="module")
def two_videos(fixtures, tmp_path_factory) -> Path:
    """Two short J-HMDB wave videos in a videos folder of their own (the split's others: missing)."""
    videos = tmp_path_factory.mktemp("videos") / "videos"
    (videos / "wave").mkdir(parents=True)
    for p in sorted((fixtures / "real/videos/jhmdb_train/wave").glob("*.avi"), key=lambda p: p.stat().st_size)[:2]:
        shutil.copyfile(p, videos / "wave" / p.name)
    return videos


def _prepare_args(fixtures: Path, videos: Path, root: Path) -> tuple[str, ...]:
    return ("synthact", "prepare", "hmdb51", "--videos", str(videos), "--splits", str(fixtures / "real/splits/hmdb51"),
            "--out", str(root), "--classes", "wave", "--size", "64x48", "--flow", "dis", "--allow-missing",
            "--workers", "2", "--quiet")


def _first_clip(videos: Path) -> str:
    return f"wave/{sorted(p.stem for p in (videos / 'wave').glob('*.avi'))[0]}"


PREPARED = [C.MANIFEST, C.FLOW_MANIFEST, C.FLOW_INFO, C.ROOT_SETTINGS, "hmdb51_label_map.txt", C.MISSING, LOCK,
            "annotations/hmdb51_train_split_1_rawframes.txt", "annotations/hmdb51_val_split_3_rawframes.txt",
            C.ANNOTATIONS, C.RAWFRAMES, "rawframes/wave", "rawframes/wave/{clip}", "rawframes/wave/.tmp-{clip}"]


@pytest.mark.slow
@pytest.mark.parametrize("name, kind", [(n, k) for n in PREPARED for k in KINDS])
def test_link_fuzz_of_a_prepared_root(fixtures, two_videos, tmp_path, name, kind):
    """Every file and folder ``synthact prepare`` writes, planted as a link to a file or a folder
    outside, a hard link or a FIFO: prepared, or refused in one line, nothing outside changed."""
    outside = _outside_box(tmp_path)
    root = tmp_path / "box" / "root"
    root.mkdir()
    _plant(root / name.format(clip=_first_clip(two_videos).split("/")[1]), kind, outside)
    before = _outside(tmp_path, root)
    _untouched(run_cli(*_prepare_args(fixtures, two_videos, root), timeout=600), tmp_path, root, before, outside)


CELL = "s1_seed0_syn2_real1_rgb"
GRID = [LOCK, "config.resolved.yaml", "results.csv", "results.md", "accuracy_vs_synthetic.png", "per_class.md",
        "confusion", "confusion/rgb_real1_syn2.png", "cells", f"cells/{CELL}", f"cells/{CELL}/metrics.json",
        f"cells/{CELL}/checkpoint.pt"]
GRID_CASES = [(n, k) for n in GRID for k in KINDS]


@pytest.mark.slow
@pytest.mark.parametrize("name, kind", GRID_CASES if os.environ.get("SYNTHACT_FUZZ_ALL")
                         else random.Random(22).sample(GRID_CASES, 12))
def test_seeded_link_fuzz_of_an_ablation_folder(target, tmp_path, name, kind):
    """The files and folders of a one-cell grid (a seeded quarter of the cases; SYNTHACT_FUZZ_ALL=1:
    all): done, or refused in one line (a refused cell: recorded as failed, exit 1), nothing outside changed."""
    outside = _outside_box(tmp_path)
    grid = tmp_path / "box" / "grid"
    grid.mkdir()
    _plant(grid / name, kind, outside)
    spec = tmp_path / "grid.yaml"
    spec.write_text(json.dumps({"name": "tiny", "real": "target", "real_root": str(target),
                                "synthetic_root": str(target), "synthetic": [2], "eval_protocol": "fast",
                                "train": {"backbone": "mobilenet_v3_small", "size": 32, "epochs": 1, "batch_size": 4,
                                          "workers": 0}}))
    before = _outside(tmp_path, grid)
    r = run_cli("synthact", "ablate", "--config", str(spec), "--out", str(grid), "--quiet", timeout=600)
    _untouched(r, tmp_path, grid, before, outside)


MMACTION = ["mmaction2", "mmaction2/epoch_1.pth", "mmaction2/last_checkpoint", "mmaction2/mmaction2_config.py",
            "mmaction2_config.py", "mmaction2_train_list.txt", "mmaction2_val_list.txt", "metrics.json"]
MM_CASES = [(n, k) for n in MMACTION for k in KINDS]


@pytest.mark.slow
@pytest.mark.parametrize("name, kind", MM_CASES if os.environ.get("SYNTHACT_FUZZ_ALL")
                         else random.Random(22).sample(MM_CASES, 6))
def test_seeded_link_fuzz_of_an_mmaction2_run_folder(target, tmp_path, name, kind):
    """What ``train-tsn --engine mmaction2`` and mmengine write (a seeded few of the cases;
    SYNTHACT_FUZZ_ALL=1: all): trained, or refused in one line before mmengine starts, nothing outside changed."""
    pytest.importorskip("mmengine", reason="--engine mmaction2 needs `make mmaction`")
    outside = _outside_box(tmp_path)
    run = tmp_path / "box" / "run"
    run.mkdir()
    _plant(run / name, kind, outside)
    before = _outside(tmp_path, run)
    r = run_cli("train-tsn", "--engine", "mmaction2", "--real", "target:split1", "--real-root", str(target),
                "--synthetic-root", str(target), "--synthetic", "2", "--modality", "rgb", "--backbone", "resnet18",
                "--out", str(run), "--epochs", "1", "--val-interval", "0", "--size", "32", "--workers", "0",
                "--eval-protocol", "fast", "--batch-size", "4", "--quiet", timeout=600)
    if r.returncode == 2:
        refusal(r)
    else:  # mmengine logs its warnings to stderr: only the exit code and the files tell
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert outside.read_text() == "the user's own file\n" and _outside(tmp_path, run) == before


# ---------------------------------------------------------------- a refused train-tsn leaves no run folder
def _train(target: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("train-tsn", "--real", "target:split1", "--real-root", str(target), "--synthetic-root", str(target),
                   "--synthetic", "2", "--modality", "rgb", "--out", str(out), "--epochs", "1", "--size", "32",
                   "--workers", "0", "--eval-protocol", "fast", "--batch-size", "4", "--quiet", *extra)


@pytest.mark.slow
@pytest.mark.parametrize("change, words", [
    (lambda t, tmp: ("--real-root", str(tmp / "nowhere")), "annotation list not found"),
    (lambda t, tmp: ("--real", "target:split3"), "annotation list not found"),
    (lambda t, tmp: ("--synthetic", "1000"), "500 requested"),
    (lambda t, tmp: ("--resume",), "missing"),
])
def test_a_refused_training_run_leaves_no_folder_it_made(target, tmp_path, change, words):
    """Refused after the run folder's lock was taken (the selection, --resume): the folders the run
    made, its lock in them, are gone again; a folder that was there stays, lock and all."""
    out = tmp_path / "runs" / "new"
    refusal(_train(target, out, *change(target, tmp_path)), words)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    mine = tmp_path / "mine"
    mine.mkdir()
    refusal(_train(target, mine, *change(target, tmp_path)), words)
    assert mine.is_dir()


@pytest.mark.slow
def test_a_training_run_refused_by_the_lock_holder_leaves_its_folder_alone(target, tmp_path):
    out = tmp_path / "run"
    with root_lock(out):   # another job's run folder, held
        refusal(_train(target, out), str(out), "in use by")
        assert sorted(p.name for p in out.iterdir()) == [LOCK]
    assert sorted(p.name for p in out.iterdir()) == [LOCK]


@pytest.mark.parametrize("name", ["mmaction2", "mmaction2/last_checkpoint", "mmaction2/20261206_120000/vis_data"])
@pytest.mark.parametrize("kind", KINDS)
def test_mmaction2_work_folder_is_checked_before_mmengine_writes_it(tmp_path, name, kind):
    """mmengine follows links: a link or FIFO at its work folder or in it is refused in one line; a
    hard link is made the folder's own first, so the file elsewhere never changes."""
    from synthact.train.mmaction_engine import check_work_dir
    outside = _outside_box(tmp_path)
    work = tmp_path / "run" / "mmaction2"
    (work / "20261206_120000").mkdir(parents=True)
    (work / "epoch_1.pth").write_bytes(b"a checkpoint of this run")
    _plant(tmp_path / "run" / name, kind, outside)
    if kind == "hardlink" and name != "mmaction2":
        check_work_dir(work)
        assert (tmp_path / "run" / name).stat().st_nlink == 1 and outside.stat().st_nlink == 1
        assert (tmp_path / "run" / name).read_text() == outside.read_text() == "the user's own file\n"
    else:
        with pytest.raises(BadData, match="refusing to train") as exc:
            check_work_dir(work)
        assert "\n" not in str(exc.value) and str(tmp_path / "run" / name) in str(exc.value)
    assert name == "mmaction2" or (work / "epoch_1.pth").read_bytes() == b"a checkpoint of this run"
