"""Typed clip records: the manifest lines they write are byte for byte those written before the
records were typed (tests/clip_records.json), lines of every earlier version read back, and a
misspelt or missing key is one line naming the manifest file and line."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from synthact import contract as C
from synthact.errors import BadData
from synthact.render.jobs import RenderJob, render_batch
from synthact.render.record import CapturedMotion, ProceduralMotion, manifest_line, read_clip, read_records
from synthact.render.sampling import sample_record

from .conftest import run_cli

BEFORE = json.loads((Path(__file__).parent / "clip_records.json").read_text())


def _line(record) -> str:
    return json.dumps(manifest_line(record), sort_keys=True)  # as contract.append_manifest writes it


def _sample(args: dict):
    return sample_record(args["cls"], args["batch_seed"], args["index"], args["frames"], args["fps"],
                         tuple(args["size"]), args["engine"], args["gt_flow"], args.get("motions"),
                         [tuple(b) for b in args["bodies"]] if args.get("bodies") else None)


@pytest.mark.parametrize("case", BEFORE["sampled"], ids=lambda c: f"{c['args']['cls']}-{c['args']['index']}")
def test_sampled_records_write_the_bytes_they_wrote_before(case):
    assert _line(_sample(case["args"])) == case["line"]


def test_one_record_per_class_writes_the_bytes_it_wrote_before():
    sweep, base = BEFORE["sweep"], BEFORE["sampled"][0]["args"]
    text = "".join(_line(_sample({**base, **sweep["args"], "cls": c})) + "\n" for c in sweep["classes"])
    assert hashlib.sha256(text.encode()).hexdigest() == sweep["sha256"]


@pytest.mark.slow
def test_a_rendered_job_writes_the_lines_it_wrote_before(tmp_path):
    job = BEFORE["rendered"]["job"]
    out = tmp_path / "synth"
    s = render_batch(RenderJob(out=out, classes=job["classes"], per_class=job["per_class"], frames=job["frames"],
                               size=tuple(job["size"]), body=job["body"]), progress=False)
    assert s.ok, s.failures
    text = (out / C.MANIFEST).read_text().splitlines()
    timed = [json.loads(t) for t in text]
    assert all(r.pop("render_seconds") >= 0 for r in timed)  # a timing: the one key that may differ
    assert sorted(json.dumps(r, sort_keys=True) for r in timed) == sorted(BEFORE["rendered"]["lines"])
    # read back and written again: the same bytes
    assert [_line(r) for r in read_records(out)] == text


def _older(line: str) -> dict:
    """A line as the first versions wrote it: no motion (procedural) and no body model (the mannequin)."""
    rec = json.loads(line)
    del rec["motion"], rec["body"]["model"]
    return rec


def test_lines_of_every_version_read_back_and_write_the_same_object():
    rendered = {**json.loads(BEFORE["rendered"]["lines"][0]), "render_seconds": 1.25}
    first = {**_older(BEFORE["sampled"][0]["line"]), **{k: rendered[k] for k in
                                                          ("num_frames", "camera_distance", "camera_follows",
                                                           "render_seconds")}}
    capture = {**json.loads(next(c["line"] for c in BEFORE["sampled"] if '"bvh"' in c["line"])),
               "num_frames": 64, "camera_distance": 3.5, "camera_follows": True, "render_seconds": 2.0,
               "motion_used": {"capture_fps": 120.0, "start_frame": 3, "end_frame": 40, "speed_used": 1.0}}
    before_bodies = copy.deepcopy(capture)
    del before_bodies["body"]["model"]
    makehuman = next(json.loads(r) for r in BEFORE["rendered"]["lines"] if '"makehuman"' in r)
    makehuman["render_seconds"] = 0.5
    for line in (rendered, first, capture, before_bodies, makehuman):
        rec = read_clip(line, "manifest.jsonl:1")
        assert manifest_line(rec) == line
    old = read_clip(first, "manifest.jsonl:1")
    assert old.motion is None and old.moved_by == ProceduralMotion() and old.body.model_name == "mannequin"
    cap = read_clip(capture, "manifest.jsonl:1")
    assert isinstance(cap.motion, CapturedMotion) and cap.motion.bone_map is None and cap.motion.frames is None
    assert "null" in json.dumps(manifest_line(cap)["motion"])  # a capture's unset frame range stays written


def _fake_root(tmp_path: Path) -> tuple[Path, list[dict], RenderJob]:
    """A root holding the clips of the rendered job of clip_records.json (empty folders: a rerun
    reads the manifest before it renders anything)."""
    job = BEFORE["rendered"]["job"]
    root = tmp_path / "synth"
    lines = [{**json.loads(t), "render_seconds": 0.1} for t in BEFORE["rendered"]["lines"]]
    for rec in lines:
        C.clip_dir(root, rec["clip"]).mkdir(parents=True)
    return root, lines, RenderJob(out=root, classes=job["classes"], per_class=job["per_class"],
                                  frames=job["frames"], size=tuple(job["size"]), body=job["body"])


def _write(root: Path, lines: list[dict]) -> None:
    (root / C.MANIFEST).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in lines))


@pytest.mark.slow
@pytest.mark.parametrize("damage, message", [
    (lambda r: r.update(camra=r.pop("camera")), "unknown key 'camra' in the record (misspelt?)"),
    (lambda r: r["body"].pop("height"), "the record has no 'body.height' key"),
    (lambda r: r["light"].update(strength="bright"), "'light.strength' is \"bright\", expected a finite number"),
    (lambda r: r["body"].pop("phenotype"), "the record has no 'body.phenotype' key (a makehuman body)"),
    (lambda r: r["motion"].update(source="mocap"), "'motion.source' is \"mocap\", expected 'procedural' or 'bvh'"),
    (lambda r: r.update(action=[1, 2]), "'action' is a list, expected a JSON object"),
])
def test_a_bad_key_read_back_is_one_line_naming_the_manifest_and_line(tmp_path, damage, message):
    root, lines, job = _fake_root(tmp_path)
    makehuman = next(i for i, r in enumerate(lines) if r["body"].get("model") == "makehuman")
    damage(lines[makehuman])
    _write(root, lines)
    where = f"{root / C.MANIFEST}:{makehuman + 1}: "
    with pytest.raises(BadData) as exc:
        read_records(root)
    assert str(exc.value) == where + message
    with pytest.raises(BadData) as exc:  # a rerun reads the manifest back before it renders
        render_batch(job, progress=False)
    assert str(exc.value) == where + message


@pytest.mark.slow
def test_a_rerun_over_a_misspelt_manifest_exits_2_with_one_line(tmp_path):
    root, lines, job = _fake_root(tmp_path)
    lines[2]["camera"]["azimth"] = lines[2]["camera"].pop("azimuth")
    _write(root, lines)
    r = run_cli("render-clips", "--out", str(root), "--classes", job.classes, "--per-class", str(job.per_class),
                "--frames", str(job.frames), "--size", "64x48", "--body", job.body, "--quiet")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"error: {root / C.MANIFEST}:3: unknown key 'camera.azimth' in the record (misspelt?)"
