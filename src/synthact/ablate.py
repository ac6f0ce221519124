"""``synthact ablate``: a data-ablation grid of train-tsn runs, and the paper's kind of table and plot.

The grid crosses synthetic count, real fraction (0 means synthetic only), modality (rgb, flow and
their two-stream fusion), split and seed. Each cell is one run folder; a cell with metrics is
skipped on a rerun, a failed cell is recorded and the grid goes on.
"""
from __future__ import annotations

import csv
import io
import itertools
import os
import re
import time
import traceback
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml

from . import contract as C
from .errors import BadConfig, BadData, SynthactError, one_line, warn
from .executor import LOCAL, Executor, cluster_gpus
from .grid_report import class_report
from .grid_roots import check_blocks, make_roots, planned_roots, real_sources
from .rootlock import root_lock
from .train.config import TrainConfig, check

GRID_KEYS = {"synthetic": [0], "real_fraction": [1.0], "modality": ["rgb"], "splits": [1], "seeds": [0]}
TOP_KEYS = {"name", "real", "real_root", "synthetic_root", "classes", "fusion_weights", "eval_protocol", "train",
            "note", "cell_cpus", "cell_gpus", "synthetic_roots", "val_split", "prepare", "render",
            "workers", "recipes", "stage1", "fraction_epochs"} | set(GRID_KEYS)
TRAIN_KEYS = {f.name for f in fields(TrainConfig)} - {"out", "real", "real_root", "synthetic_root", "synthetic",
                                                      "real_fraction", "classes", "synthetic_only", "modality",
                                                      "seed", "eval_protocol", "num_classes", "info"}
MODALITIES = ("rgb", "flow", "fusion")
# mixed: real and synthetic clips in the same batches; two_stage: the synthetic-only cell of the same
# seed, count, set and stream, fine-tuned on the cell's real clips alone (the paper's pretraining)
RECIPES = ("mixed", "two_stage")
SET_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
MAX_CELL_PROCS = 16     # a data-parallel cell runs on one node: no node holds more GPUs than that
MAX_CELLS = 1000        # each cell is a training run: a grid beyond this is a typo (a range pasted as a list)


def shipped_configs() -> list[str]:
    """Names of the experiment configs shipped in the package."""
    return sorted(p.name[:-5] for p in resources.files("synthact.assets").joinpath("experiments").iterdir()
                  if p.name.endswith(".yaml"))


def load_config(spec: str | Path) -> dict:
    """A YAML file, or the name of a shipped experiment config; every key is checked."""
    path = Path(spec)
    if not path.exists():
        if str(spec) in shipped_configs():
            text = resources.files("synthact.assets").joinpath("experiments", f"{spec}.yaml").read_text()
            path = Path(f"<shipped>/{spec}.yaml")
        else:
            raise FileNotFoundError(f"{spec}: no such config file or shipped config ({', '.join(shipped_configs())})")
    else:
        text = path.read_text()
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadConfig(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise BadConfig(f"{path}: expected a mapping of settings")
    for key in cfg:
        if key not in TOP_KEYS:
            raise BadConfig(f"{path}: unknown key '{key}' (known: {', '.join(sorted(TOP_KEYS))})")
    if not isinstance(cfg.get("train") or {}, dict):
        raise BadConfig(f"{path}: train: expected a mapping of train-tsn settings, got {cfg['train']!r}")
    for key in cfg.get("train") or {}:
        if key not in TRAIN_KEYS:
            raise BadConfig(f"{path}: unknown key 'train.{key}' (known: {', '.join(sorted(TRAIN_KEYS))})")
    check_blocks(cfg, path)   # first: render without prepare is that, not a missing real_root
    for key in ("real", "real_root"):
        if key not in cfg and not (key == "real_root" and cfg.get("prepare") is not None):
            raise BadConfig(f"{path}: missing key '{key}'")
    for key, default in GRID_KEYS.items():
        value = cfg.get(key, default)
        cfg[key] = value if isinstance(value, list) else [value]
    bad = [m for m in cfg["modality"] if m not in MODALITIES]
    if bad:
        raise BadConfig(f"{path}: unknown modality {bad[0]!r} (known: {', '.join(MODALITIES)})")
    cfg.setdefault("fusion_weights", [1.0, 1.5])
    cfg.setdefault("eval_protocol", "tsn")
    cfg["train"] = cfg.get("train") or {}
    _check_recipes(cfg, path)
    _check_values(cfg, path)
    return cfg


def _check_recipes(cfg: dict, path) -> None:
    """``recipes`` (how synthetic clips meet real ones), ``stage1`` (train settings of the synthetic-only
    cells, the first stage) and ``fraction_epochs`` (epochs of the cells that train on a real fraction
    alone, real only or a second stage: a tenth of the clips takes ten times the epochs for as many
    steps; mixed cells keep ``train.epochs``, their synthetic clips fill the epoch)."""
    recipes = cfg.get("recipes", ["mixed"])
    cfg["recipes"] = recipes = recipes if isinstance(recipes, list) else [recipes]
    bad = [r for r in recipes if r not in RECIPES]
    if bad or not recipes or len(set(recipes)) < len(recipes):
        raise BadConfig(f"{path}: recipes {recipes!r}: a list of distinct values from {', '.join(RECIPES)}")
    if "two_stage" in recipes:
        if 0 not in cfg["real_fraction"] or not any(cfg["synthetic"]):
            raise BadConfig(f"{path}: recipes two_stage: its first stage is the synthetic-only cell, so the grid "
                            f"needs real_fraction 0 and a synthetic count > 0")
        if "init_from" in cfg["train"]:
            raise BadConfig(f"{path}: train.init_from: two_stage cells start from their synthetic-only cell; "
                            f"give one or the other")
    stage1 = cfg.get("stage1") or {}
    if not isinstance(stage1, dict) or any(k not in TRAIN_KEYS or k == "init_from" for k in stage1):
        raise BadConfig(f"{path}: stage1 {stage1!r}: a mapping of train settings for the synthetic-only cells "
                        f"(known: {', '.join(sorted(TRAIN_KEYS - {'init_from'}))})")
    cfg["stage1"] = stage1
    epochs = cfg.get("fraction_epochs") or {}
    if not isinstance(epochs, dict) or not all(C.finite(f) and 0 < f <= 1 and C.whole(e, 1)
                                               for f, e in epochs.items()):
        raise BadConfig(f"{path}: fraction_epochs {epochs!r}: a mapping of real fraction (0, 1] -> epochs >= 1, "
                        f"e.g. {{0.25: 80}}")
    cfg["fraction_epochs"] = {float(f): e for f, e in epochs.items()}


def _grid_problem(key: str, v) -> str | None:
    whole = C.whole(v)
    if key == "synthetic":
        return None if whole and v >= 0 else "a whole number >= 0"
    if key == "real_fraction":
        return None if C.finite(v) and 0 <= v <= 1 else "a number in [0, 1] (0: synthetic only)"
    if key == "splits":
        return None if whole and v in (1, 2, 3) else "1, 2 or 3"
    if key == "seeds":
        return None if whole and 0 <= v < 2**32 else "a whole number >= 0"
    return None


def _check_values(cfg: dict, path) -> None:
    """Every value's type and range, and every cell's train-tsn settings, before a cell runs."""
    cfg.update(planned_roots(cfg, Path("<out>")))
    _check_texts(cfg, path)
    _check_synthetic_roots(cfg, path)
    for key in GRID_KEYS:
        for v in cfg[key]:
            problem = _grid_problem(key, v)
            if problem:
                raise BadConfig(f"{path}: {key} {v!r}: each value must be {problem}")
    _check_resources(cfg, path)
    w = cfg["fusion_weights"]
    if not (isinstance(w, list) and len(w) == 2 and all(C.finite(x) for x in w)):
        raise BadConfig(f"{path}: fusion_weights {w!r}: expected two finite numbers (rgb, flow)")
    _check_cells(cfg, path)


def _check_texts(cfg: dict, path) -> None:
    for key in ("real", "real_root"):
        if not isinstance(cfg[key], str) or not cfg[key]:
            raise BadConfig(f"{path}: {key} {cfg[key]!r}: expected a text")
    v = cfg.get("val_split")
    if v is not None and not (C.whole(v, 1, 3) and v not in cfg["splits"]):
        raise BadConfig(f"{path}: val_split {v!r}: 1, 2 or 3, another split than the grid's splits (its test "
                        f"clips among their training clips validate the cells)")
    for key in ("synthetic_root", "classes", "name", "note"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            raise BadConfig(f"{path}: {key} {cfg[key]!r}: expected a text")


def _check_synthetic_roots(cfg: dict, path) -> None:
    sets = cfg.get("synthetic_roots")
    if sets is None:
        return
    if cfg.get("synthetic_root") is not None:
        raise BadConfig(f"{path}: give synthetic_root or synthetic_roots, not both")
    if not (isinstance(sets, dict) and sets):
        raise BadConfig(f"{path}: synthetic_roots: expected a mapping of set name -> root, e.g. "
                        f"{{plain: synth_a, profiled: synth_b}}")
    for k, v in sets.items():
        if not (isinstance(k, str) and SET_NAME.fullmatch(k)):
            raise BadConfig(f"{path}: synthetic_roots: set name {k!r} must be letters, digits, '-' or '_'")
        if not isinstance(v, str) or not v:
            raise BadConfig(f"{path}: synthetic_roots.{k} {v!r}: expected a root path")


def _check_resources(cfg: dict, path) -> None:
    for key, what, most in (("cell_cpus", "CPUs per cell under Ray", None),
                            ("cell_gpus", "data-parallel processes per cell, on one node", MAX_CELL_PROCS)):
        v = cfg.get(key, 1)
        if not C.whole(v, 1, most):
            raise BadConfig(f"{path}: {key} {v!r}: expected a whole number >= 1"
                            + (f" and <= {most}" if most else "") + f" ({what})")
    procs, batch = cfg.get("cell_gpus", 1), cfg["train"].get("batch_size", TrainConfig.batch_size)
    if procs > 1 and isinstance(batch, int) and batch % procs:
        raise BadConfig(f"{path}: train.batch_size {batch}: a cell of cell_gpus {procs} splits the global batch "
                        f"evenly over its processes; use a multiple of {procs}")


def _check_cells(cfg: dict, path) -> None:
    """The grid's size and that it has cells, then each training cell's train-tsn settings."""
    size = np.prod([len(cfg[k]) for k in GRID_KEYS], dtype=float) * len(synthetic_sets(cfg)) * len(cfg["recipes"])
    if size > MAX_CELLS:
        raise BadConfig(f"{path}: the grid crosses {size:.0f} cells, more than {MAX_CELLS} training runs; "
                        f"split it into several configs")
    todo = cells(cfg)
    if not todo:
        raise BadConfig(f"{path}: the grid has no cells (a cell needs real_fraction > 0 or synthetic > 0)")

    def name(key: str) -> str:  # where the user wrote the setting a cell's TrainConfig holds
        return f"{path}: " + (f"train.{key}" if key in cfg["train"] else {"seed": "seeds"}.get(key, key))
    for cell in todo:
        if cell["modality"] != "fusion":
            check(_train_config(cfg, cell, Path("<out>")), name)


def synthetic_sets(cfg: dict) -> dict[str, str | None]:
    """Set name -> synthetic root: ``synthetic_roots`` (a grid axis), else the one ``synthetic_root``
    under the name ``""`` (cell ids and tables as without the axis)."""
    return dict(cfg["synthetic_roots"]) if cfg.get("synthetic_roots") else {"": cfg.get("synthetic_root")}


def cells(cfg: dict) -> list[dict]:
    """The grid's cells, each a run folder id; a cell with neither real nor synthetic data is left out,
    and a cell without synthetic clips is run once, not once per synthetic set."""
    out = []
    sets = synthetic_sets(cfg)
    for split, seed, n, frac, mod, name, recipe in itertools.product(
            cfg["splits"], cfg["seeds"], cfg["synthetic"], cfg["real_fraction"], cfg["modality"], sets,
            cfg.get("recipes", ["mixed"])):
        if frac == 0 and n == 0:
            continue  # neither real nor synthetic data
        if n == 0 and name != next(iter(sets)):
            continue  # the real-only baseline does not depend on the synthetic set
        if recipe == "two_stage" and (n == 0 or frac == 0):
            continue  # nothing to fine-tune from, or the first stage itself
        two = recipe == "two_stage"
        set_label = name if n else ""
        label = "-".join(x for x in (set_label, "2stage" if two else "") if x)
        out.append({"split": split, "seed": seed, "synthetic": n, "real_fraction": frac, "modality": mod,
                    "set": label, "root": sets[name], "recipe": recipe,
                    "id": _cell_id(split, seed, n, frac, mod, label),
                    "stage1": _cell_id(split, seed, n, 0, mod, set_label) if two else None})
    # fusion reads the two streams' scores, a second stage its first stage's weights: run those first
    return sorted(out, key=lambda c: (c["modality"] == "fusion", c["recipe"] == "two_stage"))


def _cell_id(split: int, seed: int, n: int, frac: float, mod: str, label: str) -> str:
    return f"s{split}_seed{seed}_syn{n}_real{frac:g}_{mod}" + (f"_{label}" if label else "")


def _train_config(cfg: dict, cell: dict, out: Path) -> TrainConfig:
    name = cfg["real"].split(":")[0]
    val = f"-val{cfg['val_split']}" if cfg.get("val_split") else ""
    frac, two = cell["real_fraction"], cell.get("recipe") == "two_stage"
    train = _for_stream(cfg["train"], cell["modality"])
    if frac in cfg.get("fraction_epochs", {}) and (two or not cell["synthetic"]):   # real clips alone
        train["epochs"] = cfg["fraction_epochs"][frac]
    if frac == 0:
        train.update(_for_stream(cfg.get("stage1", {}), cell["modality"]))
    if two:
        train["init_from"] = str(C.RunLayout(Path(out).parent / cell["stage1"]).checkpoint)
    return TrainConfig(out=str(out), real=f"{name}:split{cell['split']}{val}", real_root=str(cfg["real_root"]),
                       synthetic_root=None if two else cell["root"], synthetic=0 if two else cell["synthetic"],
                       real_fraction=frac or 1.0, synthetic_only=frac == 0,
                       classes=cfg.get("classes"), modality=cell["modality"], seed=cell["seed"],
                       eval_protocol=cfg["eval_protocol"], **train)


def _for_stream(settings: dict, modality: str) -> dict:
    """Train settings for one stream: a value may be a mapping by stream, ``lr: {rgb: 0.001, flow: 0.01}``
    (RGB fine-tunes ImageNet features at a tenth of flow's rate, as TSN does); a stream it leaves out
    gets train-tsn's default."""
    out = {}
    for key, v in settings.items():
        if isinstance(v, dict) and v and set(v) <= {"rgb", "flow"}:
            if modality in v:
                out[key] = v[modality]
        else:
            out[key] = v
    return out


def cell_dir(root: Path, cell_id: str) -> Path:
    """``root/cells/<id>``, refused in one line where ``cells`` or the cell's folder is a link out of
    the grid's folder: a cell is never trained into, nor its metrics read from, somewhere else."""
    return C.inside(root, C.GridLayout(root).cell(cell_id))


def run_cell(cfg: dict, cell: dict, root: Path, progress: bool) -> dict:
    """Train (or, for fusion, fuse) one cell into ``root/cells/<id>``; returns its metrics. With
    ``cell_gpus: N`` > 1 the cell is a data-parallel run of N processes (see :func:`run_ddp_cell`)."""
    from .train.evaluate import fuse_to
    from .train.loop import fit
    out = cell_dir(root, cell["id"])
    if cell["modality"] == "fusion":
        streams = [cell_dir(root, cell["id"].replace("_fusion", f"_{m}", 1)) for m in ("rgb", "flow")]
        return fuse_to(out, streams, [float(w) for w in cfg["fusion_weights"]], cfg["eval_protocol"])
    if cfg.get("cell_gpus", 1) > 1 and "WORLD_SIZE" not in os.environ:
        return run_ddp_cell(cfg, cell, root)
    return fit(_train_config(cfg, cell, out), resume=C.RunLayout(out).checkpoint.exists(), progress=progress)


def run_ddp_cell(cfg: dict, cell: dict, root: Path) -> dict:
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


_OWN_ERROR = re.compile(r"^(\w+\.)*(BadConfig|BadData|MissingDependency|RootBusy|SynthactError): ")


def _root_failure(exc) -> tuple[int, str]:
    """The rank whose own error failed the cell and that error's last line. A rank that refuses its
    data exits first; the others then fail in the collective ("Connection closed by peer") at about
    the same instant, so the earliest timestamp alone may name a rank that only lost its peer. A
    rank that raised one of synthact's errors is the cause; else the earliest."""
    found = []
    for rank, failure in exc.failures.items():
        message = str(failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message)
        lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exited with {failure.exitcode}"
        found.append((not _OWN_ERROR.match(last), failure.timestamp, rank, _OWN_ERROR.sub("", last)))
    _, _, rank, last = min(found)
    return rank, last


def _ddp_rank(cfg: dict, cell: dict, root: str) -> dict:
    """One rank of a data-parallel cell (the launcher sets WORLD_SIZE, RANK, LOCAL_RANK)."""
    from torch.distributed.elastic.multiprocessing.errors import record
    return record(run_cell)(cfg, cell, Path(root), False)


class CellTask(NamedTuple):
    """One training cell for a Ray worker."""

    cfg: dict
    cell: dict
    root: str


def cell_task(task: CellTask) -> dict:
    """Train one cell (no progress bars: its output is the worker's); its metrics."""
    start = time.perf_counter()
    return {"metrics": run_cell(task.cfg, task.cell, Path(task.root), False),
            "seconds": round(time.perf_counter() - start, 1)}


def run_grid(spec: str | Path, out: Path, progress: bool = True, echo=print, wait: bool = False,
             executor: Executor = LOCAL, videos: Path | None = None, splits: Path | None = None) -> dict:
    """Run every cell of the grid in ``spec`` into ``out`` (locked for the run), skipping cells
    with metrics; returns counts and the paths of the table, CSV and plot. A config with
    ``prepare:`` / ``render:`` first makes those roots inside ``out`` (``videos`` and ``splits``: the
    real clips and split files, see :mod:`synthact.grid_roots`). Under Ray the training cells run
    concurrently, one GPU each (``cell_cpus`` CPUs each where the cluster has no GPU); fusion cells
    then fuse their scores here."""
    cfg = load_config(spec)
    out = Path(out)
    if cfg.get("prepare") is None:
        check_synthetic_counts(cfg, spec)
    else:
        videos, splits = real_sources(cfg, videos, splits)
    executor.start()
    with root_lock(out, wait):
        executor.check_root(out)
        if cfg.get("prepare") is not None:
            cfg = make_roots(cfg, out, videos, splits, cfg.get("workers", 2), echo)
            check_synthetic_counts(cfg, spec)
        return _grid_locked(cfg, out, progress, echo, executor)


def check_synthetic_counts(cfg: dict, spec: str | Path) -> None:
    """Every cell's synthetic count must fit its root (as the cell would select it), checked before
    the grid starts: a count a root cannot give would otherwise fail its cells one by one."""
    from .train.mixing import select
    seen = set()
    for cell in cells(cfg):
        key = (cell["split"], cell["root"], cell["synthetic"])
        if cell["modality"] == "fusion" or not cell["synthetic"] or cell["recipe"] == "two_stage" or key in seen:
            continue
        seen.add(key)
        c = _train_config(cfg, cell, Path("<out>"))
        try:
            select(c.real, Path(c.real_root), Path(c.synthetic_root) if c.synthetic_root else None, c.synthetic,
                   1.0, c.classes, False, c.seed)
        except (SynthactError, OSError) as exc:
            raise BadConfig(f"{spec}: cell {cell['id']}: {one_line(exc)}") from None


def _on_ray(cfg: dict, todo: list[dict], out: Path, echo, executor: Executor) -> dict:
    """Results of the training cells in ``todo`` (id -> (metrics, status, seconds)), run on Ray."""
    from .batch import run_tasks
    if not todo:
        return {}
    procs = cfg.get("cell_gpus", 1)   # a data-parallel cell takes its GPUs (or CPUs) on one node
    per = {"num_gpus": procs} if cluster_gpus(executor) else {"num_cpus": procs * cfg.get("cell_cpus", 1)}
    results = {}
    for k, o in enumerate(run_tasks(cell_task, [CellTask(cfg, c, str(out)) for c in todo], None,
                                    executor=executor, resources=per, max_attempts=2), start=1):
        cid = o.task.cell["id"]
        if o.ok:
            results[cid] = (o.result["metrics"], "ok", o.result["seconds"])
            echo(f"[{k}/{len(todo)}] {cid}: top-1 {o.result['metrics']['top1']:.4f} ({o.node})")
        else:
            results[cid] = ({}, f"failed: {o.error}", None)
            echo(f"[{k}/{len(todo)}] {cid}: failed: {o.error}")
    return results


def _grid_locked(cfg: dict, out: Path, progress: bool, echo, executor: Executor) -> dict:
    grid = C.GridLayout(out)
    _write_text(grid.config, yaml.safe_dump(cfg, sort_keys=False))
    rows, failed, skipped, results = [], 0, 0, {}
    todo = cells(cfg)
    done = {c["id"]: _done_metrics(C.RunLayout(cell_dir(out, c["id"])).metrics) for c in todo}
    remote: dict = {}
    if executor.is_ray:   # second stages start from their first stage's weights: a wave after it
        for wave in ("mixed", "two_stage"):
            remote |= _on_ray(cfg, [c for c in todo if done[c["id"]] is None and c["modality"] != "fusion"
                                    and c["recipe"] == wave], out, echo, executor)
    for i, cell in enumerate(todo, start=1):
        start = time.perf_counter()
        row = {k: cell[k] for k in ("split", "seed", "synthetic", "real_fraction", "modality")}
        if cfg.get("synthetic_roots") or "two_stage" in cfg["recipes"]:
            row["synthetic_set"] = cell["set"]
        m, seconds = done[cell["id"]], None
        if m is not None:
            status = "done"
            skipped += 1
        elif cell["id"] in remote:
            m, status, seconds = remote[cell["id"]]
            failed += status != "ok"
        else:
            echo(f"[{i}/{len(todo)}] {cell['id']}")
            try:
                m, status = run_cell(cfg, cell, out, progress), "ok"
            except Exception as exc:  # a failed cell is a result too; the grid goes on
                m, status = {}, f"failed: {_reason(exc)}"
                failed += 1
                echo(f"      {status}")
        seconds = seconds if seconds is not None else round(time.perf_counter() - start, 1)
        row.update({"top1": m.get("top1"), "mean_class": m.get("mean_class"), "n_val": m.get("n"),
                    "train_acc": _last_train_acc(m), "status": status, "seconds": seconds, "cell": cell["id"]})
        rows.append(row)
        results[cell["id"]] = m
        write_results(out, rows, cfg)
    return {"cells": len(rows), "failed": failed, "skipped": skipped, "csv": grid.csv,
            "md": grid.table, "plot": grid.plot,
            "per_class": class_report(out, rows, results, cfg.get("name", "ablation"))}


def _last_train_acc(m: dict) -> float | None:
    """The last epoch's training accuracy: a set the model cannot fit shows here, not in top-1 alone."""
    history = m.get("history")
    last = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else {}
    return last.get("train_acc") if C.finite(last.get("train_acc")) else None


def _reason(exc: Exception) -> str:
    """A refusal's own line; anything else (a bug) with its type, as Python prints it."""
    if isinstance(exc, (SynthactError, OSError)):
        return one_line(exc)
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _done_metrics(path: Path) -> dict | None:
    """A finished cell's metrics; a torn or foreign ``metrics.json`` (a kill mid-write before it
    was written whole) is named and the cell run again, never dropped from the results."""
    if not path.exists():
        return None
    try:
        m = C.read_json(path)
    except BadData as exc:
        warn(f"{exc}; running the cell again")
        return None
    if not isinstance(m, dict) or not C.finite(m.get("top1")):
        warn(f"{path}: holds no top1 result; running the cell again")
        return None
    return m


def _write_text(path: Path, text: str) -> None:
    """Whole or not at all: a reader (or a kill) sees the old file or the new one."""
    C.atomic_write(path, text)


def write_results(out: Path, rows: list[dict], cfg: dict) -> None:
    """``results.csv``, ``results.md`` and the plot of the rows so far, each replaced whole."""
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    grid = C.GridLayout(out)
    _write_text(grid.csv, text.getvalue())
    _write_text(grid.table, table(rows, cfg))
    plot(rows, grid.plot, cfg)


def _groups(rows: list[dict]) -> dict:
    """Top-1 (%) per (modality, synthetic set, real fraction, synthetic count); the real-only
    baseline (count 0, no set) is shared by every set's line."""
    groups: dict[tuple, list[float]] = {}
    sets = sorted({r.get("synthetic_set", "") for r in rows if r["synthetic"]}) or [""]
    for r in rows:
        if r["top1"] is not None:
            for name in (sets if not r["synthetic"] else [r.get("synthetic_set", "")]):
                groups.setdefault((r["modality"], name, r["real_fraction"], r["synthetic"]), []).append(100 * r["top1"])
    return groups


def table(rows: list[dict], cfg: dict) -> str:
    """Top-1 (%) as mean ± std over splits and seeds: one row per modality (and synthetic set) and
    real fraction, one column per synthetic count, as the paper prints it."""
    groups = _groups(rows)
    counts = sorted({r["synthetic"] for r in rows})
    sets = sorted({k[1] for k in groups})
    by_set = sets != [""]
    lines = [f"# {cfg.get('name', 'ablation')}: top-1 accuracy (%) on {cfg['real']} "
             f"({cfg['eval_protocol']} protocol), mean ± std over splits {cfg['splits']} x seeds {cfg['seeds']}", "",
             "| modality | " + ("synthetic set | " if by_set else "") + "real fraction | "
             + " | ".join(f"+{n} synthetic" for n in counts) + " |",
             "|---|" + ("---|" if by_set else "") + "---|" + "---|" * len(counts)]
    for mod in MODALITIES:
        for name in sets:
            for frac in sorted({r["real_fraction"] for r in rows}, reverse=True):
                cells_ = []
                for n in counts:
                    v = groups.get((mod, name, frac, n))
                    cells_.append("" if not v else f"{np.mean(v):.1f} ± {np.std(v):.1f} (n={len(v)})")
                if any(cells_):
                    label = "synthetic only" if frac == 0 else f"{frac:g}"
                    lines.append(f"| {mod} | " + (f"{name} | " if by_set else "") + f"{label} | "
                                 + " | ".join(cells_) + " |")
    failed = [r for r in rows if str(r["status"]).startswith("failed")]
    if failed:
        lines += ["", f"{len(failed)} cell(s) failed: " + "; ".join(f"{r['cell']} ({r['status']})" for r in failed)]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, cfg: dict) -> None:
    """Top-1 against synthetic clips added, one line per modality and real fraction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = _groups(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for mod, name, frac in sorted({k[:3] for k in groups}, key=lambda k: (MODALITIES.index(k[0]), k[1], -k[2])):
        pts = sorted((n, np.mean(v), np.std(v)) for (m, s, f, n), v in groups.items() if (m, s, f) == (mod, name, frac))
        n, mean, std = map(np.array, zip(*pts, strict=True))
        label = f"{mod}{f' ({name})' if name else ''}, {'synthetic only' if frac == 0 else f'real x{frac:g}'}"
        ax.errorbar(n, mean, yerr=std, marker="o", capsize=3, label=label)
    ax.set_xlabel("synthetic clips added")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{cfg.get('name', 'ablation')} ({cfg['real']})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with C.atomic_output(path, ".png") as tmp:  # replaced whole
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
