"""``synthact prepare``: real HMDB-51 / UCF-101 videos -> a rawframe root with flow and split lists.

Each video is decoded (frames counted by decoding: containers lie), resized, written as
``img_#####.jpg`` into a staging folder, given flow (optional) and swapped into place; then one
manifest line. Corrupt, truncated, empty and one-frame videos fail alone; videos listed in a split
but missing on disk are reported. Annotation lists are written for the three official splits.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2

from .. import contract as C
from ..batch import run_batch
from ..errors import BadConfig
from ..executor import LOCAL, Executor
from ..flow import extract
from ..flow.methods import make_flow
from ..rootlock import root_lock
from .splits import Splits, load_splits, subset_classes
from .video import decode_video


@dataclass
class PrepareJob:
    """What ``synthact prepare`` decodes: a dataset's videos and splits into the root ``out``."""

    dataset: str
    videos: Path
    splits: Path
    out: Path
    classes: str | None = None
    flow: str | None = None
    size: tuple[int, int] = (340, 256)
    workers: int | None = 1   # None under Ray: as many as the cluster's CPUs
    wait: bool = False       # wait for another job writing the root instead of refusing
    executor: Executor = LOCAL
    strict_frames: bool = False   # refuse a video whose container declares more frames than decode


@dataclass
class PrepareSummary:
    """Counts of a prepare run, its failures, missing videos and the lists it wrote."""

    videos: int
    skipped: int
    done: int = 0
    frames: int = 0
    missing: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    seconds: float = 0.0
    lists: list = field(default_factory=list)
    nodes: dict = field(default_factory=dict)   # machine -> videos it prepared
    short: list = field(default_factory=list)   # (clip, decoded, declared) of videos decoding fewer frames


_FLOW = None


def _init_worker(method: str | None) -> None:
    global _FLOW
    cv2.setNumThreads(1)
    _FLOW = make_flow(method) if method else None


class PrepareTask(NamedTuple):
    """One video to prepare, as a worker receives it."""

    root: str               # the rawframe root written
    clip: str               # ``<class>/<clip>``
    video: str              # the video file
    size: tuple[int, int]   # frame width, height
    dataset: str            # hmdb51 | ucf101, recorded in the manifest line
    replace: bool           # the clip's folder is this run's own (a rerun adding flow): replace it
    strict: bool = False    # --strict-frames


def prepare_task(task: PrepareTask) -> dict:
    """Decode ``task.video`` (and its flow, when the worker has a method) into the clip's folder,
    swapped in whole; returns its manifest line."""
    _, clip, video, size, dataset, replace, strict = task
    root = Path(task.root)
    start = time.perf_counter()
    record: dict = {}
    with C.staged_clip(root, clip, replace=replace, record=record) as tmp:
        info = decode_video(Path(video), (size[0], size[1]), lambda k, frame: C.write_jpeg(tmp / C.img_name(k), frame),
                            strict)
        pairs = extract.clip_flow(tmp, tmp, _FLOW) if _FLOW else 0
        record.update({"clip": clip, "source": video, "size": list(size), **info.record(), "flow_pairs": pairs,
                       "seconds": round(time.perf_counter() - start, 3), "dataset": dataset})
    return record


def write_dataset_lists(root: Path, splits: Splits, frames: dict[str, int]) -> list[Path]:
    """``<dataset>_{train,val}_split_{k}_rawframes.txt`` over prepared videos, and the label map."""
    label = {c: i for i, c in enumerate(splits.classes)}
    paths = [C.label_map_path(root, splits.dataset)]
    C.write_lines(paths[0], splits.classes)
    for k in (1, 2, 3):
        for kind, part in (("train", splits.train), ("val", splits.test)):
            path = C.split_list_path(root, splits.dataset, kind, k)
            C.write_annotations(path, [C.Entry(v.clip, frames[v.clip], label[v.cls])
                                       for v in part[k] if v.clip in frames])
            paths.append(path)
    return paths


def prepare(job: PrepareJob, progress: bool = True) -> PrepareSummary:
    """Decode the split files' videos of ``job.dataset`` into the rawframe root ``job.out`` (with
    flow when ``job.flow``) and write its split lists; the root is locked for the run."""
    root = Path(job.out)
    splits = load_splits(job.dataset, job.splits)
    splits = splits.restrict(subset_classes(job.dataset, job.classes, splits.classes))
    if not Path(job.videos).is_dir():
        raise BadConfig(f"{job.videos}: videos folder not found")
    if job.flow:
        make_flow(job.flow)  # fails here, before the root is touched, where OpenCV lacks the method
    job.executor.start()
    with root_lock(root, job.wait):
        return _prepare_locked(job, root, splits, progress)


def _prepare_locked(job: PrepareJob, root: Path, splits: Splits, progress: bool) -> PrepareSummary:
    job.executor.check_root(root)
    C.claim_settings(root, {"kind": "real", "dataset": job.dataset, "size": list(job.size)})
    lines = C.reconcile(root)
    if job.flow:
        extract.claim_root(root, extract.flow_info(job.flow), resume=True, overwrite=False)
    frames = {r.clip: r.num_frames for r in lines}   # of the clips done
    ours = set(frames)
    if job.flow:  # a clip prepared earlier without flow is not done for this run
        with_flow = {r.clip for r in C.read_manifest(root, C.FLOW_MANIFEST)}
        frames = {k: v for k, v in frames.items() if k in with_flow}
    videos = splits.videos()
    summary = PrepareSummary(videos=len(videos), skipped=0)
    tasks = []
    for v in videos:
        path = C.inside(job.videos, Path(job.videos) / v.relpath, f"{splits.sources[v.clip]}: {v.relpath}")
        if v.clip in frames:
            summary.skipped += 1
        elif not os.path.lexists(path):   # a broken link or a loop is on disk: it fails alone, saying so
            summary.missing.append((v.clip, f"listed in {splits.sources[v.clip]} but missing: {path}"))
        else:
            tasks.append(PrepareTask(str(root), v.clip, str(path), (job.size[0], job.size[1]), job.dataset,
                                     v.clip in ours, job.strict_frames))

    def record(out) -> int:
        rec = out.result
        clip, n, declared = rec["clip"], rec["num_frames"], rec["declared_frames"]
        C.append_manifest(root, rec)
        C.clear_pending(root, clip)
        if job.flow:
            C.append_manifest(root, {"clip": clip, "pairs": rec["flow_pairs"], "method": job.flow}, C.FLOW_MANIFEST)
        frames[clip] = n
        summary.done += 1
        if declared > n:
            summary.short.append((clip, n, declared))
        return n

    res = run_batch(prepare_task, tasks, job.workers, name=lambda t: t.clip, on_ok=record, initializer=_init_worker,
                    initargs=(job.flow,), desc=f"prepare {job.dataset}", unit="video", rate="frames/s",
                    progress=progress, executor=job.executor, resources={"num_cpus": 1})
    summary.failures, summary.seconds, summary.frames, summary.nodes = res.failures, res.seconds, res.work, res.nodes
    summary.lists = write_dataset_lists(root, splits, frames)
    if summary.missing:
        C.write_lines(root / C.MISSING, [f"{c}: {why}" for c, why in summary.missing])
    return summary
