"""Data-parallel train-tsn on CPU: 2 torchrun processes (gloo) against 1 process, in one run.

    .venv/bin/python bench/ddp.py [--clips-per-class 16] [--backbone resnet18] [--size 112]
                                  [--batch 8] [--epochs 3] [--threads 2] [--nproc 2] [--repeat 2]

Renders a small root (3 classes, 16 frames at 170x128; not timed) whose clips are split into
training and validation lists, then runs the same `train-tsn` twice on the same global batch: one
process with ``--threads`` intra-op threads, and ``torchrun --standalone --nproc-per-node N`` with
``threads / N`` each, so both use the same cores; and one process with ``threads / N`` threads,
the per-rank work alone. The three alternate ``--repeat`` times and each row is the median, so
that other load on a shared machine falls on all of them alike. Images/s counts segment images
of the training epochs after the first (validation, start-up and the first epoch's warm-up
excluded), from each run's own metrics.json. All load data in their own processes (``--workers 0``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def make_root(tmp: Path, per_class: int) -> Path:
    from synthact.data.target_domain import write_split_lists
    from synthact.render.jobs import RenderJob, render_batch
    root = tmp / "root"
    assert render_batch(RenderJob(out=root, classes="wave,squat,jumping_jack", per_class=per_class, frames=16,
                                  size=(170, 128), workers=os.cpu_count(), seed=3), progress=False).ok
    write_split_lists(root, "bench", val_every=4)
    return root


def rate(run: Path) -> tuple[float, dict]:
    """Training images/s over the epochs after the first."""
    m = json.loads((run / "metrics.json").read_text())
    later = m["history"][1:] or m["history"]
    images = sum(h["images_per_s"] * h["seconds"] for h in later)
    return images / sum(h["seconds"] for h in later), m


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips-per-class", type=int, default=16)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_root(tmp, a.clips_per_class)
        args = ["--real", "bench:split1", "--real-root", str(root), "--backbone", a.backbone, "--size", str(a.size),
                "--epochs", str(a.epochs), "--batch-size", str(a.batch), "--workers", "0", "--eval-protocol", "fast",
                "--device", "cpu", "--quiet"]
        per = max(1, a.threads // a.nproc)
        cases = {"one": ([], a.threads), "ddp": ([str(BIN / "torchrun"), "--standalone", "--nproc-per-node",
                                                  str(a.nproc)], per), "slice": ([], per)}
        found: dict[str, list] = {k: [] for k in cases}
        for i in range(a.repeat):
            for name, (launcher, threads) in cases.items():
                out = tmp / f"{name}{i}"
                t0 = time.perf_counter()
                subprocess.run([*launcher, str(BIN / "train-tsn"), "--out", str(out), *args], check=True,
                               env=dict(os.environ, OMP_NUM_THREADS=str(threads)), stdout=subprocess.DEVNULL)
                found[name].append((*rate(out), time.perf_counter() - t0))
        med = {k: sorted(v, key=lambda r: r[0])[len(v) // 2] for k, v in found.items()}
        (one, m1, wall_one), (ddp, m2, wall_ddp), (piece, _, wall_piece) = med["one"], med["ddp"], med["slice"]
    loss1 = [round(h["train_loss"], 4) for h in m1["history"]]
    loss2 = [round(h["train_loss"], 4) for h in m2["history"]]
    print(f"# ddp bench: {platform.machine()}, {os.cpu_count()} cores, CPU, {a.backbone} rgb from scratch, {a.size}px, "
          f"global batch {a.batch} x 3 segments, {m1['selection']['real_train']} training clips, {a.epochs} epochs "
          f"(rates: epochs 2..{a.epochs}), {a.threads} threads in all, median of {a.repeat}")
    print("| case | images/s (training) | wall s (whole run) |")
    print("|---|---|---|")
    print(f"| 1 process, {a.threads} threads | {one:.1f} | {wall_one:.1f} |")
    print(f"| torchrun {a.nproc} processes (gloo), {max(1, a.threads // a.nproc)} thread(s) each | {ddp:.1f} | "
          f"{wall_ddp:.1f} |")
    print(f"| ratio {a.nproc} processes / 1 | {ddp / one:.2f}x | |")
    print(f"| 1 process, {per} thread(s) (one rank's threads, the whole batch) | {piece:.1f} | {wall_piece:.1f} |")
    print(f"| ratio {a.nproc} processes / 1 process of {per} thread(s) | {ddp / piece:.2f}x | |")
    print(f"train_loss per epoch: 1 process {loss1}, {a.nproc} processes {loss2}")


if __name__ == "__main__":
    main()
