"""Optical flow speed per core (1 and K processes) and accuracy against rendered ground truth.

    SYNTHACT_FIXTURES=../shared/data .venv/bin/python bench/flow.py [--pairs 8] [--workers 2]

Speed: pairs/s at 340x256 with one OpenCV thread per process, on real fixture clips (UCF-101
ApplyEyeMakeup and Punch, resized as `prepare` does) and on rendered synthetic clips.
Accuracy: endpoint error (px) of each method against Blender's exact flow (`--gt-flow`) on body
pixels of rendered clips (pixels where the ground truth is clipped at +-20 are left out), and the
same for zero flow as the floor to beat.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from synthact import contract as C
from synthact.flow.methods import OPENCV_METHODS, make_flow

SIZE = (340, 256)


def real_pairs(fixtures: Path, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for rel in ("ucf101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ucf101/Punch/v_Punch_g01_c01.avi"):
        cap = cv2.VideoCapture(str(fixtures / "real/videos" / rel))
        frames = []
        while len(frames) < n + 1:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY))
        pairs += list(zip(frames[:-1], frames[1:], strict=True))[: n // 2 + 1]
    return pairs[:n]


def synthetic(n: int, root: Path) -> tuple[list, list]:
    """Rendered pairs (gray frames as stored) and their ground truth with body masks."""
    from synthact.render.jobs import RenderJob, render_batch
    s = render_batch(RenderJob(out=root, classes="jumping_jack,walk,golf_swing,punch", per_class=1, frames=n // 4 + 2,
                               engine="cycles", gt_flow=True, workers=2, seed=11), progress=False)
    assert s.ok, s.failures
    pairs, truth = [], []
    for clip in C.iter_clips(root):
        d = C.clip_dir(root, clip)
        for k in range(1, C.count_frames(d)):
            a = C.read_image(d / C.img_name(k), True)
            b = C.read_image(d / C.img_name(k + 1), True)
            gt = C.read_flow_pair(d, k)
            mask = (a > 0) & (np.abs(gt).max(axis=-1) < C.FLOW_BOUND - 0.2)
            pairs.append((a, b))
            truth.append((gt, mask))
    return pairs[:n], truth[:n]


def _time(method: str, pairs: list) -> tuple[float, list]:
    cv2.setNumThreads(1)
    flow = make_flow(method)
    flow(*pairs[0])  # warm-up
    t0 = time.perf_counter()
    out = [flow(a, b) for a, b in pairs]
    return len(pairs) / (time.perf_counter() - t0), out


def _rate_in_window(args) -> float:
    """Pairs/s from a shared start time until the first pair ending past the window: start-up excluded."""
    method, pairs, start, window = args
    cv2.setNumThreads(1)
    flow = make_flow(method)
    flow(*pairs[0])
    while time.time() < start:
        time.sleep(0.001)
    n = 0
    while time.time() < start + window:
        a, b = pairs[n % len(pairs)]
        flow(a, b)
        n += 1
    return n / (time.time() - start)


def parallel_rate(method: str, pairs: list, workers: int, window: float = 4.0) -> float:
    with mp.get_context("spawn").Pool(workers) as pool:
        start = time.time() + 5.0  # all workers spawned and warmed up by then
        return sum(pool.map(_rate_in_window, [(method, pairs, start, window)] * workers))


def epe(flows: list, truth: list) -> float:
    errs = [np.linalg.norm(f - gt, axis=-1)[m] for f, (gt, m) in zip(flows, truth, strict=True)]
    return float(np.concatenate(errs).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    a = ap.parse_args()
    fixtures = Path(os.environ.get("SYNTHACT_FIXTURES", "../shared/data"))
    real = real_pairs(fixtures, a.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        synth, truth = synthetic(a.pairs, Path(tmp))
    zero = epe([np.zeros_like(gt) for gt, _ in truth], truth)
    print(f"# flow bench: {platform.machine()}, {os.cpu_count()} cores, OpenCV {cv2.__version__}, 340x256, "
          f"{len(real)} real + {len(synth)} synthetic pairs, one OpenCV thread per process")
    print(f"| method | real pairs/s, 1 proc | real pairs/s, {a.workers} procs | synthetic pairs/s, 1 proc "
          f"| EPE vs Blender GT on body pixels (px) | speed vs tvl1 (real, 1 proc) |")
    print("|---|---|---|---|---|---|")
    base = None
    for method in OPENCV_METHODS:
        r1 = parallel_rate(method, real, 1)      # the same timed window as the K-process row
        rk = parallel_rate(method, real, a.workers)
        s1, flows = _time(method, synth)
        base = base or r1
        print(f"| {method} | {r1:.2f} | {rk:.2f} | {s1:.2f} | {epe(flows, truth):.3f} | {r1 / base:.1f}x |")
    print(f"| zero flow (floor) | | | | {zero:.3f} | |")


if __name__ == "__main__":
    main()
