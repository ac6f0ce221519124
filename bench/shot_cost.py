"""What a shot profile and a background cost to render, against the plain generator, same run.

    .venv/bin/python bench/shot_cost.py [--clips 12] [--frames 64] [--repeats 2]

Each case is a whole `render-clips` job (one worker, Workbench, 340x256, the same classes and seed;
worker start-up included) run as a child process; frames per CPU-second counts the CPU time of the
job and its worker (user + system), so other load on the machine matters less than for wall time.
Cases alternate, `--repeats` times; the median is reported.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
CASES = {"plain": (), "--profile hmdb51": ("--profile", "hmdb51"),
         "--profile hmdb51 --background points": ("--profile", "hmdb51", "--background", "points"),
         "--profile hmdb51 --background grid": ("--profile", "hmdb51", "--background", "grid")}


def job(out: Path, clips: int, frames: int, extra: tuple) -> float:
    """Frames per CPU-second of one render-clips job."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([str(BIN / "render-clips"), "--out", str(out), "--classes", "punch,wave,kick,clap",
                        "--per-class", str(max(1, clips // 4)), "--frames", str(frames), "--quiet", "--seed", "7",
                        *extra], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return max(1, clips // 4) * 4 * frames / cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    rates: dict[str, list[float]] = {k: [] for k in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            for k, extra in CASES.items():
                rates[k].append(job(Path(tmp) / f"{rep}_{len(rates[k])}_{abs(hash(k))}", a.clips, a.frames, extra))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"{max(1, a.clips // 4) * 4} clips x {a.frames} frames at 340x256, 1 worker, median of {a.repeats}")
    print("| case | frames per CPU-second | vs plain |")
    print("|---|---|---|")
    base = statistics.median(rates["plain"])
    for k, v in rates.items():
        m = statistics.median(v)
        print(f"| {k} | {m:.1f} | {m / base:.2f}x |")


if __name__ == "__main__":
    main()
