"""A grid cell's results: its run folder inside the grid, its finished metrics read back, its row
of ``results.csv``, and what a grid run did (:class:`GridSummary`): shared by the grid and by
``--score-test``, which scores the same cells again on the held-out clips."""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from .. import contract as C
from ..errors import BadData, SynthactError, one_line, warn
from ..train.results import RunMetrics, read_metrics
from .grid import Cell


def cell_dir(root: Path, cell_id: str) -> Path:
    """``root/cells/<id>``, refused in one line where ``cells`` or the cell's folder is a link out of
    the grid's folder: a cell is never trained into, nor its metrics read from, somewhere else."""
    return C.inside(root, C.GridLayout(root).cell(cell_id))


@dataclass
class GridSummary:
    """What a :func:`run_grid` run did (cells in all, failed, already done) and the files it wrote."""

    cells: int
    failed: int
    skipped: int
    csv: Path
    table: Path     # results.md
    plot: Path
    per_class: Path | None   # per_class.md, where a cell has per-class accuracy
    test: GridSummary | None = None   # --score-test: the same of the held-out test clips (test/)


def result_row(cfg: dict, cell: Cell, m: RunMetrics | None, status: str, seconds: float) -> dict:
    """A cell's row of ``results.csv``."""
    row = {"split": cell.split, "seed": cell.seed, "synthetic": cell.synthetic,
           "real_fraction": cell.real_fraction, "modality": cell.modality}
    if cfg.get("synthetic_roots") or "two_stage" in cfg["recipes"]:
        row["synthetic_set"] = cell.set
    row.update({"top1": m and m.top1, "mean_class": m and m.mean_class, "n_val": m and m.n,
                "train_acc": m and m.last_train_acc, "status": status, "seconds": seconds, "cell": cell.id})
    return row


def failure_reason(exc: Exception) -> str:
    """A refusal's own line; anything else (a bug) with its type, as Python prints it."""
    if isinstance(exc, (SynthactError, OSError)):
        return one_line(exc)
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def fusion_weights(cfg: dict) -> list[float]:
    """The config's (RGB, flow) fusion weights as fusion records them."""
    return [float(w) for w in cfg["fusion_weights"]]


def done_metrics(path: Path) -> RunMetrics | None:
    """A finished cell's metrics; a torn or foreign ``metrics.json`` (a kill mid-write before it
    was written whole) is named and the cell run again, never dropped from the results."""
    if not path.exists():
        return None
    try:
        return read_metrics(path)
    except BadData as exc:
        warn(f"{exc}; running the cell again")
        return None
