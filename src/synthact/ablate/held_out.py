"""``ablate --score-test``: a finished grid scored once on its split's held-out test clips.

A grid with ``val_split`` chose everything on other clips (the split's training clips that
``val_split`` tests on), so its split's own test clips are still unseen: the number a paper reports.
Each finished training cell's final model (``model.pt``, as its own evaluation used it, adapted
BatchNorm statistics included) scores the test clips of the grid's real root under the grid's
protocol. ``<out>/test/`` is laid out as a grid: ``test/cells/<id>/`` holds each cell's scores as a
run folder would (so fusion cells fuse them as they fused the validation scores), beside the same
``results.csv``, ``results.md``, plot, ``per_class.md`` and ``confusion/``. A cell's test scores are
kept on a rerun while its model is the one they scored; a run whose classes are not the test clips'
is refused, naming it.
"""
from __future__ import annotations

import time
from pathlib import Path

from .. import contract as C
from ..errors import BadConfig, SynthactError
from ..train.results import RunMetrics
from .cell_results import GridSummary, cell_dir, done_metrics, failure_reason, fusion_weights, result_row
from .grid import Cell, cells
from .per_class import class_report
from .report import write_results

TEST = "test"   # under the grid's folder


def check_held_out(cfg: dict) -> None:
    """Refused in one line, before any cell trains: a grid without ``val_split`` (its cells are
    scored on the test clips already) or whose real root holds none of its splits' test clips."""
    if not cfg.get("val_split"):
        raise BadConfig(f"--score-test: {cfg.get('name', 'the grid')} has no val_split: its cells are scored on "
                        f"split {cfg['splits'][0]}'s test clips already; nothing is held out")
    from ..train.mixing import NoValidationClips
    for split in cfg["splits"]:
        try:
            _test_selection(cfg, split, cfg.get("classes"))
        except NoValidationClips:
            raise BadConfig(f"--score-test: {cfg['real_root']}: none of split {split}'s test clips is prepared here "
                            f"(with prepare:, give --videos a folder that holds them: the grid prepares every clip "
                            f"the split files list)") from None


def score_test(cfg: dict, out: Path, echo=print) -> GridSummary:
    """Score every finished cell of the grid in ``out`` (``cfg`` as :func:`~.run.run_grid` resolved
    it, the grid's folder locked by the caller) on its split's test clips into ``out/test``; a cell
    that has not finished is recorded as such."""
    test = C.inside(out, Path(out) / TEST)
    rows, results, failed, skipped = [], {}, 0, 0
    for cell in cells(cfg):
        start = time.perf_counter()
        m, status = _scored(cell, out, test), "done"
        if m is not None:
            skipped += 1
        elif done_metrics(C.RunLayout(cell_dir(out, cell.id)).metrics) is None:
            status = "not trained"
        else:
            try:
                m, status = _score_cell(cfg, cell, out, test), "ok"
                echo(f"{cell.id}: held-out top-1 {m.top1:.4f} ({m.n} clips)")
            except (SynthactError, OSError) as exc:
                m, status = None, f"failed: {failure_reason(exc)}"
                failed += 1
                echo(f"{cell.id}: {status}")
        rows.append(result_row(cfg, cell, m, status, round(time.perf_counter() - start, 1)))
        results[cell.id] = m
    named = {**cfg, "name": f"{cfg.get('name', 'ablation')}, held-out test",
             "real": f"{cfg['real']} split {'/'.join(map(str, cfg['splits']))} test clips"}
    write_results(test, rows, named)
    grid = C.GridLayout(test)
    return GridSummary(len(rows), failed, skipped, grid.csv, grid.table, grid.plot,
                       class_report(test, rows, results, named["name"]))


def _scored(cell: Cell, out: Path, test: Path) -> RunMetrics | None:
    """A training cell's test metrics where they score its present model (a cell trained again since
    is scored again); fusion cells are always fused again: it costs nothing and follows their streams."""
    if not cell.trains:
        return None
    m = done_metrics(C.RunLayout(C.inside(out, test / C.GridLayout.CELLS / cell.id)).metrics)
    model = C.RunLayout(cell_dir(out, cell.id)).model
    return m if m is not None and model.exists() and m.fields.get("model_mtime_ns") == model.stat().st_mtime_ns \
        else None


def _test_selection(cfg: dict, split: int, classes: str | None):
    from ..train.mixing import select_clips
    name = cfg["real"].split(":")[0]
    return select_clips(f"{name}:split{split}", Path(cfg["real_root"]), classes=classes)


def _score_cell(cfg: dict, cell: Cell, out: Path, test: Path) -> RunMetrics:
    from ..train.evaluate import fuse_to
    dest = C.inside(out, test / C.GridLayout.CELLS / cell.id)
    if not cell.trains:
        return fuse_to(dest, [C.inside(out, test / C.GridLayout.CELLS / s) for s in cell.streams or ()],
                       fusion_weights(cfg), cfg["eval_protocol"])
    return _score_run(cell_dir(out, cell.id), dest, cfg, cell.split)


def _score_run(run: Path, dest: Path, cfg: dict, split: int) -> RunMetrics:
    """One trained run's final model on the split's test clips, evaluated into ``dest`` as a run's own
    evaluation is (its val list, classes, labels, scores, confusion), then its metrics."""
    from dataclasses import replace

    import torch

    from ..provenance import versions
    from ..train.config import list_entries
    from ..train.evaluate import evaluate_run
    from ..train.models import place
    from ..train.predict import load_run
    r = load_run(run)
    sel = _test_selection(cfg, split, r.cfg.classes)
    if sel.classes != r.classes:
        raise BadConfig(f"{run / C.CLASSES}: the run's classes are not the test clips' ({len(r.classes)} against "
                        f"{len(sel.classes)}): cannot score it on them")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dest.mkdir(parents=True, exist_ok=True)
    files = C.RunLayout(dest)
    C.write_annotations(files.val_list, list_entries(sel)[C.RunLayout.LISTS[1]])
    C.write_classes(dest, r.classes)
    res = evaluate_run(dest, place(r.model, device), sel, replace(r.cfg, eval_protocol=cfg["eval_protocol"]), device)
    res.update({"run": str(run), "held_out": f"split {split} test clips",
                "model_mtime_ns": C.RunLayout(run).model.stat().st_mtime_ns, "versions": versions()})
    C.write_json(files.metrics, res)   # last: a cell with metrics is scored
    return RunMetrics.of(res, files.metrics)
