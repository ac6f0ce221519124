"""``extract-flow --method tvl1-torch``: batched TV-L1 over many clips at once, on CUDA or CPU.

Flow is computed for ``batch`` pairs at once on the device and quantised there. Threads read and
decode the next clips' frames, and worker processes encode and write the finished flow images,
while the device works. Frames are decoded on the CPU by default: measured on an H100
(BENCHMARKS.md), torchvision's nvjpeg decode called from those threads made the whole run 3.2x
slower, so it is an option (``decode_on_device``). Each clip is restaged, swapped in whole and
recorded in ``flow.jsonl`` exactly as with the OpenCV methods; a clip that cannot be read fails
alone.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from .. import contract as C
from .extract import restaged
from .tvl1_torch import TVL1Params, quantise, tvl1

READ_AHEAD = 64  # clips decoded ahead of the one being computed (a few hundred MB at 340x256)
READERS = 4
WRITERS = max(4, (os.cpu_count() or 4) - 2)  # JPEG encoding is the CPU's share of the work


@dataclass
class Clip:
    """A clip's grey frames on the device, or the one-line reason they could not be read."""

    clip: str
    frames: torch.Tensor | None = None  # (n, H, W) uint8 on the device
    error: str | None = None


def read_clip(root: Path, clip: str, device: torch.device, decode_on_device: bool = False) -> Clip:
    """Decode a clip's frames (strictly: a cut-short JPEG fails the clip) as grey levels on ``device``."""
    folder = C.clip_dir(root, clip)
    try:
        n = C.count_frames(folder)
        if n < 2:
            raise C.ContractError(f"{folder}: {n} frame(s), flow needs at least 2")
        data = [torch.frombuffer(bytearray(C.check_jpeg((folder / C.img_name(k)).read_bytes(),
                                                        folder / C.img_name(k))), dtype=torch.uint8)
                for k in range(1, n + 1)]
        try:
            imgs = decode_jpeg(data, mode=ImageReadMode.GRAY, device=device if decode_on_device else "cpu")
        except RuntimeError as e:
            raise C.ContractError(f"{folder}: a frame is not a readable JPEG ({str(e).splitlines()[0]})") from None
        if len({tuple(i.shape) for i in imgs}) != 1:
            raise C.ContractError(f"{folder}: frames differ in size")
        return Clip(clip, torch.stack(imgs)[:, 0].to(device))
    except (C.ContractError, OSError) as e:
        return Clip(clip, error=str(e))


def write_clip(root: Path, clip: str, q: np.ndarray) -> dict:
    """Encode (P, H, W, 2) quantised flow with the contract's writer into the clip's staging copy
    (on the CPU, overlapping the device: torchvision's CUDA encoder takes only 3-channel images)."""
    start = time.perf_counter()
    with restaged(root, clip) as tmp:
        for k in range(q.shape[0]):
            C.write_flow_jpegs(tmp, k + 1, q[k, :, :, 0], q[k, :, :, 1])
    return {"clip": clip, "pairs": q.shape[0], "seconds": round(time.perf_counter() - start, 3)}


def flow_of_clips(clips: list[Clip], batch: int, params: TVL1Params, bound: float) -> list[np.ndarray]:
    """Quantised flow (P, H, W, 2) uint8 of every clip, ``batch`` pairs at a time across clip borders."""
    i0 = torch.cat([c.frames[:-1] for c in clips])
    i1 = torch.cat([c.frames[1:] for c in clips])
    q = torch.cat([quantise(tvl1(i0[s:s + batch], i1[s:s + batch], params), bound)
                   for s in range(0, i0.shape[0], batch)]).cpu().numpy()
    return np.split(q, np.cumsum([c.frames.shape[0] - 1 for c in clips])[:-1])


class TorchFlowTask(NamedTuple):
    """A group of clips for one tvl1-torch worker (``extract-flow --executor ray``)."""

    root: str
    clips: tuple
    device: str
    batch: int
    decode_on_device: bool


def torch_flow_task(task: TorchFlowTask) -> dict:
    """Flow for a group of clips, committed per clip; their flow manifest lines and failures."""
    done, failures = [], []
    run_torch_flow(Path(task.root), list(task.clips), task.device, task.batch, done.append,
                   lambda clip, err: failures.append((clip, err)), decode_on_device=task.decode_on_device)
    return {"done": done, "failures": failures}


def run_torch_flow(root: Path, clips: list[str], device: str, batch: int, on_done, on_fail,
                   params: TVL1Params = TVL1Params(), bound: float = C.FLOW_BOUND, progress=None,
                   decode_on_device: bool = False) -> int:
    """Flow for ``clips``; ``on_done(result)`` after each clip is committed, ``on_fail(clip, message)``
    for a clip that failed. Returns the number of pairs computed."""
    dev = torch.device(device)
    pairs = 0
    todo = iter(clips)
    # Writers are processes: encoding threads would take the GIL from the loop that launches the
    # device's kernels. Reads are threads (file I/O and the device decode release the GIL).
    with ThreadPoolExecutor(READERS) as readers, \
            ProcessPoolExecutor(WRITERS, mp_context=multiprocessing.get_context("spawn")) as pool:
        reads = deque()

        def top_up():  # a bounded read-ahead: decoded frames live on the device
            for c in todo:
                reads.append(readers.submit(read_clip, root, c, dev, decode_on_device))
                if len(reads) >= READ_AHEAD:
                    break

        writes = deque()
        group: list[Clip] = []

        def flush():
            nonlocal pairs
            if not group:
                return
            try:
                for c, q in zip(group, flow_of_clips(group, batch, params, bound)):
                    writes.append((c.clip, pool.submit(write_clip, root, c.clip, q)))
                    pairs += q.shape[0]
            except RuntimeError as e:  # e.g. out of device memory: these clips fail, the run goes on
                for c in group:
                    on_fail(c.clip, f"{c.clip}: {str(e).splitlines()[0]}")
            group.clear()

        top_up()
        while reads:
            c = reads.popleft().result()
            top_up()
            if c.error:
                on_fail(c.clip, c.error)
                continue
            if group and c.frames.shape[1:] != group[0].frames.shape[1:]:
                flush()
            group.append(c)
            if sum(g.frames.shape[0] - 1 for g in group) >= batch:
                flush()
            while writes and writes[0][1].done():
                _finish(writes.popleft(), on_done, on_fail, progress)
        flush()
        for w in writes:
            _finish(w, on_done, on_fail, progress)
    return pairs


def _finish(item, on_done, on_fail, progress) -> None:
    clip, fut = item
    pairs = 0
    try:
        result = fut.result()
        on_done(result)
        pairs = result["pairs"]
    except Exception as e:  # noqa: BLE001 - a clip that could not be written fails alone
        on_fail(clip, f"{clip}: {e}")
    if progress is not None:
        progress.update(1, pairs)
