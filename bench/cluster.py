"""The Ray executor against the local process pool, same machine, same run.

    .venv/bin/python bench/cluster.py [--clips 16] [--frames 64] [--workers 2] [--repeats 2]

Each case runs the real command (`render-clips`, then `extract-flow --method tvl1-fast` on the
rendered root) once with the local pool and once with `--executor ray` (a Ray started by the
command on this machine), alternating, `--repeats` times; the median of each is reported. Two
figures per executor: the batch rate the command prints (work / batch seconds: worker start-up
included, Ray's own start excluded) and the whole command's wall time (everything included).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
RATE = re.compile(r"\(([\d.]+) (frames|pairs)/s")


def run(*args: str) -> tuple[float, float]:
    """(printed batch rate, wall seconds) of one command."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    start = time.perf_counter()
    r = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{r.stderr}")
    return float(RATE.search(r.stdout).group(1)), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    per_class = max(1, a.clips // 4)
    render = ("--classes", "jumping_jack,wave,punch,walk", "--per-class", str(per_class), "--frames",
              str(a.frames), "--quiet", "--seed", "3")
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            for ex in ("local", "ray"):
                root = Path(tmp) / f"{ex}{rep}"
                extra = ("--workers", str(a.workers)) + (("--executor", "ray") if ex == "ray" else ())
                results.setdefault(("render", ex), []).append(run("render-clips", "--out", str(root), *render,
                                                                   *extra))
                results.setdefault(("flow", ex), []).append(run("extract-flow", "--root", str(root), "--method",
                                                                 "tvl1-fast", "--quiet", *extra))
                shutil.rmtree(root)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{per_class * 4} clips x {a.frames} frames at 340x256, {a.workers} workers, median of {a.repeats}")
    print("| stage | local: rate | ray: rate | ratio ray / local | local: wall s | ray: wall s | ratio (wall) |")
    print("|---|---|---|---|---|---|---|")
    for stage, unit in (("render", "frames/s"), ("flow", "pairs/s")):
        lr = statistics.median(r for r, _ in results[(stage, "local")])
        rr = statistics.median(r for r, _ in results[(stage, "ray")])
        lw = statistics.median(w for _, w in results[(stage, "local")])
        rw = statistics.median(w for _, w in results[(stage, "ray")])
        print(f"| {stage} ({unit}) | {lr:.1f} | {rr:.1f} | {rr / lr:.2f} | {lw:.1f} | {rw:.1f} | {lw / rw:.2f} |")


if __name__ == "__main__":
    main()
