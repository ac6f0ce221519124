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
from .render.clips import RenderJob, render_batch

CLASSES = "jumping_jack,punch,squat,golf_swing,tai_chi,wave"
SIZE, FRAMES = (160, 120), 16
FLOW = "tvl1-fast"


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
    click.echo(Path(r["md"]).read_text())
    click.echo(f"results: {r['csv']}")
    click.echo(f"plot:    {r['plot']}")
    click.echo(f"preview: {synth / PREVIEW} (synthetic), {target / PREVIEW} (target domain)")
    fixtures = os.environ.get("SYNTHACT_FIXTURES")
    if fixtures and Path(fixtures, "real").is_dir():
        click.echo("")
        click.echo(real_fixture_check(out, Path(fixtures)))
    return s1.ok and s2.ok and f1.ok and f2.ok and not r["failed"]


def real_fixture_check(out: Path, fixtures: Path) -> str:
    """Where the fixture real clips are present: ``synthact predict`` with the demo's models on the
    real videos of its classes (UCF-101 Punch, HMDB-51 wave): decoded, given flow by each run's own
    method, scored by the fast protocol. A handful of clips: a check of the real-data path, not a score."""
    import numpy as np

    from .assets import target_class
    from .train.predict import predict_videos
    folders = [fixtures / "real/videos" / ds / target_class(c, ds) for ds in ("ucf101", "hmdb51")
               for c in sorted(CLASSES.split(",")) if target_class(c, ds)]
    folders = [f for f in folders if f.is_dir()]
    found = (out / "ablation" / "cells").glob("s1_seed0_syn*_real1_*")
    cells = sorted((c for c in found if not c.name.endswith("fusion")),
                   key=lambda c: (c.name.rsplit("_", 1)[1], int(c.name.split("_syn")[1].split("_")[0])))
    if not folders or not cells:
        return "real fixture clips: none of the demo's classes among the fixtures"
    res = predict_videos(cells, folders, protocol="fast", device="cpu", echo=None)
    preds, classes = res["predictions"], res["classes"]
    truth = np.array([classes.index(p.truth) for p in preds])
    lines = [f"real fixture clips ({len(preds)}: " + ", ".join(p.video.stem for p in preds) + ")",
             "| model (demo cell) | correct |", "|---|---|"]
    for k, cell in enumerate(cells):
        right = int((np.array([p.per_run[k].argmax() for p in preds]) == truth).sum())
        lines.append(f"| {cell.name} | {right} / {len(preds)} |")
    return "\n".join(lines)
