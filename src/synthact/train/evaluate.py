"""Evaluation: the TSN test protocol (25 snippets x 10 crops) or a fast 1-crop pass; fusion.

Scores are saved per run (``scores_<protocol>.npy``, rows in ``val_list.txt`` order) so that an
RGB and a flow run can be fused afterwards (``synthact evaluate --fuse``), as TSN's two streams were.
"""
from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from .. import contract as C
from ..errors import BadConfig, BadData, one_line
from ..provenance import versions
from .dataset import TSNDataset, worker_errors
from .recipe import PROTOCOLS
from .results import RunMetrics


def metrics(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Top-1, mean class accuracy, per-class accuracy and the confusion matrix."""
    pred = scores.argmax(1)
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(conf, (labels, pred), 1)
    present = conf.sum(1) > 0
    per_class = np.divide(np.diag(conf), conf.sum(1), out=np.zeros(num_classes), where=present)
    return {"top1": float((pred == labels).mean()) if len(labels) else 0.0,
            "mean_class": float(per_class[present].mean()) if present.any() else 0.0,
            "per_class": per_class.round(4).tolist(), "confusion": conf.tolist(), "n": int(len(labels))}


@torch.no_grad()
def predict(model, dataset: TSNDataset, batch_size: int, workers: int, device: torch.device, world=None) -> dict:
    """Softmax scores and labels of a dataset, with its metrics. Under torchrun (``world``) each rank
    scores a contiguous share of the clips and every rank gets all the scores back, in order."""
    model.eval()
    part: TSNDataset | Subset = dataset
    if world is not None and world.parallel:
        from .distributed import share
        part = Subset(dataset, range(*share(len(dataset), world)))
    loader = DataLoader(part, batch_size if dataset.mode != "test" else 1, shuffle=False, num_workers=workers)
    batch_scores, batch_labels = [], []
    with worker_errors():
        for x, y in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                s = model(x.to(device))
            batch_scores.append(torch.softmax(s.float(), 1).cpu())
            batch_labels.append(y)
    scores = (torch.cat(batch_scores).numpy() if batch_scores
              else np.zeros((0, model.fc.out_features), dtype=np.float32))
    labels = torch.cat(batch_labels).numpy() if batch_labels else np.zeros(0, dtype=np.int64)
    if part is not dataset:   # rank order is clip order: the shares are contiguous
        parts = world.gather((scores, labels))
        scores, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    out = metrics(scores, labels, model.fc.out_features)
    out["scores"], out["labels"] = scores, labels
    return out


def evaluate_run(run: Path, model, sel, cfg, device, world=None) -> dict:
    """The final evaluation of a run under its protocol; scores and confusion saved in the run
    (under torchrun: split over the ranks, gathered, saved by rank 0)."""
    mode, snippets = PROTOCOLS[cfg.eval_protocol]
    ds = TSNDataset(sel.val, cfg.modality, cfg.segments, cfg.size, mode, cfg.seed, snippets or 25)
    res = predict(model, ds, cfg.batch_size, cfg.workers, device, world)
    if world is not None and not world.main:
        res.pop("scores"), res.pop("labels")
        res["protocol"] = cfg.eval_protocol
        return res
    files = C.RunLayout(run)
    for path, key in ((files.scores(cfg.eval_protocol), "scores"), (files.labels, "labels")):
        with C.atomic_output(path, ".npy") as tmp:  # never through a link planted in the run folder
            np.save(tmp, res.pop(key))
    confusion_png(np.array(res["confusion"]), sel.classes, files.confusion,
                  f"{cfg.modality} {cfg.backbone}: top-1 {res['top1']:.3f}, mean class {res['mean_class']:.3f}")
    res["protocol"] = cfg.eval_protocol
    return res


def confusion_png(conf: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """The row-normalised confusion matrix as an image."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(classes)
    width = max(4, n * 0.35 + 2)
    fig, ax = plt.subplots(figsize=(width, max(3.5, n * 0.35 + 1.5)))
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(n), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(textwrap.fill(title, int(width * 12)), fontsize=9)   # a grid's long group names: kept whole
    fig.tight_layout()
    with C.atomic_output(path, ".png") as tmp:  # never through a link planted in the run folder
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def fuse(runs: list[Path], weights: list[float], protocol: str = "tsn") -> dict:
    """Weighted sum of the runs' saved softmax scores (TSN: RGB 1, flow 1.5) on the same val list."""
    if not runs or len(runs) != len(weights):
        raise BadConfig(f"{len(runs)} runs but {len(weights)} weights" if runs else "fuse: no run given")
    lists = [C.RunLayout(r).val_list.read_text() for r in runs]
    if any(lst != lists[0] for lst in lists):
        raise BadConfig("runs were evaluated on different validation lists: cannot fuse")
    classes = C.read_classes(Path(runs[0]) / C.CLASSES)
    labels = _saved(C.RunLayout(runs[0]).labels, "labels", "iu", None, len(classes))
    weighted = []
    for r, w in zip(runs, weights, strict=True):
        path = C.RunLayout(r).scores(protocol)
        if not path.exists():
            raise FileNotFoundError(f"{path}: run has no {protocol} scores")
        weighted.append(_saved(path, "scores", "f", (len(labels), len(classes)), None) * w)
    out = metrics(functools.reduce(np.add, weighted), labels, len(classes))
    out.update({"runs": [str(r) for r in runs], "weights": weights, "protocol": protocol})
    return out


def _saved(path: Path, what: str, kinds: str, shape: tuple | None, classes: int | None) -> np.ndarray:
    """A run's saved ``.npy`` array as evaluation wrote it: numbers of ``kinds`` (numpy dtype kinds),
    finite, of ``shape`` (scores: one row per validation clip and a column per class) or, for labels,
    one class index below ``classes`` per clip; else one line naming the file."""
    try:
        a = np.load(path, allow_pickle=False)     # an object array would need unpickling: refused
    except (OSError, ValueError, EOFError) as exc:
        raise BadData(f"{path}: not a saved {what} array ({one_line(exc)})") from None
    ok = isinstance(a, np.ndarray) and a.dtype.kind in kinds and (a.shape == shape if shape else a.ndim == 1)
    if ok and a.dtype.kind == "f":
        ok = bool(np.isfinite(a).all())
    if ok and classes is not None:
        ok = bool(((a >= 0) & (a < classes)).all())
    if not ok:
        want = f"finite numbers of shape {shape}" if shape else f"one class index 0..{(classes or 0) - 1} per clip"
        raise BadData(f"{path}: {what} of dtype {getattr(a, 'dtype', type(a).__name__)}, shape "
                      f"{getattr(a, 'shape', None)}: expected {want}")
    return a


def fuse_to(out: Path, runs: list[Path], weights: list[float], protocol: str = "tsn") -> RunMetrics:
    """Fuse runs (see :func:`fuse`) and write the metrics and confusion into ``out``."""
    res = {**fuse(runs, weights, protocol), "versions": versions()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    C.write_json(C.RunLayout(out).metrics, res)   # whole: ablate reads it to skip the cell
    confusion_png(np.array(res["confusion"]), C.read_classes(Path(runs[0]) / C.CLASSES), C.RunLayout(out).confusion,
                  f"fused {weights}: top-1 {res['top1']:.3f}, mean class {res['mean_class']:.3f}")
    return RunMetrics.of(res, C.RunLayout(out).metrics)
