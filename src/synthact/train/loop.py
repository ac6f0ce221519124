"""``train-tsn``: fit a TSN on a selection, checkpoint every epoch, resume to the same result.

Every random draw is seeded by (seed, epoch): the shuffle order, the dropout masks and each
sample's augmentation, so a run resumed from its epoch-e checkpoint continues exactly as the
uninterrupted run would have. Checkpoints hold state dicts and plain types only and load with
``weights_only=True``.
"""
from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .. import contract as C
from ..errors import BadConfig
from ..progress import Progress
from ..provenance import versions
from ..rootlock import root_lock
from . import recipe
from .checkpoint import ARCH_KEYS, RESUME_KEYS, load_checkpoint, restore
from .config import TrainConfig, check, check_resume, record
from .dataset import EpochSampler, TSNDataset, worker_errors
from .evaluate import evaluate_run, predict
from .mixing import check_flow, select
from .mmaction_engine import DEPTH, backbone_checkpoint, train_mmaction, write_config
from .models import TSN

__all__ = ["TrainConfig", "fit", "build_model", "load_checkpoint"]   # TrainConfig lives in .config

CHECKPOINT = "checkpoint.pt"


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(cfg: TrainConfig) -> TSN:
    """The TSN a config describes, with fresh or pretrained weights."""
    return TSN(cfg.num_classes, cfg.backbone, cfg.modality, cfg.segments, cfg.pretrained)


def _scheduler(opt, cfg: TrainConfig):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, recipe.lr_milestones(cfg.epochs), recipe.LR_GAMMA)
    raise BadConfig(f"unknown schedule {cfg.schedule!r}: step or cosine")


def _holds_a_run(run: Path) -> bool:
    return (run / CHECKPOINT).exists() or any((run / "mmaction2").glob("epoch_*.pth"))


def fit(cfg: TrainConfig, resume: bool = False, progress: bool = True, wait: bool = False) -> dict:
    """Select, train and evaluate one TSN run into the run folder ``cfg.out`` (locked for the
    run); returns the final metrics (also in ``metrics.json``). Settings are checked first."""
    check(cfg)
    with root_lock(Path(cfg.out), wait):
        return _fit_locked(cfg, resume, progress)


def _fit_locked(cfg: TrainConfig, resume: bool, progress: bool) -> dict:
    run = Path(cfg.out)
    sel = select(cfg.real, Path(cfg.real_root), Path(cfg.synthetic_root) if cfg.synthetic_root else None,
                 cfg.synthetic, cfg.real_fraction, cfg.classes, cfg.synthetic_only, cfg.seed)
    cfg.num_classes, cfg.info = len(sel.classes), sel.info
    sharded = any(s.sharded for s in sel.train)  # mmaction2 reads frame folders, not our shards
    if sharded and cfg.engine == "mmaction2":
        raise BadConfig(f"--synthetic-root {cfg.synthetic_root}: WebDataset shards train with --engine synthact; "
                        f"mmaction2 reads rawframe folders")
    if cfg.modality == "flow":
        roots = {s.root for s in sel.train + sel.val}
        cfg.info["flow_method"] = check_flow(sorted(roots), cfg.allow_mixed_flow)
    cfg.lr = cfg.lr or recipe.DEFAULT_LR[cfg.modality]
    run.mkdir(parents=True, exist_ok=True)
    if resume:  # the run's own lists and settings are never rewritten
        check_resume(run, cfg, sel)
    elif _holds_a_run(run):
        raise BadConfig(f"{run}: already holds a run; pass --resume to continue it or choose another --out")
    else:
        record(run, cfg, sel)
    if cfg.engine == "mmaction2":
        settings = write_config(cfg, run, backbone_checkpoint(cfg, run))
        return train_mmaction(cfg, run, resume, settings)
    if cfg.backbone in DEPTH and not sharded:  # the same selection, ready for mmaction2 (weights: see the config)
        write_config(cfg, run, None)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)  # the initial weights of everything not loaded from a file
    model = build_model(cfg)
    if cfg.init_from:
        restore(Path(cfg.init_from), model, load_checkpoint(Path(cfg.init_from), cfg)["model"], "model weights")
    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=recipe.MOMENTUM, weight_decay=cfg.weight_decay)
    sched = _scheduler(opt, cfg)
    start, history = 0, []
    if resume:
        ck = load_checkpoint(run / CHECKPOINT, cfg, RESUME_KEYS)
        for target, key in ((model, "model"), (opt, "optimizer"), (sched, "scheduler")):
            restore(run / CHECKPOINT, target, ck[key], f"{key} state")
        start, history = ck["epoch"] + 1, ck["history"]
    train_ds = TSNDataset(sel.train, cfg.modality, cfg.segments, cfg.size, "train", cfg.seed)
    val_ds = TSNDataset(sel.val, cfg.modality, cfg.segments, cfg.size, "val", cfg.seed)
    writer = _tensorboard(run)
    loss_fn = torch.nn.CrossEntropyLoss()
    sampler = EpochSampler(len(train_ds), cfg.seed)
    loader = DataLoader(train_ds, cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                        persistent_workers=cfg.workers > 0, drop_last=len(train_ds) > cfg.batch_size,
                        pin_memory=device.type == "cuda")
    for epoch in range(start, cfg.epochs):
        sampler.set_epoch(epoch)
        torch.manual_seed(recipe.epoch_seed(cfg.seed, epoch))   # dropout masks
        model.train()
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        bar = Progress(len(loader), f"epoch {epoch + 1}/{cfg.epochs}", "batch", "images/s", enabled=progress,
                       leave=False)
        with worker_errors():
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    scores = model(x)
                    loss = loss_fn(scores.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, recipe.CLIP_GRAD[cfg.modality])
                opt.step()
                seen += len(y)
                loss_sum += loss.item() * len(y)
                correct += (scores.argmax(1) == y).sum().item()
                bar.update(1, len(y) * cfg.segments)
        bar.close()
        sched.step()
        seconds = time.perf_counter() - t0
        val = predict(model, val_ds, cfg.batch_size, cfg.workers, device)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
               "val_top1": val["top1"], "val_mean_class": val["mean_class"], "lr": opt.param_groups[0]["lr"],
               "seconds": round(seconds, 2), "images_per_s": round(seen * cfg.segments / seconds, 1)}
        history.append(row)
        for k, v in row.items():
            if k != "epoch" and writer:
                writer.add_scalar(k, v, epoch + 1)
        _save(run / CHECKPOINT, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                 "scheduler": sched.state_dict(), "epoch": epoch, "history": history,
                                 "config": {k: getattr(cfg, k) for k in ARCH_KEYS}})
        _write_csv(run / "log.csv", history)
        bar.write(f"epoch {epoch + 1}: loss {row['train_loss']:.4f} train {row['train_acc']:.3f} "
                  f"val top1 {row['val_top1']:.3f} ({row['images_per_s']} img/s)")
    if writer:
        writer.close()
    _save(run / "model.pt", {"model": model.state_dict(), "config": {k: getattr(cfg, k) for k in ARCH_KEYS}})
    metrics = evaluate_run(run, model, sel, cfg, device)
    metrics["history"] = history
    metrics["selection"] = sel.info
    metrics["versions"] = versions()
    C.write_json(run / "metrics.json", json_safe(metrics))   # whole, so ablate never reads half of it
    return metrics


def json_safe(obj):
    """A diverged loss (nan, inf) as JSON null: strict JSON has no such numbers."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def _save(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-save leaves the previous epoch's checkpoint


def _write_csv(path: Path, rows: list[dict]) -> None:
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text.getvalue(), newline="")
    os.replace(tmp, path)


def _tensorboard(run: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(run / "tb"))
