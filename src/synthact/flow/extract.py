"""``extract-flow``: TSN-encoded optical flow for every clip of a rawframe root.

Flow of a clip is computed into a staging copy of its folder (frames hard-linked) and swapped in
whole, then recorded in ``flow.jsonl``; ``flow.json`` at the root says how the flow was made and a
root never mixes methods. One OpenCV thread per worker process: parallelism is over clips.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2

from .. import contract as C
from ..batch import run_batch
from ..errors import BadConfig, MissingDependency, warn
from ..executor import LOCAL, Executor, cluster_gpus
from ..progress import Progress
from ..provenance import differences, versions
from ..rootlock import root_lock
from .methods import METHODS, check_method, make_flow


def flow_info(method: str, bound: float = C.FLOW_BOUND, state_dtype: str = "float32") -> C.FlowInfo:
    """The ``flow.json`` record of an OpenCV-defined method computed here (tvl1-torch with
    ``--half-state``: ``stateDtype: float16`` in its params)."""
    params = METHODS[method]["params"]
    if state_dtype != "float32":
        params = {**params, "stateDtype": state_dtype}
    return C.FlowInfo(method, params, METHODS[method]["opencv"], bound, C.FLOW_ENCODING,
                      cv2.__version__, "grayscale frames at the stored frame size", versions())


def _state_dtype(info: C.FlowInfo) -> str:
    return info.params.get("stateDtype", "float32") if isinstance(info.params, dict) else "float32"


def claim_root(root: Path, info: C.FlowInfo, resume: bool, overwrite: bool) -> None:
    """Write ``flow.json``, or check that the one there agrees; never mix methods in a root."""
    path = Path(root) / C.FLOW_INFO
    old = C.FlowInfo.read(root)
    if old is not None and not overwrite:
        if not old.same_flow(info):
            raise BadConfig(f"{path}: this root holds {old.method} flow (bound {old.bound}); "
                            f"refusing to mix in {info.method} (use another root, or --overwrite)")
        if _state_dtype(old) != _state_dtype(info):
            raise BadConfig(f"{path}: this root holds {old.method} flow with a {_state_dtype(old)} iteration "
                            f"state; refusing to mix in {_state_dtype(info)} (--half-state must match; use "
                            f"another root, or --overwrite)")
        if not resume:
            raise BadConfig(f"{path}: flow already extracted here; pass --resume to finish it or "
                            f"--overwrite to recompute")
        changed = differences(old.versions)
        if changed:
            warn(f"{path}: this flow was started with other versions ({', '.join(changed)})")
        return
    if overwrite:
        (Path(root) / C.FLOW_MANIFEST).unlink(missing_ok=True)
    info.write(root)


def clip_flow(frames_dir: Path, out_dir: Path, flow, bound: float = C.FLOW_BOUND) -> int:
    """Write flow pairs for the ``img_#####.jpg`` frames of ``frames_dir`` into ``out_dir``."""
    n = C.count_frames(frames_dir)
    if n < 2:
        raise C.BadData(f"{frames_dir}: {n} frame(s), flow needs at least 2")
    prev = C.read_image(frames_dir / C.img_name(1), gray=True)
    for k in range(1, n):
        nxt = C.read_image(frames_dir / C.img_name(k + 1), gray=True)
        C.write_flow_pair(out_dir, k, flow(prev, nxt), bound)
        prev = nxt
    return n - 1


# ------------------------------------------------------------------ worker side
_FLOW = None


def init_flow_worker(method: str) -> None:
    """Worker start: one OpenCV thread (parallelism is over clips) and the method built once."""
    global _FLOW
    cv2.setNumThreads(1)
    _FLOW = make_flow(method)


class FlowTask(NamedTuple):
    """One clip's flow, as a worker receives it."""

    root: str   # the rawframe root
    clip: str   # ``<class>/<clip>``


def flow_task(task: FlowTask) -> dict:
    """Flow of ``task.clip`` swapped into its folder; returns its flow manifest line (clip, pairs, seconds)."""
    root, clip = task
    start = time.perf_counter()
    with C.restaged(Path(root), clip) as tmp:  # frames read where the user knows them (same files)
        pairs = clip_flow(C.clip_dir(Path(root), clip), tmp, _FLOW)
    return {"clip": clip, "pairs": pairs, "seconds": round(time.perf_counter() - start, 3)}


# ------------------------------------------------------------------ main side
@dataclass
class FlowSummary:
    """Counts of an extract-flow run and its failed clips."""

    clips: int
    skipped: int
    done: int = 0
    pairs: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)
    nodes: dict = field(default_factory=dict)   # machine -> clips it computed

    @property
    def ok(self) -> bool:
        """True when no clip failed."""
        return not self.failures


def run_flow(root: Path, method: str, workers: int | None, resume: bool = False, overwrite: bool = False,
             progress: bool = True, device: str | None = None, batch: int = 64,
             decode_on_device: bool = False, wait: bool = False, executor: Executor = LOCAL,
             half_state: bool = False) -> FlowSummary:
    """Flow for every clip of the rawframe root ``root`` that lacks it: ``workers`` processes for
    the OpenCV methods; ``device`` and ``batch`` pairs for tvl1-torch (under Ray: one GPU per
    worker where the cluster has GPUs; ``half_state``: its iteration state stored in float16,
    recorded in ``flow.json``). The root is locked for the run; ``flow.json`` changes only once the
    method is known to run here."""
    root = Path(root)
    check_method(method)
    if half_state and method != "tvl1-torch":
        raise BadConfig(f"--half-state is a tvl1-torch option, not one of {method}")
    state_dtype = "float16" if half_state else "float32"
    if not (root / C.RAWFRAMES).is_dir():
        raise BadConfig(f"{root}: no {C.RAWFRAMES}/ folder: not a rawframe root")
    executor.start()
    if method == "tvl1-torch":
        if not executor.is_ray:
            device = torch_device(device)
        elif device is None:  # under Ray the workers' machines have the devices, not necessarily this one
            device = "cuda" if cluster_gpus(executor) else "cpu"
        executor.require(torch_resources(device))   # before flow.json is claimed
    else:
        make_flow(method)  # fails here, before the root is touched, where OpenCV lacks the method
    with root_lock(root, wait):
        executor.check_root(root)
        return _flow_locked(root, method, workers, resume, overwrite, progress, device, batch, decode_on_device,
                            executor, state_dtype)


def torch_device(device: str | None) -> str:
    """tvl1-torch's device: ``cuda`` when torch sees one and none is named; a named one must exist."""
    import torch
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BadConfig(f"--device {device!r}: not a torch device (cpu, cuda, cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MissingDependency(f"--device {device}: torch sees no CUDA device here (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise BadConfig(f"--device {device}: tvl1-torch runs on cpu or cuda")
    return device


def _flow_locked(root: Path, method: str, workers: int | None, resume: bool, overwrite: bool, progress: bool,
                 device: str | None, batch: int, decode_on_device: bool, executor: Executor,
                 state_dtype: str = "float32") -> FlowSummary:
    C.recover_staging(root)
    claim_root(root, flow_info(method, state_dtype=state_dtype), resume, overwrite)
    all_clips = list(C.iter_clips(root))
    done = {r.clip for r in C.repair_manifest(root, C.FLOW_MANIFEST)}
    todo = [c for c in all_clips if c not in done]
    summary = FlowSummary(clips=len(all_clips), skipped=len(all_clips) - len(todo))

    def record(result: dict) -> int:
        C.append_manifest(root, {**result, "method": method}, C.FLOW_MANIFEST)
        summary.done += 1
        return result["pairs"]

    if method == "tvl1-torch":
        assert device is not None   # run_flow names tvl1-torch's device before the root is claimed
        if not executor.is_ray:
            return _run_torch(root, todo, summary, record, device, batch, progress, decode_on_device, state_dtype)
        res = _run_torch_ray(root, todo, summary, record, device, batch, progress, decode_on_device, workers,
                             executor, state_dtype)
    else:
        res = run_batch(flow_task, [FlowTask(str(root), c) for c in todo], workers, name=lambda t: t.clip,
                        on_ok=lambda out: record(out.result),
                        initializer=init_flow_worker, initargs=(method,), desc=f"flow {method}", rate="pairs/s",
                        progress=progress, executor=executor, resources={"num_cpus": 1})
    summary.failures += res.failures
    summary.seconds, summary.pairs, summary.nodes = res.seconds, res.work, res.nodes
    return summary


def torch_resources(device: str) -> dict:
    """What one tvl1-torch worker reserves under Ray: its GPU, or a CPU."""
    return {"num_gpus": 1} if device.startswith("cuda") else {"num_cpus": 1}


def _run_torch_ray(root: Path, todo: list[str], summary: FlowSummary, record, device: str, batch: int,
                   progress: bool, decode_on_device: bool, workers: int | None, executor: Executor,
                   state_dtype: str = "float32"):
    """tvl1-torch on Ray: groups of clips, each group one task on a worker holding one GPU (its CUDA
    context kept across tasks); a group is big enough to fill the device's batches."""
    from .torch_extract import TorchFlowTask, torch_flow_task
    per = torch_resources(device)
    slots = workers or executor.slots(per)
    size = max(1, min(64, -(-len(todo) // (4 * slots))))  # about four groups per worker: balance and retries
    groups = [TorchFlowTask(str(root), tuple(todo[i:i + size]), device, batch, decode_on_device, state_dtype)
              for i in range(0, len(todo), size)]

    def finished(out) -> int:
        for clip, err in out.result["failures"]:
            summary.failures.append((clip, err))
        return sum(record(r) for r in out.result["done"])

    return run_batch(torch_flow_task, groups, slots, name=lambda t: f"{t.clips[0]} (+{len(t.clips) - 1})",
                     on_ok=finished, desc=f"flow tvl1-torch ({device}, groups of {size})", unit="group",
                     rate="pairs/s", progress=progress, executor=executor, resources=per)


def _run_torch(root: Path, todo: list[str], summary: FlowSummary, record, device: str, batch: int,
               progress: bool, decode_on_device: bool, state_dtype: str = "float32") -> FlowSummary:
    from .torch_extract import run_torch_flow
    from .tvl1_torch import TVL1Params
    start = time.perf_counter()
    bar = Progress(len(todo), f"flow tvl1-torch ({device})", "clip", "pairs/s", enabled=progress)
    summary.pairs = run_torch_flow(root, todo, device, batch, record,
                                   lambda clip, err: summary.failures.append((clip, err)), progress=bar,
                                   params=TVL1Params(state_dtype=state_dtype), decode_on_device=decode_on_device)
    bar.close()
    summary.seconds = time.perf_counter() - start
    return summary
