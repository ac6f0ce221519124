"""Roots survive careless and hostile input: nothing outside a root changes, nothing unlisted is
deleted, names never climb out, settings never mix, and corrupt frames are never recorded as done."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthact import contract as C
from synthact.render.jobs import RenderJob, render_batch
from synthact.rootlock import LOCK

from .conftest import records_of, refusal, run_cli

SMALL = ("--frames", "4", "--size", "64x48", "--quiet")


def snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` (links not followed) with its size and modification time; the
    lock file, which every writer holds, is left out."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.name != LOCK:
            st = p.lstat()
            out[str(p.relative_to(folder))] = (0, 0) if p.is_dir() else (st.st_size, st.st_mtime_ns)
    return out


def _copy(prepared: Path, tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "box" / "root"
    shutil.copytree(prepared, root)
    return root, snapshot(tmp_path / "box")


@pytest.mark.slow
def test_render_into_a_root_without_its_manifest_deletes_nothing(prepared, tmp_path):
    root, before = _copy(prepared, tmp_path)
    (root / C.MANIFEST).unlink()
    (root / C.ROOT_SETTINGS).unlink()
    before = snapshot(tmp_path / "box")
    r = run_cli("render-clips", "--out", str(root), "--classes", "wave", "--per-class", "1", *SMALL)
    refusal(r, "does not list", "never deletes")
    after = snapshot(tmp_path / "box")
    assert {k for k in after if "rawframes" in k} == {k for k in before if "rawframes" in k}


@pytest.mark.slow
def test_a_symlinked_class_folder_is_refused_and_its_target_untouched(prepared, tmp_path):
    root, _ = _copy(prepared, tmp_path)
    outside = tmp_path / "outside"
    shutil.move(str(root / C.RAWFRAMES / "wave"), outside)
    (root / C.RAWFRAMES / "wave").symlink_to(outside, target_is_directory=True)
    (outside / "wave_s0_00001" / "user_file.txt").write_text("mine")
    lines = (root / C.MANIFEST).read_text().splitlines()
    (root / C.MANIFEST).write_text("".join(ln + "\n" for ln in lines if "clap/" in ln))
    before = snapshot(outside)
    r = run_cli("render-clips", "--out", str(root), "--classes", "wave,clap", "--per-class", "2", *SMALL)
    refusal(r, "outside")
    assert snapshot(outside) == before


@pytest.mark.slow
def test_merge_refuses_a_source_clip_that_climbs_out(prepared, tmp_path):
    src, _ = _copy(prepared, tmp_path)
    victim = tmp_path / "box" / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep")
    rec = records_of(src)[0]
    with open(src / C.MANIFEST, "a") as f:
        f.write(json.dumps({**rec, "clip": "../../victim"}) + "\n")
    before = snapshot(tmp_path / "box")
    r = run_cli("synthact", "merge", "--out", str(tmp_path / "box" / "out" / "merged"), str(src))
    refusal(r, "manifest.jsonl:5", "bad clip '../../victim'")
    assert snapshot(tmp_path / "box") == before


def test_annotation_lists_naming_parent_or_absolute_paths_are_refused(tmp_path):
    ann = tmp_path / "list.txt"
    for bad in ("../../etc/passwd 3 0", "/abs/clip 3 0", "wave/../x 3 0", "wave/.hidden 3 0"):
        ann.write_text(f"wave/ok 3 0\n{bad}\n")
        with pytest.raises(C.BadData, match=rf"{ann}:2: bad"):
            C.read_annotations(ann)


@pytest.mark.slow
def test_training_refuses_a_split_list_that_climbs_out(data, tmp_path):
    synth, target = data
    real = tmp_path / "real"
    shutil.copytree(target, real)
    ann = real / C.ANNOTATIONS / "target_train_split_1_rawframes.txt"
    ann.write_text(ann.read_text() + "../../../etc 3 0\n")
    n = len(ann.read_text().splitlines())
    r = run_cli("train-tsn", "--real", "target:split1", "--real-root", str(real), "--out", str(tmp_path / "run"),
                "--epochs", "1", "--size", "32", "--workers", "0", "--quiet")
    refusal(r, f"{ann}:{n}", "bad clip")


@pytest.mark.slow
def test_render_with_other_settings_into_a_root_is_refused_before_anything_changes(prepared, tmp_path):
    root, before = _copy(prepared, tmp_path)
    r = run_cli("render-clips", "--out", str(root), "--classes", "wave", "--per-class", "3", "--frames", "8",
                "--size", "128x96", "--seed", "2", "--quiet")
    refusal(r, "root.json", "frames=4", "size=[64, 48]", "frames=8", "size=[128, 96]")
    assert snapshot(tmp_path / "box") == before


@pytest.mark.slow
def test_a_root_made_before_root_json_keeps_its_settings(prepared, tmp_path):
    root, _ = _copy(prepared, tmp_path)
    (root / C.ROOT_SETTINGS).unlink()
    r = run_cli("render-clips", "--out", str(root), "--classes", "wave", "--per-class", "1", "--frames", "6",
                "--size", "64x48", "--seed", "5", "--quiet")
    refusal(r, "frames=4", "frames=6")


@pytest.mark.slow
def test_merge_into_a_root_with_other_settings_is_refused(prepared, tmp_path):
    other = tmp_path / "other"
    assert render_batch(RenderJob(out=other, classes="wave", per_class=1, frames=3, size=(64, 48), seed=9),
                        progress=False).ok
    root, before = _copy(prepared, tmp_path)
    r = run_cli("synthact", "merge", "--out", str(root), str(other))
    refusal(r, "frames=4", "frames=3")
    assert snapshot(tmp_path / "box") == before


@pytest.mark.slow
def test_merge_refuses_sources_with_other_body_models(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert render_batch(RenderJob(out=a, classes="wave", per_class=1, frames=2, size=(64, 48)), progress=False).ok
    assert render_batch(RenderJob(out=b, classes="wave", per_class=1, frames=2, size=(64, 48), seed=3,
                                  body="makehuman"), progress=False).ok
    r = run_cli("synthact", "merge", "--out", str(tmp_path / "m"), str(a), str(b))
    refusal(r, "bodies=['makehuman']", "bodies=['mannequin']")
    assert not (tmp_path / "m" / C.RAWFRAMES).exists()


@pytest.mark.slow
def test_prepare_rerun_with_another_size_is_refused(fixtures, tmp_path):
    args = ("synthact", "prepare", "ucf101", "--videos", str(fixtures / "real/videos/ucf101"),
            "--splits", str(fixtures / "real/splits/ucf101"), "--out", str(tmp_path / "ucf"), "--classes",
            "PushUps", "--allow-missing", "--quiet")
    assert run_cli(*args, "--size", "96x72").returncode == 0
    before = snapshot(tmp_path / "ucf")
    refusal(run_cli(*args, "--size", "128x96"), "size=[96, 72]", "size=[128, 96]")
    assert snapshot(tmp_path / "ucf") == before


@pytest.mark.slow
def test_flow_on_a_missing_gpu_leaves_the_flow_records_as_they_were(prepared, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    root, before = _copy(prepared, tmp_path)
    for extra in ((), ("--overwrite",)):
        r = run_cli("extract-flow", "--root", str(root), "--method", "tvl1-torch", "--device", "cuda", *extra)
        refusal(r, "--device cuda", "no CUDA device")
        assert snapshot(tmp_path / "box") == before
    refusal(run_cli("extract-flow", "--root", str(root), "--method", "tvl1-torch", "--device", "banana"),
            "--device 'banana'")


@pytest.mark.slow
def test_a_truncated_frame_fails_its_clip_and_is_never_recorded(prepared, tmp_path):
    root, _ = _copy(prepared, tmp_path)
    (root / C.FLOW_MANIFEST).unlink()
    (root / C.FLOW_INFO).unlink()
    frame = C.clip_dir(root, "wave/wave_s0_00001") / C.img_name(2)
    frame.write_bytes(frame.read_bytes()[: int(frame.stat().st_size * 0.9)])
    for method in ("dis", "tvl1-torch"):
        r = run_cli("extract-flow", "--root", str(root), "--method", method, "--device", "cpu", "--overwrite",
                    "--quiet") if method == "tvl1-torch" else \
            run_cli("extract-flow", "--root", str(root), "--method", method, "--quiet")
        assert r.returncode == 1, r.stderr
        assert f"{frame}: truncated JPEG" in r.stderr
        done = {x["clip"] for x in records_of(root, C.FLOW_MANIFEST)}
        assert "wave/wave_s0_00001" not in done and len(done) == 3
    with pytest.raises(C.BadData, match="truncated JPEG"):
        C.read_image(frame)


@pytest.mark.slow
def test_a_hidden_file_with_a_staging_name_is_not_deleted(prepared, tmp_path):
    root, _ = _copy(prepared, tmp_path)
    user = root / C.RAWFRAMES / "wave" / ".tmp-notes"
    user.write_text("a user's file that happens to look like ours")
    link_target = tmp_path / "elsewhere"
    link_target.mkdir()
    (link_target / "keep.txt").write_text("keep")
    (root / C.RAWFRAMES / "clap" / ".tmp-clap_x").symlink_to(link_target, target_is_directory=True)
    r = run_cli("render-clips", "--out", str(root), "--classes", "wave,clap", "--per-class", "2", *SMALL)
    assert r.returncode == 0, r.stderr
    assert user.read_text().startswith("a user's file")
    assert (link_target / "keep.txt").read_text() == "keep"


def test_a_bone_map_without_motions_is_refused(tmp_path):
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--classes", "wave", "--per-class", "1",
                "--bone-map", "daz", *SMALL)
    refusal(r, "--bone-map", "--motions")
    assert not (tmp_path / "o").exists()


def _mutate_jpeg(data: bytes, rng) -> tuple[str, bytes]:
    """A corrupt copy of a JPEG: cut short, emptied, replaced by noise, or given a foreign header."""
    kind = ["truncate", "empty", "noise", "header"][int(rng.integers(4))]
    if kind == "truncate":
        return kind, data[: int(rng.integers(2, len(data) - 2))]
    if kind == "empty":
        return kind, b""
    if kind == "noise":
        return kind, rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
    return kind, b"GIF89a" + data[6:]


@pytest.mark.slow
def test_fuzzed_frames_fail_their_clips_and_are_never_recorded(prepared, tmp_path):
    root, _ = _copy(prepared, tmp_path)
    (root / C.FLOW_MANIFEST).unlink()
    (root / C.FLOW_INFO).unlink()
    rng = np.random.default_rng(11)
    clips = sorted(r["clip"] for r in records_of(root))
    bad = {}
    for clip in clips[:3]:
        frame = C.clip_dir(root, clip) / C.img_name(int(rng.integers(1, 5)))
        kind, data = _mutate_jpeg(frame.read_bytes(), rng)
        assert data != frame.read_bytes()
        frame.write_bytes(data)
        bad[clip] = (frame, kind)
        with pytest.raises(C.BadData, match=str(frame)):
            C.read_image(frame)
    r = run_cli("extract-flow", "--root", str(root), "--method", "dis", "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    for clip, (frame, kind) in bad.items():
        assert f"failed {clip}: {frame}" in r.stderr, (kind, r.stderr)
    done = {x["clip"] for x in records_of(root, C.FLOW_MANIFEST)}
    assert done == set(clips) - set(bad)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_every_kind_of_mutated_frame_is_refused_naming_it(prepared, tmp_path, seed):
    frame = tmp_path / "img_00001.jpg"
    src = C.clip_dir(prepared, records_of(prepared)[0]["clip"]) / C.img_name(1)
    kind, data = _mutate_jpeg(src.read_bytes(), np.random.default_rng(seed))
    frame.write_bytes(data)
    with pytest.raises(C.BadData, match=str(frame)):
        C.read_image(frame, gray=bool(seed % 2))
