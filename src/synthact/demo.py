"""The embedded default job behind ``make demo``: the whole pipeline on this machine, offline."""
from __future__ import annotations

from pathlib import Path

import click

from .render.clips import RenderJob, render_batch

DEMO_CLASSES = "ucf25"


def run_demo(out: Path, workers: int = 2) -> bool:
    out = Path(out)
    synth = out / "synthetic"
    click.echo(f"[1/1] render-clips: 25 UCF-25 classes x 2 clips x 32 frames at 340x256 -> {synth}")
    s = render_batch(RenderJob(out=synth, classes=DEMO_CLASSES, per_class=2, frames=32, workers=workers, seed=0))
    click.echo(f"      {s.rendered} rendered, {s.skipped} already done, {len(s.failures)} failed "
               f"({s.frames / s.seconds if s.seconds else 0:.0f} frames/s)")
    click.echo(f"      manifest: {synth / 'manifest.jsonl'}")
    click.echo(f"      preview:  {synth / 'preview.png'}")
    return s.ok
