"""Command line: a thin layer, each command parses options and calls one library function."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .contract import ContractError

BAD_INPUT = 2   # exit code for input we refuse (one line on stderr)
PARTIAL = 1     # exit code when some clips failed and the rest completed


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(BAD_INPUT)


RENDER_EXAMPLES = """
\b
Examples:
  render-clips --out synth --classes ucf25 --per-class 100 --workers 8
  render-clips --out synth --classes hmdb --total 8000 --frames 64 --seed 1
  render-clips --out gt --classes wave,walk --per-class 4 --engine cycles --gt-flow --video
"""


@click.command("render-clips", epilog=RENDER_EXAMPLES)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Rawframe root to write.")
@click.option("--classes", default="ucf25", show_default=True, help="ucf25 | hmdb | all | comma list of classes.")
@click.option("--per-class", type=click.IntRange(min=1), help="Clips per class.")
@click.option("--total", type=click.IntRange(min=1), help="Clips in all, spread evenly over the classes.")
@click.option("--frames", default=64, show_default=True, type=click.IntRange(min=2))
@click.option("--size", default="340x256", show_default=True, help="WIDTHxHEIGHT.")
@click.option("--fps", default=25, show_default=True, type=click.IntRange(min=1))
@click.option("--engine", default="workbench", show_default=True, type=click.Choice(["workbench", "cycles"]))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Render processes (one bpy each).")
@click.option("--seed", default=0, show_default=True, type=int, help="Batch seed: same seed, same frames.")
@click.option("--gt-flow", is_flag=True, help="Also write exact forward flow from Cycles' Vector pass.")
@click.option("--video", is_flag=True, help="Also write clip.mp4 in each clip folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def render_clips(out, classes, per_class, total, frames, size, fps, engine, workers, seed, gt_flow, video, quiet):
    """Render texture-less, background-less synthetic human action clips with Blender (bpy)."""
    from .render.clips import RenderJob, parse_size, render_batch
    try:
        job = RenderJob(out=out, classes=classes, per_class=per_class, total=total, frames=frames,
                        size=parse_size(size), fps=fps, engine=engine, workers=workers, seed=seed,
                        gt_flow=gt_flow, video=video)
        s = render_batch(job, progress=not quiet)
    except (ValueError, OSError, ContractError) as exc:
        _fail(exc)
    rate = s.frames / s.seconds if s.seconds else 0.0
    click.echo(f"{s.rendered} rendered, {s.skipped} already done, {len(s.failures)} failed "
               f"of {s.planned} clips; {s.frames} frames in {s.seconds:.1f}s ({rate:.1f} frames/s) -> {out}")
    for clip, err in s.failures:
        click.echo(f"  failed {clip}: {err}", err=True)
    if not s.ok:
        sys.exit(PARTIAL)


@click.group()
def main():
    """synthact: synthetic action clips, TSN optical flow and training."""


main.add_command(render_clips)
