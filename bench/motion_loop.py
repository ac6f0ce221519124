"""Closed loop of motions extract: render fixture CMU captures with a skinned body, extract them
back, compare limb directions (see synthact.data.motion_fidelity).

    SYNTHACT_FIXTURES=../shared/data .venv/bin/python bench/motion_loop.py [--clips 2] [--frames 48] [--fixed-camera]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

CAPTURES = ("02_01", "05_06", "13_26")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=2, help="Clips rendered per capture.")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--body", default="makehuman")
    ap.add_argument("--fixed-camera", action="store_true", help="Still cameras: the root's travel is compared too.")
    a = ap.parse_args()
    from synthact.data.motion_fidelity import LIMBS, closed_loop
    mocap = Path(os.environ.get("SYNTHACT_FIXTURES", "../shared/data")) / "mocap/cmu_mb"
    rows = []
    t0 = time.time()
    for name in CAPTURES:
        with tempfile.TemporaryDirectory() as tmp:
            for r in closed_loop(mocap / f"{name}.bvh", Path(tmp), clips=a.clips, frames=a.frames, body=a.body,
                                 fixed_camera=a.fixed_camera):
                rows.append(r)
                travel = (f" travel {r['travel_source']:.2f} -> {r['travel_extracted']:.2f} legs"
                          if "travel_source" in r else "")
                print(f"{name} {r['clip']}: person {r['person_share']:.0%}, limbs {r['all']:.3f} "
                      f"(sides swapped {r['swapped']:.3f}) over {r.get('frames_compared', 0)} frames{travel}")
    ok = [r for r in rows if np.isfinite(r["all"])]
    print(f"{len(rows)} clips, {len(ok)} extracted: mean limb cosine {np.mean([r['all'] for r in ok]):.3f} "
          f"(min {min(r['all'] for r in ok):.3f}), sides swapped {np.mean([r['swapped'] for r in ok]):.3f}; "
          + ", ".join(f"{k} {np.mean([(r[k + '.l'] + r[k + '.r']) / 2 for r in ok]):.3f}" for k in LIMBS)
          + f"; {time.time() - t0:.0f} s")
    moved = [r["travel_extracted"] / r["travel_source"] for r in ok if r.get("travel_source", 0) > 0.5]
    if moved:
        print(f"travel (clips moving > 0.5 leg): extracted / source {np.median(moved):.2f} median, "
              f"{min(moved):.2f}-{max(moved):.2f} over {len(moved)} clips")


if __name__ == "__main__":
    main()
