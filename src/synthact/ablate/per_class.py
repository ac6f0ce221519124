"""Per-class accuracy and confusion of an ablation grid: what the top-1 table averages away.

For every group of cells the table reports (modality, synthetic set, real fraction, synthetic
count), the per-class accuracies are averaged over its splits and seeds into ``per_class.md`` and
its confusion matrices summed into ``confusion/<group>.png``. A rerun that skips finished cells
reads their ``metrics.json`` as the grid does, so it reports the same.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import contract as C
from ..train.results import RunMetrics
from .report import group_key


def _group_name(mod: str, name: str, frac: float, n: int) -> str:
    real = "synthetic_only" if frac == 0 else f"real{frac:g}"
    return f"{mod}_{real}_syn{n}" + (f"_{name}" if name and n else "")


def _cell_results(out: Path, rows: list[dict], results: dict[str, RunMetrics | None]) -> tuple[list[str] | None,
                                                                                             dict]:
    """The label space and, per group, the (per_class, confusion) of each finished cell."""
    classes: list[str] | None = None
    groups: dict[tuple, list] = {}
    for r in rows:
        done = results.get(r["cell"])
        m = done.fields if done else {}
        if r["top1"] is None or "per_class" not in m or "confusion" not in m:
            continue
        cell = C.GridLayout(out).cell(r["cell"])
        if classes is None and (cell / C.CLASSES).exists():
            classes = C.read_classes(cell / C.CLASSES)
        result = (np.asarray(m["per_class"], float), np.asarray(m["confusion"], float))
        groups.setdefault(group_key(r), []).append(result)
    return classes, groups


def class_report(out: Path, rows: list[dict], results: dict[str, RunMetrics | None], title: str) -> Path | None:
    """Write ``per_class.md`` (mean per-class accuracy, %, one column per group) and one summed
    confusion plot per group from ``results`` (cell id -> its metrics, as the grid already holds
    them); None where no cell has finished."""
    from ..train.evaluate import confusion_png
    classes, groups = _cell_results(out, rows, results)
    if not groups or classes is None:
        return None
    keys = sorted(groups, key=lambda k: (k[0], k[1], -k[2], k[3]))
    names = [_group_name(*k) for k in keys]
    lines = [f"# {title}: per-class accuracy (%), mean over each group's splits and seeds", "",
             "| class | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for i, c in enumerate(classes):
        lines.append(f"| {c} | " + " | ".join(f"{100 * np.mean([p[i] for p, _ in groups[k]]):.0f}" for k in keys)
                     + " |")
    grid = C.GridLayout(out)
    C.atomic_write(grid.per_class, "\n".join(lines) + "\n")
    C.inside(out, grid.confusion).mkdir(exist_ok=True)   # a link out of the grid's folder: refused
    for k, name in zip(keys, names, strict=True):
        conf = np.sum([c for _, c in groups[k]], axis=0)
        top1 = np.trace(conf) / max(conf.sum(), 1)
        confusion_png(conf, classes, grid.confusion / f"{name}.png",
                      f"{name}: {len(groups[k])} cell{'s' if len(groups[k]) > 1 else ''} summed, top-1 {top1:.3f}")
    return grid.per_class
