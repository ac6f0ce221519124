"""The roots an ablation grid makes for itself: ``prepare:`` (the real clips) and ``render:``
(the synthetic sets it compares), inside the grid's folder, before any cell runs.

Each is the stage a user would run by hand (``synthact prepare``, ``render-clips`` then
``extract-flow``), so a killed grid resumes where the stage stopped and a finished root is only
checked. Both sides get the same flow method: TSN's premise is that the two flows look alike.
"""
from __future__ import annotations

from pathlib import Path

from .. import contract as C
from ..errors import BadConfig, SynthactError, one_line
from ..flow.methods import OPENCV_METHODS
from ..render.jobs import plan

REAL_ROOT = "roots/real"          # under the grid's folder
SYNTHETIC_ROOTS = "roots/synthetic"
MOTIONS = "roots/motions"          # render.SET.motions: extracted -> the library made here
EXTRACTED = "extracted"
PREPARE_KEYS = {"videos", "splits", "size", "flow", "classes", "strict_frames"}
RENDER_KEYS = {"classes", "per_class", "frames", "size", "fps", "profile", "background", "body", "motions",
               "bone_map", "seed"}
WHOLE_KEYS = {"per_class": 1, "frames": 2, "fps": 1, "seed": 0}   # least value of each; other keys: a text
FLAG_KEYS = {"strict_frames"}


def check_blocks(cfg: dict, path) -> None:
    """``workers`` and the ``prepare:`` and ``render:`` blocks' keys, types and values (a render set
    planned as render-clips plans it), each refused in one line naming the key, before the grid runs."""
    w = cfg.get("workers", 2)
    if not C.whole(w, 1, 256):
        raise BadConfig(f"{path}: workers {w!r}: processes that make the grid's roots, a whole number in 1-256")
    prep = cfg.get("prepare")
    if prep is not None:
        _check_prepare(prep, path)
    sets = cfg.get("render")
    if sets is None:
        return
    if cfg.get("synthetic_root") or cfg.get("synthetic_roots"):
        raise BadConfig(f"{path}: render: makes the synthetic sets; give it or synthetic_root(s), not both")
    if not isinstance(prep, dict):
        raise BadConfig(f"{path}: render: needs prepare: (its flow method is the synthetic sets' too)")
    if not (isinstance(sets, dict) and sets):
        raise BadConfig(f"{path}: render: expected a mapping of set name -> render-clips settings")
    for name, opts in sets.items():
        _check_render_set(name, opts, path)


def _check_prepare(prep, path) -> None:
    if not isinstance(prep, dict):
        raise BadConfig(f"{path}: prepare: expected a mapping (videos, splits, size, flow, classes)")
    for key in prep:
        if key not in PREPARE_KEYS:
            raise BadConfig(f"{path}: unknown key 'prepare.{key}' (known: {', '.join(sorted(PREPARE_KEYS))})")
    if not isinstance(prep.get("flow"), str):
        raise BadConfig(f"{path}: prepare.flow: the flow method of both sides is required, e.g. tvl1-fast")
    _check_types("prepare", prep, path)
    if prep["flow"] not in OPENCV_METHODS:
        raise BadConfig(f"{path}: prepare.flow {prep['flow']!r}: choose from {', '.join(OPENCV_METHODS)}")
    _as_stage_reads("prepare", path, _size, prep)


def _check_render_set(name: str, opts, path) -> None:
    if not isinstance(opts, dict):
        raise BadConfig(f"{path}: render.{name}: expected a mapping of render-clips settings")
    for key in opts:
        if key not in RENDER_KEYS:
            raise BadConfig(f"{path}: unknown key 'render.{name}.{key}' "
                            f"(known: {', '.join(sorted(RENDER_KEYS))})")
    _check_types(f"render.{name}", opts, path)
    # planned as render-clips plans it (classes, body, profile...), but for the classes and bone
    # map of a library the grid extracts: it does not exist yet
    if opts.get("motions") == EXTRACTED:
        opts = {**opts, "motions": None, "bone_map": None, "classes": None}
    _as_stage_reads(f"render.{name}", path, lambda o: plan(_render_job(Path("<out>"), o, 1)), opts)


def _check_types(block: str, opts: dict, path) -> None:
    """Each value of a block a whole number, a flag or a text, as its stage reads it, in one line
    naming the key: checked before the grid writes anything, not when its stage comes."""
    for key, v in opts.items():
        if key in WHOLE_KEYS:
            ok, want = C.whole(v, WHOLE_KEYS[key]), f"a whole number >= {WHOLE_KEYS[key]}"
        elif key in FLAG_KEYS:
            ok, want = isinstance(v, bool), "true or false"
        else:
            ok, want = isinstance(v, str) and bool(v), "a text"
        if not ok:
            raise BadConfig(f"{path}: {block}.{key} {v!r}: expected {want}")


def _as_stage_reads(block: str, path, read, opts: dict) -> None:
    """``read(opts)`` as the block's stage would; its refusal in one line naming the config and block."""
    try:
        read(opts)
    except SynthactError as exc:
        raise BadConfig(f"{path}: {block}: {one_line(exc)}") from None


def planned_roots(cfg: dict, out: Path) -> dict:
    """``cfg`` with ``real_root`` and ``synthetic_roots`` naming the roots the grid makes in ``out``."""
    cfg = dict(cfg)
    if cfg.get("prepare") is not None:
        cfg["real_root"] = str(out / REAL_ROOT)
    if cfg.get("render"):
        cfg["synthetic_roots"] = {name: str(out / SYNTHETIC_ROOTS / name) for name in cfg["render"]}
    return cfg


def real_sources(cfg: dict, videos: Path | None, splits: Path | None) -> tuple[Path, Path]:
    """The videos folder and split files a grid with ``prepare:`` reads (``videos`` and ``splits``,
    the CLI's ``--videos`` / ``--splits``, override ``prepare.videos`` / ``prepare.splits``), its
    classes checked against those splits: refused in one line before the grid's folder is touched."""
    from ..data.splits import load_splits, subset_classes
    prep = cfg["prepare"]
    videos, splits = videos or prep.get("videos"), splits or prep.get("splits")
    if not videos or not splits:
        raise BadConfig(f"{cfg.get('name', 'the grid')} prepares its real clips: give --videos DIR and --splits DIR "
                        f"(a folder of {cfg['real']}-named <class>/ video folders and the official split files)")
    if not Path(videos).is_dir():
        raise BadConfig(f"{videos}: videos folder not found")
    known = load_splits(cfg["real"], Path(splits)).classes
    subset_classes(cfg["real"], prep.get("classes") or cfg.get("classes"), known)
    return Path(videos), Path(splits)


def make_roots(cfg: dict, out: Path, videos: Path, splits: Path, workers: int, echo) -> dict:
    """Prepare the real root from ``videos`` and ``splits`` (see :func:`real_sources`) and render and
    flow each synthetic set the config asks for, in ``out`` (each stage resumes); returns the config
    naming them."""
    if cfg.get("prepare") is None:
        return cfg
    cfg = planned_roots(cfg, out)
    prep = cfg["prepare"]
    try:
        _prepare(cfg, prep, videos, splits, workers, echo)
        for name, opts in (cfg.get("render") or {}).items():
            if opts.get("motions") == EXTRACTED:
                opts = {**opts, "motions": _extract(cfg, out, videos, splits, workers, echo)}
            _render(Path(cfg["synthetic_roots"][name]), name, opts, prep["flow"], workers, echo)
    except SynthactError as exc:
        raise type(exc)(f"making the grid's roots: {one_line(exc)}") from None
    return cfg


def _prepare(cfg: dict, prep: dict, videos: Path, splits: Path, workers: int, echo) -> None:
    from ..data.prepare import PrepareJob, prepare
    root = Path(cfg["real_root"])
    s = prepare(PrepareJob(cfg["real"], videos, splits, root, prep.get("classes") or cfg.get("classes"),
                           prep["flow"], _size(prep), workers,
                           strict_frames=bool(prep.get("strict_frames"))), progress=False)
    echo(f"real clips: {s.done} prepared, {s.skipped} already done, {len(s.failures)} failed, "
         f"{len(s.missing)} listed but absent (the held-out clips, where only training clips are given) -> {root}")
    if s.failures:
        raise BadConfig(f"{root}: {len(s.failures)} videos failed to prepare (first: {s.failures[0][1]})")
    if not s.done + s.skipped:   # else the synthetic sets render for a grid with no real clip to train on
        raise BadConfig(f"{videos}: none of the {s.videos} videos the split files list is here "
                        f"(expected <class>/<video>.avi with {cfg['real']}'s names)")


def _extract(cfg: dict, out: Path, videos: Path, splits: Path, workers: int, echo) -> str:
    """Motion captures from the grid's own training videos (``motions extract``): the split's training
    clips, less those ``val_split`` tests on, so the cells' validation clips lend no motion."""
    from ..data.extract_motions import extract_motions, summary_line
    s = extract_motions([videos], out / MOTIONS, cfg["real"], splits, cfg["splits"][0], False,
                        workers=workers, val_split=cfg.get("val_split"))
    echo(f"motions extracted: {summary_line(s)}")
    if s.failed:
        raise BadConfig(f"{out / MOTIONS}: {len(s.failed)} videos failed in motions extract (first: {s.failed[0][1]})")
    return s.library


def _render(root: Path, name: str, opts: dict, flow: str, workers: int, echo) -> None:
    from ..flow.extract import run_flow
    from ..render.jobs import render_batch
    r = render_batch(_render_job(root, opts, workers), progress=False)
    if r.failures:
        raise BadConfig(f"{root}: {len(r.failures)} clips of set {name} failed to render "
                        f"(first: {r.failures[0][1]})")
    f = run_flow(root, flow, workers, resume=True, progress=False)
    if f.failures:
        raise BadConfig(f"{root}: flow failed for {len(f.failures)} clips of set {name} (first: {f.failures[0][1]})")
    echo(f"synthetic set {name}: {r.rendered} clips rendered, {r.skipped} already there; flow for "
         f"{f.done} clips -> {root}")


def _size(opts: dict) -> tuple[int, int]:
    """A block's ``size`` (WIDTHxHEIGHT), 160x120 where it gives none."""
    from ..render.jobs import parse_size
    return parse_size(opts.get("size", "160x120"))


def _render_job(root: Path, opts: dict, workers: int):
    """The ``render-clips`` job of one ``render:`` set (its values checked by :func:`check_blocks`)."""
    from ..render.jobs import RenderJob
    return RenderJob(out=root, classes=opts.get("classes") or (None if opts.get("motions") else "hmdb"),
                     per_class=opts.get("per_class", 20), frames=opts.get("frames", 32), size=_size(opts),
                     fps=opts.get("fps", 30), workers=workers, seed=opts.get("seed", 0),
                     motions=opts.get("motions"), bone_map=opts.get("bone_map"),
                     body=opts.get("body", "mannequin"), profile=opts.get("profile"),
                     background=opts.get("background", "black"))
