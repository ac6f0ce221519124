"""``extract-flow --method tvl1-torch``: batched TV-L1 over many clips at once, on CUDA or CPU.

Flow is computed for ``batch`` pairs at once on the device and quantised there. Threads read and
decode the next clips' frames (into pinned host memory on CUDA, about two batches ahead), and
worker processes (:mod:`.writer_pool`, kept across calls) encode and write the finished flow
images, while the device works. Frames are decoded on the CPU by default: measured on an H100
(BENCHMARKS.md), torchvision's nvjpeg decode called from those threads made the whole run 3.2x
slower, so it is an option (``decode_on_device``). Each clip is restaged, swapped in whole and
recorded in ``flow.jsonl`` exactly as with the OpenCV methods; a clip that cannot be read fails
alone.

``breakdown=Breakdown()`` records where the time went (off unless asked): the main thread's
phases, which sum to the wall time, and the busy time of the reader threads and writer processes,
which overlap it.
"""
from __future__ import annotations

import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .. import contract as C
from .writer_pool import WRITERS, drop_pool, writer_pool  # the tests and benchmarks find these here too

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that use it: the writer processes import this module to
# find write_clip, and they only encode JPEGs (importing torch there cost seconds per process).

READ_AHEAD_BATCHES = 2   # pairs decoded ahead of the batch being computed, in batches
READ_AHEAD_MIN = 8       # clips, at least
READERS = max(2, min(8, (os.cpu_count() or 4) // 2))

# the main thread's phases (they sum to the wall time) and the helpers' busy time (overlapped)
MAIN_PHASES = ("start-up (writer pool, imports)", "wait for reads", "H2D copy", "compute", "D2H + quantise",
               "hand-off to writers", "wait for writers (tail)", "other")
HELPER_PHASES = ("read files", "decode JPEG", "encode JPEG", "write + commit")


@dataclass
class Breakdown:
    """Seconds per phase of one :func:`run_torch_flow` call (pass one to collect them).

    ``main``: what the launching thread did, summing to ``wall``; on CUDA, ``compute`` ends with a
    device synchronise so it holds the kernels' time, not just their launches. ``helpers``: busy
    seconds of the reader threads and writer processes, summed over them (they overlap ``main``)."""

    main: dict = field(default_factory=lambda: defaultdict(float))
    helpers: dict = field(default_factory=lambda: defaultdict(float))
    wall: float = 0.0
    pairs: int = 0
    clips: int = 0
    batches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def phase(self, name: str, sync=None):
        """Time the body as ``name`` (``sync``: called before the clock stops, e.g. a device sync)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if sync is not None:
                sync()
            self.main[name] += time.perf_counter() - t0

    def add_helper(self, times: dict) -> None:
        """Add a reader's or writer's busy seconds per phase."""
        with self._lock:
            for k, v in times.items():
                self.helpers[k] += v

    def close(self, wall: float) -> None:
        """Add one call's wall time; "other" is what the named phases leave of it."""
        self.wall += wall
        self.main["other"] = max(0.0, self.wall - sum(v for k, v in self.main.items() if k != "other"))

    def table(self) -> str:
        """A markdown table: phase, seconds, share of the wall time."""
        rows = ["| phase | seconds | share of wall |", "|---|---|---|"]
        rows += [f"| {k} | {self.main.get(k, 0.0):.3f} | {self.main.get(k, 0.0) / self.wall:.3f} |"
                 for k in MAIN_PHASES if self.wall]
        rows.append(f"| **wall** ({self.clips} clips, {self.pairs} pairs, {self.batches} batches) | "
                    f"{self.wall:.3f} | {sum(self.main.values()) / self.wall if self.wall else 0:.3f} |")
        rows += [f"| {k} (busy, overlapped: {READERS if k in HELPER_PHASES[:2] else WRITERS} "
                 f"{'threads' if k in HELPER_PHASES[:2] else 'processes'}) | {self.helpers.get(k, 0.0):.3f} | "
                 f"{self.helpers.get(k, 0.0) / self.wall if self.wall else 0:.3f} |" for k in HELPER_PHASES]
        return "\n".join(rows)


@dataclass
class Clip:
    """A clip's grey frames (host, pinned on CUDA; or on the device when decoded there), or the
    one-line reason they could not be read."""

    clip: str
    frames: "torch.Tensor | None" = None  # noqa: F821 - (n, H, W) uint8
    error: str | None = None

    @property
    def loaded(self) -> "torch.Tensor":  # noqa: F821
        """The frames of a clip that was read (a failed one never reaches the computation)."""
        assert self.frames is not None, self.error
        return self.frames


def read_clip(root: Path, clip: str, device, decode_on_device: bool = False, times: dict | None = None) -> Clip:
    """Decode a clip's frames (strictly: a cut-short JPEG fails the clip) as grey levels: on the
    host (pinned when ``device`` is CUDA) or, with ``decode_on_device``, on ``device``."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg
    device = torch.device(device)
    folder = C.clip_dir(root, clip)
    t0 = time.perf_counter()
    try:
        n = C.count_frames(folder)
        if n < 2:
            raise C.BadData(f"{folder}: {n} frame(s), flow needs at least 2")
        data = [torch.frombuffer(bytearray(C.check_jpeg((folder / C.img_name(k)).read_bytes(),
                                                        folder / C.img_name(k))), dtype=torch.uint8)
                for k in range(1, n + 1)]
        t1 = time.perf_counter()
        try:
            imgs = decode_jpeg(data, mode=ImageReadMode.GRAY, device=device if decode_on_device else "cpu")
        except RuntimeError as e:
            raise C.BadData(f"{folder}: a frame is not a readable JPEG ({str(e).splitlines()[0]})") from None
        if len({tuple(i.shape) for i in imgs}) != 1:
            raise C.BadData(f"{folder}: frames differ in size")
        if decode_on_device:
            frames = torch.stack(imgs)[:, 0]
        else:  # straight into page-locked memory on CUDA: the H2D copy is then a DMA, not staged
            frames = torch.empty((n, *imgs[0].shape[1:]), dtype=torch.uint8, pin_memory=device.type == "cuda")
            torch.stack([i[0] for i in imgs], out=frames)
        if times is not None:
            times["read files"] = times.get("read files", 0.0) + t1 - t0
            times["decode JPEG"] = times.get("decode JPEG", 0.0) + time.perf_counter() - t1
        return Clip(clip, frames)
    except (C.BadData, OSError) as e:
        return Clip(clip, error=str(e))


def write_clip(root: Path, clip: str, q: np.ndarray) -> dict:
    """Encode (P, H, W, 2) quantised flow with the contract's writer into the clip's staging copy
    (on the CPU, overlapping the device: torchvision's CUDA encoder takes only 3-channel images)."""
    return _write_clip(root, clip, q)[0]


def _write_clip(root: Path, clip: str, q: np.ndarray) -> tuple[dict, dict]:
    """:func:`write_clip` and its seconds encoding and writing + committing."""
    start = time.perf_counter()
    encode = 0.0
    with C.restaged(root, clip) as tmp:
        for k in range(q.shape[0]):
            t0 = time.perf_counter()
            data = [C.encode_jpeg(q[k, :, :, c]) for c in range(2)]  # what C.write_flow_jpegs writes
            encode += time.perf_counter() - t0
            for name, d in zip(C.flow_names(k + 1), data, strict=True):
                (tmp / name).write_bytes(d)
    total = time.perf_counter() - start
    return ({"clip": clip, "pairs": q.shape[0], "seconds": round(total, 3)},
            {"encode JPEG": encode, "write + commit": total - encode})


# ------------------------------------------------------------------ compute
def flow_of_clips(clips: list[Clip], batch: int, params, bound: float, device=None,
                  breakdown: Breakdown | None = None) -> list[np.ndarray]:
    """Quantised flow (P, H, W, 2) uint8 of every clip, ``batch`` pairs at a time across clip borders."""
    import torch

    from .tvl1_torch import quantise, tvl1
    dev = torch.device(device) if device is not None else clips[0].loaded.device
    bd = breakdown if breakdown is not None else Breakdown()
    sync = (lambda: torch.cuda.synchronize(dev)) if breakdown is not None and dev.type == "cuda" else None
    with bd.phase("H2D copy", sync):
        frames = [c.loaded.to(dev, non_blocking=True) for c in clips]
        i0 = torch.cat([f[:-1] for f in frames])
        i1 = torch.cat([f[1:] for f in frames])
    n, h, w = i0.shape
    host = torch.empty((n, h, w, 2), dtype=torch.uint8, pin_memory=dev.type == "cuda")
    for s in range(0, n, batch):
        with bd.phase("compute", sync):
            f = tvl1(i0[s:s + batch], i1[s:s + batch], params)
        with bd.phase("D2H + quantise", sync):
            host[s:s + batch].copy_(quantise(f, bound), non_blocking=True)
        bd.batches += 1
    if dev.type == "cuda":
        with bd.phase("D2H + quantise"):
            torch.cuda.current_stream(dev).synchronize()
    return np.split(host.numpy(), np.cumsum([c.loaded.shape[0] - 1 for c in clips])[:-1])


class TorchFlowTask(NamedTuple):
    """A group of clips for one tvl1-torch worker (``extract-flow --executor ray``)."""

    root: str
    clips: tuple
    device: str
    batch: int
    decode_on_device: bool
    state_dtype: str = "float32"   # TVL1Params.state_dtype ("float16": --half-state)


def torch_flow_task(task: TorchFlowTask) -> dict:
    """Flow for a group of clips, committed per clip; their flow manifest lines and failures."""
    from .tvl1_torch import TVL1Params
    done: list[dict] = []
    failures: list[tuple[str, str]] = []
    run_torch_flow(Path(task.root), list(task.clips), task.device, task.batch, done.append,
                   lambda clip, err: failures.append((clip, err)), params=TVL1Params(state_dtype=task.state_dtype),
                   decode_on_device=task.decode_on_device)
    return {"done": done, "failures": failures}


def run_torch_flow(root: Path, clips: list[str], device: str, batch: int, on_done, on_fail,
                   params=None, bound: float = C.FLOW_BOUND, progress=None,
                   decode_on_device: bool = False, breakdown: Breakdown | None = None) -> int:
    """Flow for ``clips``; ``on_done(result)`` after each clip is committed, ``on_fail(clip, message)``
    for a clip that failed. Returns the number of pairs computed. ``params``: a ``TVL1Params``
    (default: OpenCV's defaults); ``breakdown``: filled with where the time went."""
    import torch

    from .tvl1_torch import TVL1Params
    params = TVL1Params() if params is None else params
    t_start = time.perf_counter()
    bd = breakdown if breakdown is not None else Breakdown()
    with bd.phase("start-up (writer pool, imports)"):
        pool = writer_pool()
        import torchvision.io  # noqa: F401 - the readers' decoder, loaded here rather than by the first read
    # Writers are processes: encoding threads would take the GIL from the loop that launches the
    # device's kernels. Reads are threads (file I/O and JPEG decoding release the GIL).
    with ThreadPoolExecutor(READERS) as readers:
        pairs = _FlowRun(root, torch.device(device), batch, params, bound, on_done, on_fail, progress,
                         decode_on_device, breakdown, bd, readers, pool, iter(clips)).run()
    if breakdown is not None:
        breakdown.pairs += pairs
        breakdown.clips += len(clips)
        breakdown.close(time.perf_counter() - t_start)
    return pairs


@dataclass
class _FlowRun:
    """One :func:`run_torch_flow` call's loop: clips read ahead by threads, gathered into groups of
    about ``batch`` pairs of one frame size for the device, handed to the writers and finished in order."""

    root: Path
    dev: torch.device
    batch: int
    params: object  # TVL1Params
    bound: float
    on_done: Callable
    on_fail: Callable
    progress: object
    decode_on_device: bool
    breakdown: Breakdown | None  # the caller's; None: the helpers' times are not collected
    bd: Breakdown                # the caller's, or a throw-away one
    readers: ThreadPoolExecutor
    pool: ProcessPoolExecutor    # replaced by a fresh one when a writer died
    todo: Iterator[str]
    reads: deque = field(default_factory=deque)    # read_clip futures, in clip order
    writes: deque = field(default_factory=deque)   # (clip, _write_clip future), in clip order
    group: list[Clip] = field(default_factory=list)
    seen_clips: int = 0
    seen_pairs: int = 0
    per_clip: float = 16.0  # running mean of pairs per clip, to size the read-ahead in pairs
    pairs: int = 0

    def run(self) -> int:
        """Read, compute and write every clip; the number of pairs computed."""
        self.top_up()
        while self.reads:
            with self.bd.phase("wait for reads"):
                c = self.reads.popleft().result()
            self.take(c)
        self.flush()
        with self.bd.phase("wait for writers (tail)"):
            for w in self.writes:
                _finish(w, self.on_done, self.on_fail, self.progress, self.breakdown, self.pool)
        return self.pairs

    def read(self, clip: str) -> Clip:
        """:func:`read_clip` on a reader thread, its busy time added to the breakdown."""
        times: dict | None = {} if self.breakdown is not None else None
        out = read_clip(self.root, clip, self.dev, self.decode_on_device, times)
        if times:
            self.bd.add_helper(times)
        return out

    def top_up(self) -> None:
        """Read ahead about READ_AHEAD_BATCHES batches of pairs (bounded memory)."""
        want = max(READ_AHEAD_MIN, int(READ_AHEAD_BATCHES * self.batch / max(self.per_clip, 1.0)) + 1)
        while len(self.reads) < want:
            c = next(self.todo, None)
            if c is None:
                break
            self.reads.append(self.readers.submit(self.read, c))

    def take(self, c: Clip) -> None:
        """One clip read: fail it, or add it to the group (computed when full or the size changes)."""
        if c.frames is not None:
            self.seen_clips += 1
            self.seen_pairs += c.frames.shape[0] - 1
            self.per_clip = self.seen_pairs / self.seen_clips
        self.top_up()
        if c.error:
            self.on_fail(c.clip, c.error)
            return
        if self.group and c.loaded.shape[1:] != self.group[0].loaded.shape[1:]:
            self.flush()
        self.group.append(c)
        if sum(g.loaded.shape[0] - 1 for g in self.group) >= self.batch:
            self.flush()
        while self.writes and self.writes[0][1].done():
            _finish(self.writes.popleft(), self.on_done, self.on_fail, self.progress, self.breakdown, self.pool)

    def flush(self) -> None:
        """Compute the group's flow and hand each clip to the writers; a device error fails the group."""
        if not self.group:
            return
        try:
            flows = flow_of_clips(self.group, self.batch, self.params, self.bound, self.dev, self.breakdown)
        except RuntimeError as e:  # e.g. out of device memory: these clips fail, the run goes on
            for c in self.group:
                self.on_fail(c.clip, f"{c.clip}: {str(e).splitlines()[0]}")
            self.group.clear()
            return
        with self.bd.phase("hand-off to writers"):
            for c, q in zip(self.group, flows, strict=True):
                try:
                    fut = self.pool.submit(_write_clip, self.root, c.clip, q)
                except BrokenProcessPool:  # a writer died earlier: start fresh ones
                    drop_pool(self.pool)
                    self.pool = writer_pool()
                    fut = self.pool.submit(_write_clip, self.root, c.clip, q)
                self.writes.append((c.clip, fut))
                self.pairs += q.shape[0]
        self.group.clear()


def _finish(item, on_done, on_fail, progress, breakdown=None, pool=None) -> None:
    clip, fut = item
    pairs = 0
    try:
        result, times = fut.result()
        if breakdown is not None:
            breakdown.add_helper(times)
        on_done(result)
        pairs = result["pairs"]
    except Exception as e:  # noqa: BLE001 - a clip that could not be written fails alone
        if isinstance(e, BrokenProcessPool) and pool is not None:
            drop_pool(pool)
        on_fail(clip, f"{clip}: {e}")
    if progress is not None:
        progress.update(1, pairs)
