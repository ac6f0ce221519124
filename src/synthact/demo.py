"""The embedded default job behind ``make demo``: the whole pipeline on this machine, offline.

Real datasets are not here, so the stand-in for "real" is said plainly: a *target domain*
rendered with settings the synthetic training set never uses (Cycles instead of Workbench, so
other shading; held-out seeds, so other bodies, cameras and action draws). The ablation trains TSN
on target-domain clips with 0 or more synthetic clips added, at the full and at a quarter of the
target training set: the paper's two effects in miniature, measured, not promised.
"""
from __future__ import annotations

import os
from pathlib import Path

import click
import yaml

from .ablate import run_grid
from .contract import PREVIEW, atomic_write
from .data.target_domain import write_split_lists
from .flow.extract import run_flow
from .render.jobs import RenderJob, render_batch

CLASSES = "jumping_jack,punch,squat,golf_swing,tai_chi,wave"
SIZE, FRAMES = (160, 120), 16
FLOW = "tvl1-fast"
REAL_VIDEOS, REAL_SPLITS = "real/videos/jhmdb_train", "real/splits/hmdb51"   # under SYNTHACT_FIXTURES


def demo_config(out: Path, synthetic: list[int], fractions: list[float], epochs: int, size: int) -> dict:
    """The demo's ablation grid over the roots it rendered, as an ablate config."""
    return {
        "name": "demo: target domain + synthetic clips",
        "note": "target = Cycles-rendered clips with held-out seeds, standing in for real video",
        "real": "target", "real_root": str(out / "target"), "synthetic_root": str(out / "synthetic"),
        "splits": [1], "seeds": [0], "synthetic": sorted(set(synthetic)), "real_fraction": fractions,
        "modality": ["rgb", "flow", "fusion"], "eval_protocol": "fast",
        "train": {"backbone": "resnet18", "pretrained": "none", "size": size, "segments": 3, "epochs": epochs,
                  "batch_size": 8, "workers": 0, "lr": 0.005},
    }


def run_demo(out: Path, workers: int = 2, scale: float = 1.0, progress: bool = True) -> bool:
    """``scale`` < 1 shrinks every count (the tests run the same path at a tiny scale)."""
    out = Path(out)
    n = lambda v: max(2, int(round(v * scale)))  # noqa: E731
    synth, target = out / "synthetic", out / "target"
    click.echo(f"[1/4] render-clips: synthetic set, Workbench, {CLASSES} x {n(24)} clips x {FRAMES} frames")
    s1 = render_batch(RenderJob(out=synth, classes=CLASSES, per_class=n(24), frames=FRAMES, size=SIZE,
                                workers=workers, seed=0), progress)
    click.echo(f"[2/4] render-clips: target domain (stand-in for real video), Cycles, held-out seed, "
               f"{n(16)} clips/class")
    s2 = render_batch(RenderJob(out=target, classes=CLASSES, per_class=n(16), frames=FRAMES, size=SIZE,
                                engine="cycles", workers=workers, seed=1000), progress)
    split = write_split_lists(target, val_every=2)
    click.echo(f"      target split: {split['train']} train / {split['val']} val clips over {split['classes']} classes")
    click.echo(f"[3/4] extract-flow {FLOW} on both roots")
    f1 = run_flow(synth, FLOW, workers, resume=True, progress=progress)
    f2 = run_flow(target, FLOW, workers, resume=True, progress=progress)
    classes = len(CLASSES.split(","))
    cfg = demo_config(out, [0, n(8) * classes, n(24) * classes], [0.25, 1.0], max(2, int(round(10 * scale))),
                      max(32, int(round(96 * scale))))
    cfg_path = out / "ablation.yaml"
    atomic_write(cfg_path, yaml.safe_dump(cfg, sort_keys=False))
    click.echo(f"[4/4] synthact ablate --config {cfg_path}")
    r = run_grid(cfg_path, out / "ablation", progress=progress, echo=click.echo)
    click.echo("")
    click.echo(r.table.read_text())
    click.echo(f"results: {r.csv}")
    click.echo(f"plot:    {r.plot}")
    click.echo(f"preview: {synth / PREVIEW} (synthetic), {target / PREVIEW} (target domain)")
    real_ok = True
    fixtures = os.environ.get("SYNTHACT_FIXTURES")
    if fixtures and Path(fixtures, REAL_VIDEOS).is_dir():
        real_ok = real_video_check(out / "real_check", Path(fixtures), progress)
    return s1.ok and s2.ok and f1.ok and f2.ok and not r.failed and real_ok


def real_video_check(out: Path, fixtures: Path, progress: bool) -> bool:
    """Where the fixture real clips are present: the real-video experiment (``synthact ablate
    --config minihmdb_smoke``) on J-HMDB's clips, at toy size. It shows the path from real HMDB-51
    videos to a validated table runs here; three classes and one seed are not a score."""
    config = "minihmdb_smoke"
    click.echo(f"\n[real video] synthact ablate --config {config} --videos {fixtures / REAL_VIDEOS} "
               f"--splits {fixtures / REAL_SPLITS} (a smoke run: the measured numbers are in the README's "
               f"'Does it help on real video?')")
    r = run_grid(config, out, progress=progress, echo=click.echo, videos=fixtures / REAL_VIDEOS,
                 splits=fixtures / REAL_SPLITS)
    click.echo(r.table.read_text())
    return not r.failed
