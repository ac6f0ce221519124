"""``synthact prepare``: real HMDB-51 / UCF-101 videos -> a rawframe root with flow and split lists.

Each video is decoded (frames counted by decoding: containers lie), resized, written as
``img_#####.jpg`` into a staging folder, given flow (optional) and swapped into place; then one
manifest line. Corrupt, truncated, empty and one-frame videos fail alone; videos listed in a split
but missing on disk are reported. Annotation lists are written for the three official splits.
"""
from __future__ import annotations

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

TRUNCATION_SLACK = 2  # HMDB containers declare one frame more than they decode


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


def decode_video(path: Path, size: tuple[int, int], out_dir: Path) -> dict:
    """Write resized frames of ``path`` as ``img_#####.jpg``; the count comes from decoding."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise C.ContractError(f"{path}: cannot open video (corrupt, empty or not a video)")
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    n, shape = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        shape = frame.shape[:2]
        C.write_jpeg(out_dir / C.img_name(n), cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    cap.release()
    if n == 0:
        raise C.ContractError(f"{path}: no frame decodes (corrupt or empty video)")
    if n == 1:
        raise C.ContractError(f"{path}: only one frame decodes; flow needs two")
    if declared > 0 and n < declared - TRUNCATION_SLACK:
        raise C.ContractError(f"{path}: truncated: decoded {n} of the {declared} frames its container declares")
    return {"num_frames": n, "declared_frames": declared, "fps": round(fps, 3),
            "source_size": [int(shape[1]), int(shape[0])]}


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


def prepare_task(task: PrepareTask) -> dict:
    """Decode ``task.video`` (and its flow, when the worker has a method) into the clip's folder,
    swapped in whole; returns its manifest line."""
    root, clip, video, size, dataset, replace = task
    root = Path(root)
    start = time.perf_counter()
    record: dict = {}
    with C.staged_clip(root, clip, replace=replace, record=record) as tmp:
        info = decode_video(Path(video), tuple(size), tmp)
        pairs = extract.clip_flow(tmp, tmp, _FLOW) if _FLOW else 0
        record.update({"clip": clip, "source": video, "size": list(size), **info, "flow_pairs": pairs,
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
    done = {r["clip"]: r for r in lines}
    ours = set(done)
    if job.flow:  # a clip prepared earlier without flow is not done for this run
        with_flow = {r["clip"] for r in C.read_manifest(root, C.FLOW_MANIFEST)}
        done = {k: v for k, v in done.items() if k in with_flow}
    videos = splits.videos()
    summary = PrepareSummary(videos=len(videos), skipped=0)
    tasks = []
    for v in videos:
        path = C.inside(job.videos, Path(job.videos) / v.relpath, f"{splits.sources[v.clip]}: {v.relpath}")
        if v.clip in done:
            summary.skipped += 1
        elif not path.exists():
            summary.missing.append((v.clip, f"listed in {splits.sources[v.clip]} but missing: {path}"))
        else:
            tasks.append(PrepareTask(str(root), v.clip, str(path), tuple(job.size), job.dataset, v.clip in ours))

    def record(out) -> int:
        C.append_manifest(root, out.result)
        C.clear_pending(root, out.result["clip"])
        if job.flow:
            C.append_manifest(root, {"clip": out.result["clip"], "pairs": out.result["flow_pairs"],
                                     "method": job.flow}, C.FLOW_MANIFEST)
        done[out.result["clip"]] = out.result
        summary.done += 1
        return out.result["num_frames"]

    res = run_batch(prepare_task, tasks, job.workers, name=lambda t: t.clip, on_ok=record, initializer=_init_worker,
                    initargs=(job.flow,), desc=f"prepare {job.dataset}", unit="video", rate="frames/s",
                    progress=progress, executor=job.executor, resources={"num_cpus": 1})
    summary.failures, summary.seconds, summary.frames, summary.nodes = res.failures, res.seconds, res.work, res.nodes
    summary.lists = write_dataset_lists(root, splits, {c: r["num_frames"] for c, r in done.items()})
    if summary.missing:
        C.write_lines(root / C.MISSING, [f"{c}: {why}" for c, why in summary.missing])
    return summary
