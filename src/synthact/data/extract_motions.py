"""``synthact motions extract``: a motion library from a dataset's own training videos.

Each video (its class is its folder, as the datasets lay them out) goes through the pose
estimator (:mod:`.pose_video`) and the clean-up (:mod:`.motion_cleanup`); every kept segment
becomes one BVH (:mod:`.capture_bvh`) under ``LIB/<class>/``. A video's result is recorded in
``LIB/.videos/<class>/<video>.json`` once its captures are written, so a killed run loses nothing
and a rerun goes on with the videos not yet done; ``LIB/motions.yaml`` (what ``render-clips
--motions`` reads) and ``LIB/extraction.json`` (settings and the summary) are rewritten from
those records at the end of every run.

With a split given only the videos that split trains on are used: a test video is refused
unless ``allow_test``, and the library records that choice; a video the split does not use is
skipped and listed.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import contract as C
from ..errors import BadConfig, BadData, one_line
from ..rootlock import root_lock
from . import motion_cleanup as M
from .capture_bvh import write_capture
from .splits import load_splits

VIDEO_EXT = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
RECORDS = ".videos"
LIBRARY = "motions.yaml"
INFO = "extraction.json"


@dataclass
class Video:
    """A video to read: its class (its folder's name), path and role in the split."""

    cls: str
    path: Path
    role: str = "unsplit"    # train | test | unused | unsplit (no split given)

    @property
    def stem(self) -> str:
        """The file name without its extension."""
        return self.path.stem


@dataclass
class ExtractSummary:
    """What a run did: videos read, skipped by the split, captures kept, segments dropped and why."""

    videos: int = 0
    with_person: int = 0
    kept: int = 0
    dropped: list = field(default_factory=list)   # (video, frames, reason)
    skipped: list = field(default_factory=list)   # (video, reason): not read
    failed: list = field(default_factory=list)    # (video, error): its worker failed; a rerun retries it
    frames: int = 0
    seconds: float = 0.0
    classes: dict = field(default_factory=dict)   # class -> {videos, with_person, kept, dropped}
    library: str = ""

    @property
    def fps(self) -> float:
        """Frames estimated per second of estimation (decoding included), over the library's videos."""
        return self.frames / self.seconds if self.seconds else 0.0


def find_videos(paths: list[Path]) -> list[Video]:
    """The videos named, or found in the folders named: a folder's own videos take its name as
    their class, and so do those of each ``<class>/`` folder in it."""
    out: list[Video] = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(Video(C.check_name(p.parent.resolve().name, "class", p), p))
            continue
        if not p.is_dir():
            raise BadData(f"{p}: no such video or folder")
        found = [Video(C.check_name(p.resolve().name, "class", p), f) for f in _videos_in(p)]
        for sub in sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")):
            found += [Video(C.check_name(sub.name, "class", sub), f) for f in _videos_in(sub)]
        if not found:
            raise BadData(f"{p}: no videos ({', '.join(VIDEO_EXT)}) in it or in its <class>/ folders")
        out += found
    for v in out:
        C.check_name(v.stem, "video", v.path)
    return out


def _videos_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXT)


def assign_roles(videos: list[Video], dataset: str | None, splits: Path | None, split: int | None,
                 allow_test: bool, val_split: int | None = None) -> None:
    """Each video's role in the official split (train, test or unused); a test video is refused
    in one line unless ``allow_test``: a generator tuned on test videos makes every later number a lie.
    With ``val_split`` the training videos that split tests on are held out too (role ``held``):
    they validate the runs that will train on this library (train-tsn ``--real DATASET:splitK-valJ``)."""
    if dataset is None:
        if splits is not None or split is not None:
            raise BadConfig("--splits and --split need --dataset hmdb51|ucf101")
        return
    if splits is None or split is None:
        raise BadConfig(f"--dataset {dataset} needs --splits DIR and --split 1|2|3")
    if split not in (1, 2, 3):
        raise BadConfig(f"--split {split}: choose 1, 2 or 3")
    s = load_splits(dataset, splits)
    train = {v.clip for v in s.train[split]}
    test = {v.clip for v in s.test[split]}
    held = {v.clip for v in s.test[val_split]} if val_split else set()
    for v in videos:
        clip = f"{v.cls}/{v.stem}"
        v.role = "train" if clip in train else "test" if clip in test else "unused"
        if v.role == "train" and clip in held:
            v.role = "held"
    tests = [v for v in videos if v.role == "test"]
    if tests and not allow_test:
        more = f" (and {len(tests) - 1} more)" if len(tests) > 1 else ""
        raise BadConfig(f"{tests[0].path}: a test video of {dataset} split {split}{more}; motion taken from it "
                        f"would leak the test set into training (pass --allow-test to use it, recorded in the library)")


def _record_path(lib: Path, v: Video) -> Path:
    return lib / RECORDS / v.cls / f"{v.stem}.json"


def extract_video(v: Video, lib: Path, split_name: str | None) -> dict:
    """Estimate, clean and write the captures of one video; its record (see the module doc)."""
    from .pose_video import estimate
    t0 = time.perf_counter()
    try:
        track = estimate(v.path)
    except BadData as exc:
        return {"video": str(v.path), "class": v.cls, "role": v.role, "frames": 0, "seconds": 0.0,
                "error": one_line(exc), "segments": []}
    segs = []
    for i, seg in enumerate(M.clean(track), start=1):
        entry = {"frames": [seg.start, seg.end - 1], "body": seg.body, "quality": seg.quality,
                 "visibility": seg.visibility, "filled": seg.filled, "steps": seg.steps}
        if seg.dropped:
            entry["dropped"] = seg.dropped
        else:
            rel = f"{v.cls}/{v.stem}_{i}.bvh"
            (lib / v.cls).mkdir(parents=True, exist_ok=True)
            assert seg.travel is not None   # clean() gives every segment it keeps its travel
            write_capture(lib / rel, seg.points, seg.travel, track.fps)
            why = _unmapped(lib / rel)
            if why:
                (lib / rel).unlink()
                entry["dropped"] = f"not mapped as a standing human ({why})"
            else:
                entry["file"] = rel
        segs.append(entry)
    found = int(track.found.sum())
    return {"video": str(v.path), "class": v.cls, "role": v.role, "split": split_name, "frames": len(track.found),
            "fps": track.fps, "size": list(track.size), "person_share": round(found / len(track.found), 4),
            "seconds": round(time.perf_counter() - t0, 3), "segments": segs}


def _unmapped(path: Path) -> str | None:
    """Why the structural mapper (what render-clips uses) cannot read a capture, or None: a person
    bent over or lying for most of a segment is not taken for a biped."""
    from ..render.mocap import key_map
    try:
        key_map(str(path), path.stat().st_mtime_ns, None)
    except BadData as exc:
        return one_line(exc).split(": not mapped as a human skeleton: ")[-1]
    return None


def _extract_task(task: tuple[Video, Path, str | None]) -> str:
    """One video in a worker process: its captures, then its record (the mark that it is done)."""
    v, lib, split_name = task
    rec = extract_video(v, lib, split_name)
    path = _record_path(lib, v)
    path.parent.mkdir(parents=True, exist_ok=True)
    C.atomic_write(path, json.dumps(rec, indent=1))
    return str(v.path)


def extract_motions(paths: list[Path], out: Path, dataset: str | None = None, splits: Path | None = None,
                    split: int | None = None, allow_test: bool = False, progress=None,
                    workers: int = 1, val_split: int | None = None) -> ExtractSummary:
    """Extract a motion library from ``paths`` (videos or folders) into ``out`` (see the module
    doc), ``workers`` videos at a time; ``progress(done, total, video)`` is called after each video.
    A video whose worker fails is listed in ``failed`` and left for a rerun."""
    from .pose_video import mediapipe_pose
    videos = find_videos(paths)
    if val_split is not None and (split is None or val_split == split):
        raise BadConfig(f"--val-split {val_split}: needs --split, and another split than it")
    assign_roles(videos, dataset, splits, split, allow_test, val_split)
    mediapipe_pose()   # a missing estimator is refused before anything is written
    out = Path(out)
    with root_lock(out):   # one run per library: two would interleave records and motions.yaml
        return _extract_locked(videos, out, dataset, split, val_split, allow_test, progress, workers)


def _extract_locked(videos: list[Video], out: Path, dataset, split, val_split, allow_test, progress,
                    workers: int) -> ExtractSummary:
    from ..batch import run_tasks
    from .pose_video import estimator_version
    split_name = f"{dataset} split {split}" if dataset else None
    s = ExtractSummary(library=str(out / LIBRARY))
    s.skipped = [(str(v.path), f"not in {split_name}'s training list") for v in videos if v.role == "unused"]
    s.skipped += [(str(v.path), f"held out to validate: {dataset} split {val_split} tests on it")
                  for v in videos if v.role == "held"]
    todo = [(v, out, split_name) for v in videos if v.role not in ("unused", "held")
            and not _record_path(out, v).is_file()]
    done = len(videos) - len(todo)
    for o in run_tasks(_extract_task, todo, workers):
        done += 1
        if not o.ok:
            s.failed.append((str(o.task[0].path), o.error))
        if progress:
            progress(done, len(videos), o.task[0].path)
    used = {str(v.path) for v in videos if v.role not in ("unused", "held")}
    # only this run's videos: records an earlier run left for another split or selection stay out
    records = [r for r in (json.loads(p.read_text()) for p in sorted((out / RECORDS).glob("*/*.json")))
               if r.get("video") in used]
    _write_library(out, records, s, dataset, split, allow_test, estimator_version(), val_split)
    return s


def _source(rec: dict, seg: dict) -> dict:
    return {"video": rec["video"], "frames": seg["frames"], "fps": rec["fps"], "split": rec.get("split") or "none",
            "role": rec["role"], "person_share": rec["person_share"], "body": seg["body"],
            "travel": "estimated" if seg["body"] == "full" else "none (upper body)"}


def _write_library(out: Path, records: list[dict], s: ExtractSummary, dataset, split, allow_test, estimator,
                   val_split=None) -> None:
    """motions.yaml and extraction.json from every video's record; the summary's counts."""
    motions: dict[str, list] = {}
    for rec in records:
        c = s.classes.setdefault(rec["class"], {"videos": 0, "with_person": 0, "kept": 0, "dropped": 0})
        c["videos"] += 1
        s.videos += 1
        s.frames += rec["frames"]
        s.seconds += rec["seconds"]
        if rec.get("error"):
            # the reason alone (its line names the video already), so that the summary counts reasons
            s.dropped.append((rec["video"], None, rec["error"].removeprefix(f"{rec['video']}: ")))
            c["dropped"] += 1
            continue
        person = rec["person_share"] > 0
        s.with_person += person
        c["with_person"] += person
        for seg in rec["segments"]:
            if "file" in seg:
                motions.setdefault(rec["class"], []).append(
                    {"file": seg["file"], "quality": seg["quality"], "source": _source(rec, seg)})
                s.kept += 1
                c["kept"] += 1
            else:
                s.dropped.append((rec["video"], seg["frames"], seg["dropped"]))
                c["dropped"] += 1
    if motions:
        C.atomic_write(out / LIBRARY, yaml.safe_dump({"motions": dict(sorted(motions.items()))}, sort_keys=False))
    else:   # an earlier run's library would still list captures this run's selection leaves out
        (out / LIBRARY).unlink(missing_ok=True)
    info = {"estimator": estimator, "dataset": dataset, "split": split, "val_split": val_split,
            "allow_test": allow_test,
            "test_videos_used": sorted(r["video"] for r in records if r["role"] == "test"),
            "settings": {"seen": M.SEEN, "max_gap_s": M.MAX_GAP, "switch_torsos": M.SWITCH,
                         "min_seconds": M.MIN_SECONDS, "min_visibility": M.MIN_VISIBILITY,
                         "smooth_s": M.SMOOTH, "smooth_travel_s": M.SMOOTH_TRAVEL, "fov_deg": M.FOV},
            "videos": s.videos, "with_person": s.with_person, "kept": s.kept,
            "dropped": [{"video": v, "frames": f, "reason": r} for v, f, r in s.dropped],
            "skipped": [{"video": v, "reason": r} for v, r in s.skipped],
            "failed": [{"video": v, "error": e} for v, e in s.failed], "classes": s.classes}
    C.write_json(out / INFO, info)


def summary_line(s: ExtractSummary) -> str:
    """One line: videos read, with a person, segments kept, dropped and why, frames per second."""
    reasons: dict[str, int] = {}
    for _, _, r in s.dropped:
        key = r.split(" (")[0]
        reasons[key] = reasons.get(key, 0) + 1
    why = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
    skipped = f", {len(s.skipped)} skipped (not in the training split, or held out)" if s.skipped else ""
    skipped += f", {len(s.failed)} failed" if s.failed else ""
    return (f"{s.videos} videos read ({len(s.classes)} classes), {s.with_person} with a person{skipped}; "
            f"{s.kept} segments kept, {len(s.dropped)} dropped" + (f" ({why})" if why else "")
            + f"; {s.fps:.1f} frames/s -> {s.library}")
