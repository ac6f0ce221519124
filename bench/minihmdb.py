"""The minihmdb grid on real HMDB-51 clips, timed, and its learnability check.

    .venv/bin/python bench/minihmdb.py --videos ../shared/data/real/videos/jhmdb_train \
        --splits ../shared/data/real/splits/hmdb51 --out grid_minihmdb [--config minihmdb]

Runs ``synthact ablate --config minihmdb`` (it prepares the real clips, renders and flows its
synthetic sets, trains every cell), reports the wall time of the whole grid against the 30-minute
target on a 2-core machine, and checks that every synthetic-only cell fits its own training set:
its last epoch's training accuracy at least three times chance. A set the model cannot fit (the
collapse partial BN caused on flow) fails the check with exit 1. A rerun on the same ``--out``
only reads the finished grid.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from synthact.contract import CLASSES, GridLayout

TARGET_S = 30 * 60
FIT_FACTOR = 3.0    # training accuracy over chance a learnable set reaches


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", required=True)
    ap.add_argument("--splits", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="minihmdb")
    a = ap.parse_args()
    exe = Path(sys.executable).parent / "synthact"
    start = time.perf_counter()
    r = subprocess.run([str(exe), "ablate", "--config", a.config, "--out", a.out, "--videos", a.videos,
                        "--splits", a.splits, "--quiet"])
    seconds = time.perf_counter() - start
    grid = GridLayout(a.out)
    rows = list(csv.DictReader(open(grid.csv)))
    classes = len((grid.cell(rows[0]["cell"].replace("_fusion", "_flow")) / CLASSES).read_text().split()) or 1
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"grid: {len(rows)} cells in {seconds / 60:.1f} min (target {TARGET_S / 60:.0f} min: "
          f"{'met' if seconds <= TARGET_S else 'missed'})")
    bad = 0
    for row in rows:
        if row["real_fraction"] in ("0", "0.0") and row["modality"] != "fusion" and row["train_acc"]:
            acc, chance = float(row["train_acc"]), 1.0 / classes
            ok = acc >= FIT_FACTOR * chance
            bad += not ok
            print(f"{row['cell']}: synthetic-only train accuracy {acc:.3f} = {acc / chance:.1f}x chance "
                  f"({'learnable' if ok else 'NOT learnable'})")
    return 1 if (bad or r.returncode) else 0


if __name__ == "__main__":
    sys.exit(main())
