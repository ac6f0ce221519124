"""Running the grid: each cell a train-tsn run (locally, on Ray, or as a data-parallel run of
``cell_gpus`` processes), fusion cells from their streams' scores, and the results written as they come."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple, cast

import yaml

from .. import contract as C
from .. import errors
from ..errors import BadConfig, SynthactError, warn
from ..executor import LOCAL, Executor, cluster_gpus
from ..rootlock import root_lock
from ..train.config import RESUME_FREE, TrainConfig, changed_settings, stream_lr
from ..train.results import RunMetrics
from .cell_results import GridSummary, cell_dir, done_metrics, failure_reason, fusion_weights, result_row
from .config import load_config
from .grid import Cell, cells, check_synthetic_counts, train_config
from .held_out import check_held_out, score_test
from .per_class import class_report
from .report import write_results
from .roots import make_roots, real_sources


def run_cell(cfg: dict, cell: Cell, root: Path, progress: bool) -> RunMetrics:
    """Train (or, for fusion, fuse) one cell into ``root/cells/<id>``; returns its metrics. With
    ``cell_gpus: N`` > 1 the cell is a data-parallel run of N processes (see :func:`run_ddp_cell`)."""
    from ..train.evaluate import fuse_to
    from ..train.loop import fit
    out = cell_dir(root, cell.id)
    if not cell.trains:
        return fuse_to(out, [cell_dir(root, s) for s in cell.streams or ()], fusion_weights(cfg),
                       cfg["eval_protocol"])
    if cfg.get("cell_gpus", 1) > 1 and "WORLD_SIZE" not in os.environ:
        return run_ddp_cell(cfg, cell, root)
    return fit(train_config(cfg, cell, out), resume=C.RunLayout(out).checkpoint.exists(), progress=progress)


def run_ddp_cell(cfg: dict, cell: Cell, root: Path) -> RunMetrics:
    """One training cell as ``torchrun --standalone --nproc-per-node cell_gpus`` would run it (torch's
    own elastic launcher, one machine: one process per GPU, NCCL; gloo processes without GPUs);
    rank 0's metrics. A failed rank fails the cell with that rank's error."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch
    procs = cfg["cell_gpus"]
    launch = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=procs, run_id=f"synthact-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, start_method="spawn")
    try:
        return elastic_launch(launch, _ddp_rank)(cfg, cell, str(root))[0]
    except ChildFailedError as exc:
        rank, last = _root_failure(exc)
        raise SynthactError(f"rank {rank} of {procs}: {last}") from None


def _root_failure(exc) -> tuple[int, str]:
    """The rank whose own error failed the cell and that error's last line. A rank that refuses its
    data exits first; the others then fail in the collective ("Connection closed by peer") at about
    the same instant, so the earliest timestamp alone may name a rank that only lost its peer. A
    rank that raised one of synthact's errors is the cause, its line without the error's name; else
    the earliest."""
    found = []
    own_errors = {c.__name__ for c in _subclasses(errors.SynthactError)}   # now: train's own are imported
    for rank, failure in exc.failures.items():
        message = str(failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message)
        lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exited with {failure.exitcode}"
        name, _, own = last.partition(": ")   # the traceback's last line: "synthact.errors.BadData: <line>"
        ours = own and name.rsplit(".", 1)[-1] in own_errors
        found.append((not ours, failure.timestamp, rank, own if ours else last))
    _, _, rank, last = min(found)
    return rank, last


def _subclasses(cls: type) -> set[type]:
    found, subs = {cls}, cast(list[type], cls.__subclasses__())
    for sub in subs:
        found |= _subclasses(sub)
    return found


def _ddp_rank(cfg: dict, cell: Cell, root: str) -> RunMetrics:
    """One rank of a data-parallel cell (the launcher sets WORLD_SIZE, RANK, LOCAL_RANK)."""
    from torch.distributed.elastic.multiprocessing.errors import record
    return cast(RunMetrics, record(run_cell)(cfg, cell, Path(root), False))   # record types its result Optional


class CellTask(NamedTuple):
    """One training cell for a Ray worker."""

    cfg: dict
    cell: Cell
    root: str


def cell_task(task: CellTask) -> dict:
    """Train one cell (no progress bars: its output is the worker's); its metrics."""
    start = time.perf_counter()
    return {"metrics": run_cell(task.cfg, task.cell, Path(task.root), False),
            "seconds": round(time.perf_counter() - start, 1)}


def run_grid(spec: str | Path, out: Path, progress: bool = True, echo=print, wait: bool = False,
             executor: Executor = LOCAL, videos: Path | None = None, splits: Path | None = None,
             held_out: bool = False) -> GridSummary:
    """Run every cell of the grid in ``spec`` into ``out`` (locked for the run), skipping cells
    with metrics; returns counts and the paths of the table, CSV and plot. A config with
    ``prepare:`` / ``render:`` first makes those roots inside ``out`` (``videos`` and ``splits``: the
    real clips and split files, see :mod:`synthact.ablate.roots`). Under Ray the training cells run
    concurrently, one GPU each (``cell_cpus`` CPUs each where the cluster has no GPU); fusion cells
    then fuse their scores here. ``held_out`` (``--score-test``): then every finished cell is scored
    once on its split's test clips (see :mod:`.held_out`), checked possible before any cell trains."""
    cfg = load_config(spec)
    out = Path(out)
    sources = None
    if cfg.get("prepare") is None:
        check_synthetic_counts(cfg, spec)
    else:
        sources = real_sources(cfg, videos, splits)
    executor.start()
    with root_lock(out, wait):
        executor.check_root(out)
        if sources is not None:
            cfg = make_roots(cfg, out, *sources, cfg.get("workers", 2), echo)
            check_synthetic_counts(cfg, spec)
        if held_out:
            check_held_out(cfg)
        summary = _grid_locked(cfg, out, progress, echo, executor)
        if held_out:
            echo("scoring every finished cell once on the held-out test clips (report these; choose nothing by them)")
            summary.test = score_test(cfg, out, echo)
        return summary


def _on_ray(cfg: dict, todo: list[Cell], out: Path, echo, executor: Executor) -> dict:
    """Results of the training cells in ``todo`` (id -> (metrics, status, seconds)), run on Ray."""
    from ..batch import run_tasks
    if not todo:
        return {}
    procs = cfg.get("cell_gpus", 1)   # a data-parallel cell takes its GPUs (or CPUs) on one node
    per = {"num_gpus": procs} if cluster_gpus(executor) else {"num_cpus": procs * cfg.get("cell_cpus", 1)}
    results = {}
    for k, o in enumerate(run_tasks(cell_task, [CellTask(cfg, c, str(out)) for c in todo], None,
                                    executor=executor, resources=per, max_attempts=2), start=1):
        cid = o.task.cell.id
        if o.ok:
            results[cid] = (o.result["metrics"], "ok", o.result["seconds"])
            echo(f"[{k}/{len(todo)}] {cid}: top-1 {o.result['metrics'].top1:.4f} ({o.node})")
        else:
            results[cid] = (None, f"failed: {o.error}", None)
            echo(f"[{k}/{len(todo)}] {cid}: failed: {o.error}")
    return results


def _grid_locked(cfg: dict, out: Path, progress: bool, echo, executor: Executor) -> GridSummary:
    grid = C.GridLayout(out)
    C.atomic_write(grid.config, yaml.safe_dump(cfg, sort_keys=False))
    rows, failed, skipped, results = [], 0, 0, {}
    todo = cells(cfg)
    done = {c.id: _finished(cfg, c, out) for c in todo}
    remote: dict = {}
    if executor.is_ray:   # second stages start from their first stage's weights: a wave after it
        for wave in ("mixed", "two_stage"):
            remote |= _on_ray(cfg, [c for c in todo if done[c.id] is None and c.trains and c.recipe == wave],
                              out, echo, executor)
    for i, cell in enumerate(todo, start=1):
        start = time.perf_counter()
        m, seconds = done[cell.id], None
        if m is not None:
            status = "done"
            skipped += 1
        elif cell.id in remote:
            m, status, seconds = remote[cell.id]
            failed += status != "ok"
        else:
            echo(f"[{i}/{len(todo)}] {cell.id}")
            try:
                m, status = run_cell(cfg, cell, out, progress), "ok"
            except Exception as exc:  # a failed cell is a result too; the grid goes on
                m, status = None, f"failed: {failure_reason(exc)}"
                failed += 1
                echo(f"      {status}")
        seconds = seconds if seconds is not None else round(time.perf_counter() - start, 1)
        rows.append(result_row(cfg, cell, m, status, seconds))
        results[cell.id] = m
        write_results(out, rows, cfg)
    return GridSummary(len(rows), failed, skipped, grid.csv, grid.table, grid.plot,
                       class_report(out, rows, results, cfg.get("name", "ablation")))


# the roots move with a grid folder (made inside it), and a first stage is named by its cell's id
MOVABLE = RESUME_FREE | {"real_root", "synthetic_root", "init_from", "num_classes"}


def _check_trained_as_asked(asked: TrainConfig, run: Path) -> None:
    """Refuse a finished cell trained with other settings than the config now gives it (``asked``):
    the table would report its numbers as the new config's."""
    path = C.RunLayout(run).config
    diff = changed_settings(path, replace(asked, lr=stream_lr(asked)), MOVABLE)   # lr as train-tsn recorded it
    if diff:
        raise BadConfig(f"{path}: this cell was trained with {diff[0]}; the config now asks {diff[1]}: give the "
                        f"changed grid another --out, or delete the cell to train it again")


def _finished(cfg: dict, cell: Cell, out: Path) -> RunMetrics | None:
    """A cell's metrics where it finished as the config now asks; a cell scored with other BatchNorm
    statistics than its ``adapt_bn`` asks runs again (a finished run resumes straight to them), a
    fusion cell of other streams or weights is fused again."""
    path = C.RunLayout(cell_dir(out, cell.id)).metrics
    m = done_metrics(path)
    if m is not None and not cell.trains:
        fused = ([Path(str(r)).name for r in m.fields.get("runs") or []], m.fields.get("weights"))
        if fused != (list(cell.streams or ()), fusion_weights(cfg)):
            warn(f"{path}: fused {fused[0]} with weights {fused[1]}; the config now asks {list(cell.streams or ())} "
                 f"with {fusion_weights(cfg)}: fusing again")
            return None
    if m is None or not cell.trains:
        return m
    asked = train_config(cfg, cell, path.parent)
    _check_trained_as_asked(asked, path.parent)
    if m.adapted != asked.adapt_bn:
        warn(f"{path}: scored {'with' if m.adapted else 'without'} adapt_bn, which the config now "
             f"{'leaves out' if m.adapted else 'asks'}; scoring the cell again")
        return None
    return m
