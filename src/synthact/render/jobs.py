"""The ``render-clips`` job: plan records, render them in worker processes, keep the root consistent.

Each clip renders into a hidden staging folder that is renamed into place only when complete; its
manifest line is appended after that. A rerun repairs the manifest, deletes staging folders and
committed folders without a manifest line (killed between rename and append), and renders only
what is missing.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

from .. import contract as C
from ..assets import resolve_classes
from ..batch import run_batch, run_tasks
from ..data.profile import load_profile
from ..errors import BadConfig, BadData
from ..executor import LOCAL, Executor
from ..provenance import versions
from ..rootlock import root_lock
from .backdrop import KINDS, background_mesh
from .mocap import bone_maps, load_library
from .record import Body, ClipRecord, RenderedClip, manifest_line, read_records
from .sampling import sample_record
from .skinned import BUILTIN, body_model, makehuman_body, normalise, parse_body_spec, write_pc2
from .writer import write_preview

ENGINES = ("workbench", "cycles")   # Workbench: the fast path; Cycles: its Vector pass gives exact flow


@dataclass
class RenderJob:
    """What ``render-clips`` is asked for (its options); :func:`render_batch` takes it."""

    out: Path
    classes: str | None = "ucf25"   # None: the motion library's classes (else ucf25)
    per_class: int | None = None
    total: int | None = None
    frames: int = 64
    size: tuple[int, int] = (340, 256)
    fps: int = 25
    engine: str = "workbench"
    workers: int | None = 1
    seed: int = 0
    gt_flow: bool = False
    video: bool = False
    motions: str | None = None      # motion-capture library (YAML); its classes use captures
    bone_map: str | None = None     # overrides the library's bone map
    body: str = "mannequin"         # mannequin | makehuman | rigged file, or a weighted mix
    wait: bool = False              # wait for another job writing the root instead of refusing
    executor: Executor = LOCAL      # where the clips render (workers=None under Ray: every CPU)
    profile: str | None = None      # a shot profile (shipped name or YAML) the cameras are drawn from
    background: str = "black"       # black | points | grid (backdrop.KINDS)
    fixed_camera: bool = False      # no pan, zoom, hand-held motion or following, however far the root goes


@dataclass
class RenderSummary:
    """What a :func:`render_batch` run did: clips planned, skipped (already there), rendered, failed."""

    planned: int
    skipped: int
    rendered: int
    failures: list = field(default_factory=list)
    seconds: float = 0.0
    frames: int = 0
    nodes: dict = field(default_factory=dict)   # machine -> clips it rendered

    @property
    def ok(self) -> bool:
        """No clip failed."""
        return not self.failures


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (each 16..4096) as (width, height); anything else is a :class:`BadConfig`."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BadConfig(f"bad size {text!r}: expected WIDTHxHEIGHT, e.g. 340x256") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise BadConfig(f"bad size {text!r}: width and height must be within 16..4096")
    return w, h


def plan(job: RenderJob) -> list[ClipRecord]:
    """The records of every clip ``job`` asks for, in order; a bad option or input file is refused
    here (:mod:`synthact.errors`), before anything is written."""
    if job.bone_map and not job.motions:
        raise BadConfig("--bone-map maps motion captures: give it with --motions")
    if job.bone_map:
        bone_maps(job.bone_map)  # a bad map file is refused here, not by every clip
    library = load_library(Path(job.motions)) if job.motions else None
    if library and job.bone_map:
        library["bone_map"] = job.bone_map
    # without --classes a library renders its own classes, those with no procedural action too
    spec = job.classes or (",".join(library["motions"]) if library else "ucf25")
    classes = resolve_classes(spec, library["motions"] if library else ())
    if (job.per_class is None) == (job.total is None):
        raise BadConfig("give exactly one of --per-class N or --total N")
    if job.per_class is not None:
        counts = {c: job.per_class for c in classes}
    else:   # --total, spread evenly: the first classes take one more
        assert job.total is not None
        counts = {c: job.total // len(classes) + (i < job.total % len(classes)) for i, c in enumerate(classes)}
    if job.frames < 2:
        raise BadConfig(f"--frames {job.frames}: a clip needs at least 2 frames")
    if job.engine not in ENGINES:
        raise BadConfig(f"unknown engine {job.engine!r}: choose {' or '.join(ENGINES)}")
    if job.gt_flow and job.engine != "cycles":
        raise BadConfig("--gt-flow needs --engine cycles (it reads Blender's Vector pass)")
    for c in classes:
        C.check_name(c, "class", job.motions or "--classes")
    bodies = parse_body_spec(job.body)
    profile = load_profile(job.profile) if job.profile else None
    if job.background not in KINDS:
        raise BadConfig(f"--background {job.background!r}: choose from {', '.join(KINDS)}")
    return [sample_record(c, job.seed, i, job.frames, job.fps, job.size, job.engine, job.gt_flow, library, bodies,
                          profile, job.background, job.fixed_camera) for c in classes
            for i in range(1, counts[c] + 1)]


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()  # a fresh name: never a file planted there
    except OSError as exc:
        raise OSError(f"{out}: output folder is not writable ({exc.strerror or exc})") from None


def root_settings(job: RenderJob) -> dict:
    """What every clip of a synthetic root shares (see :func:`contract.claim_settings`)."""
    settings = {"kind": "synthetic", "frames": job.frames, "fps": job.fps, "size": list(job.size),
                "engine": job.engine, "gt_flow": job.gt_flow,
                "bodies": sorted({body_model({"model": m}) for m, _ in parse_body_spec(job.body)})}
    # null without one: a root is drawn from one profile or none (roots older than profiles lack the key)
    profile = load_profile(job.profile) if job.profile else None
    settings["profile"] = profile.name if profile else None
    settings["profile_sha256"] = profile.digest() if profile else None  # the name alone may stand for two files
    settings["background"] = job.background
    settings["fixed_camera"] = job.fixed_camera
    return settings


def _reconcile(root: Path) -> set[str]:
    """Make the root consistent after a kill; return the clips that are finished.

    A clip folder nobody recorded is refused (see :func:`contract.reconcile`), and so is a manifest
    line that is not a clip record (:func:`record.read_records` names its line).
    """
    C.reconcile(root)
    return {r.clip for r in read_records(root)}


# ------------------------------------------------------------------ worker side
# One CPU per render worker under Ray: a worker renders on one busy thread (scene.py keeps Blender's
# task pool and Mesa's llvmpipe off the other cores), so one worker per core keeps the cores
# full (2 workers on 2 cores run 1.79-2.03x one worker here: BENCHMARKS.md, "Render CPU per frame").
RENDER_RESOURCES = {"num_cpus": 1}

_SCENE = None
_RIGGED: dict = {}
RENDER_LOG = "render.log"  # Blender's own output, appended to by every worker


def redirect_output(log: str) -> None:
    """Blender prints a line per frame (and EGL notices) on the C streams: send them to a log."""
    # never through a link planted at a root's log name; the body check's log is the null device
    fd = os.open(os.devnull, os.O_WRONLY) if log == os.devnull else C.open_append(Path(log))
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


@contextmanager
def _children_without_blender_paths():
    """A process that imported bpy has Blender's script folders (``.../bpy/5.0/scripts/...``) in
    sys.path; spawned workers inherit sys.path, and there ``import bpy`` would find the inner
    scripts package instead of the module. Hide them while the workers start; restore after."""
    def blenders(path: str) -> bool:
        p = path.replace(os.sep, "/")
        return "/scripts/" in p and ("/bpy/" in p or "/blender/" in p)
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if not blenders(p)]
    try:
        yield
    finally:
        sys.path[:] = saved


def _init_worker(engine: str, size: tuple[int, int], fps: int, gt_flow: bool, log: str) -> None:
    global _SCENE
    redirect_output(log)
    from .scene import BlenderScene  # bpy is imported in workers only
    _SCENE = BlenderScene(engine, (size[0], size[1]), fps, gt_flow)


def skinned_body(scene, body: Body):
    """The rest body of a clip's record, or None for the mannequin; rigged files are imported once
    per process (then scaled to the clip's height)."""
    model = body.model_name
    if model == "mannequin":
        return None
    if model == "makehuman":
        assert body.phenotype is not None   # a makehuman record carries one (record.read_clip checks)
        return makehuman_body(body.phenotype)
    if model not in _RIGGED:
        _RIGGED[model] = scene.load_rigged(model)
    return normalise(_RIGGED[model], height=body.height)


def shoot(scene, record: ClipRecord, out: Path):
    """Animate a record and render its frames into ``out`` (the mannequin, or a skinned body moved
    by a point cache kept outside ``out``: the clip folder holds only the contract's files)."""
    from .animate import animate
    body = record.body
    anim = animate(record, skinned_body(scene, body))
    grey = min(1.0, body.grey * (record.light.strength if record.engine == "workbench" else 1.0))
    backdrop = None
    if record.background is not None:
        assert anim.ground is not None   # animate finds the ground under a backdrop
        backdrop = (*background_mesh(record.background, anim.ground[:2], anim.ground[2]), record.background.grey)
    if anim.skinned is None:
        scene.render(anim.skeleton, anim.quats, anim.root_loc, anim.camera, grey, record.light, out, backdrop,
                     anim.extras)
        return anim
    with tempfile.TemporaryDirectory() as cache:
        write_pc2(Path(cache) / "body.pc2", anim.skinned.frames)
        scene.render_skinned(anim.skinned.rest.verts, anim.skinned.rest.faces, Path(cache) / "body.pc2",
                             anim.camera, grey, record.light, out, backdrop, anim.extras)
    return anim


def check_rigged(path: str) -> None:
    """Import and fit a rigged body file as a clip would (in a render worker): raises what a clip would."""
    assert _SCENE is not None   # the worker's initializer made it
    normalise(_SCENE.load_rigged(path))


def check_bodies(job: RenderJob) -> None:
    """Each rigged ``--body`` file is loaded and checked once, in one worker here, before the root is
    claimed: a file Blender cannot use is refused in one line, not failed again by every clip."""
    rigged = [m for m, _ in parse_body_spec(job.body) if m not in BUILTIN]
    if not rigged:
        return
    with _children_without_blender_paths():
        for out in run_tasks(check_rigged, rigged, 1, initializer=_init_worker, max_attempts=1,
                             initargs=(job.engine, job.size, job.fps, job.gt_flow, os.devnull)):
            if not out.ok:
                error = out.error or ""
                raise BadData(f"--body {error}" if out.task in error else f"--body {out.task}: {error}")


class RenderTask(NamedTuple):
    """One clip to render, as a worker receives it."""

    record: ClipRecord
    root: str     # the rawframe root
    video: bool   # also write clip.mp4


def render_clip(task: RenderTask) -> RenderedClip:
    """Render ``task.record`` into its folder of ``task.root``, committed whole with its manifest
    line waiting beside it (see :func:`contract.staged_clip`); returns that line's record."""
    record, folder, video = task
    from .writer import exr_to_contract, write_video
    root = Path(folder)
    start = time.perf_counter()
    n = record.frames
    done: dict = {}
    with C.staged_clip(root, record.clip, record=done) as tmp:
        anim = shoot(_SCENE, record, tmp)
        if record.gt_flow:
            exr_to_contract(tmp, n)
        got = C.count_frames(tmp)
        if got != n:
            raise RuntimeError(f"{tmp}: Blender wrote {got} frames, expected {n}")
        if not C.finite(anim.camera.distance):
            raise C.BadData(f"clip {record.clip}: the camera distance is {anim.camera.distance} "
                                  f"(the motion holds non-finite values)")
        if video:
            write_video(tmp, n, record.fps, tmp / "clip.mp4")
        rendered = RenderedClip(**{f.name: getattr(record, f.name) for f in fields(record)}, num_frames=n,
                                camera_distance=round(anim.camera.distance, 4), camera_follows=anim.camera.follows,
                                motion_used=anim.motion_used or None,
                                render_seconds=round(time.perf_counter() - start, 3))
        done.update(manifest_line(rendered))
    return rendered


# ------------------------------------------------------------------ main side
def render_batch(job: RenderJob, progress: bool = True) -> RenderSummary:
    """Render the clips ``job`` plans into ``job.out`` (a rawframe root), skipping those already
    there; the root is locked for the whole run. Refusals raise :mod:`synthact.errors` types;
    clips that fail are listed in the summary and leave nothing behind."""
    records = plan(job)
    check_bodies(job)
    root = Path(job.out)
    job.executor.start()
    _check_writable(root)
    with root_lock(root, job.wait):
        return _render_locked(job, root, records, progress)


def _render_locked(job: RenderJob, root: Path, records: list[ClipRecord], progress: bool) -> RenderSummary:
    job.executor.check_root(root)
    C.claim_settings(root, root_settings(job))
    done = _reconcile(root)
    if job.gt_flow:  # claim the root so that extract-flow never mixes estimated flow in
        C.FlowInfo("blender-vector", "exact forward flow from Cycles' Vector pass, (-Z, +W) in image coordinates, "
                   "zero outside the body (alpha < 0.5)", versions=versions()).write(root)
    todo = [r for r in records if r.clip not in done]
    summary = RenderSummary(planned=len(records), skipped=len(records) - len(todo), rendered=0)
    os.close(C.open_append(root / RENDER_LOG))  # refused here, in one line, before workers start

    def record(out) -> int:
        C.append_manifest(root, manifest_line(out.result))
        C.clear_pending(root, out.result.clip)
        summary.rendered += 1
        return out.result.num_frames

    with _children_without_blender_paths():
        res = run_batch(render_clip, [RenderTask(r, str(root), job.video) for r in todo], job.workers,
                        name=lambda t: t.record.clip, on_ok=record, initializer=_init_worker, desc="render",
                        rate="frames/s", progress=progress, initargs=(job.engine, job.size, job.fps, job.gt_flow,
                                                     str(root / RENDER_LOG)),
                        executor=job.executor, resources=RENDER_RESOURCES)
    summary.failures, summary.seconds, summary.frames, summary.nodes = res.failures, res.seconds, res.work, res.nodes
    C.write_index(root)
    write_preview(root)
    return summary
