"""``train-tsn``: fit a TSN on a selection, checkpoint every epoch, resume to the same result.

Every random draw is seeded by (seed, epoch): the shuffle order, the dropout masks and each
sample's augmentation, so a run resumed from its epoch-e checkpoint continues exactly as the
uninterrupted run would have. Checkpoints hold state dicts and plain types only and load with
``weights_only=True``.
"""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import contract as C
from ..errors import BadConfig
from ..rootlock import root_lock
from .dataset import EpochSampler, TSNDataset
from .evaluate import evaluate_run, predict
from .mixing import Selection, check_flow, select
from .mmaction_engine import DEPTH, backbone_checkpoint, train_mmaction, write_config
from .models import TSN

CHECKPOINT = "checkpoint.pt"
CLIP_GRAD = {"rgb": 40.0, "flow": 20.0}
DEFAULT_LR = {"rgb": 0.001, "flow": 0.005}   # TSN's
ARCH_KEYS = ("backbone", "modality", "segments", "num_classes")


@dataclass
class TrainConfig:
    out: str
    real: str
    real_root: str
    synthetic_root: str | None = None
    synthetic: int = 0
    real_fraction: float = 1.0
    classes: str | None = None
    synthetic_only: bool = False
    modality: str = "rgb"
    backbone: str = "resnet18"
    pretrained: str = "none"
    init_from: str | None = None         # two-stage: weights of an earlier run (e.g. synthetic-only)
    segments: int = 3
    size: int = 224
    epochs: int = 20
    batch_size: int = 16
    lr: float | None = None
    schedule: str = "step"               # step (x0.1 at 50% and 75% of the epochs) or cosine
    weight_decay: float = 5e-4
    workers: int = 2
    seed: int = 0
    eval_protocol: str = "tsn"           # final evaluation: tsn (25 snippets x 10 crops) or fast
    device: str = "auto"
    allow_mixed_flow: bool = False       # train on roots whose flow methods differ
    engine: str = "synthact"             # or mmaction2 (optional extra: make mmaction)
    num_classes: int = 0                 # filled from the selection
    info: dict = field(default_factory=dict)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(cfg: TrainConfig) -> TSN:
    return TSN(cfg.num_classes, cfg.backbone, cfg.modality, cfg.segments, cfg.pretrained)


def _scheduler(opt, cfg: TrainConfig):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    if cfg.schedule == "step":
        steps = sorted({max(1, int(cfg.epochs * 0.5)), max(1, int(cfg.epochs * 0.75))})
        return torch.optim.lr_scheduler.MultiStepLR(opt, steps, 0.1)
    raise BadConfig(f"unknown schedule {cfg.schedule!r}: step or cosine")


def write_lists(run: Path, sel: Selection) -> None:
    """The exact training and validation lists, in mmaction2's rawframe format with absolute paths."""
    for name, samples in (("train_list.txt", sel.train), ("val_list.txt", sel.val)):
        C.write_annotations(run / name, [C.Entry(str(Path(s.prefix) / s.clip), s.num_frames, s.label) for s in samples])
    C.write_classes(run, sel.classes)


def load_checkpoint(path: Path, cfg: TrainConfig) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    old = ck.get("config", {})
    diff = [f"{k}={old.get(k)!r} (this run {getattr(cfg, k)!r})" for k in ARCH_KEYS if old.get(k) != getattr(cfg, k)]
    if diff:
        raise BadConfig(f"{path}: checkpoint of another architecture: {', '.join(diff)}")
    return ck


def fit(cfg: TrainConfig, resume: bool = False, progress: bool = True, wait: bool = False) -> dict:
    """Select, train and evaluate one TSN run into the run folder ``cfg.out`` (locked for the
    run); returns the final metrics (also in ``metrics.json``)."""
    with root_lock(Path(cfg.out), wait):
        return _fit_locked(cfg, resume, progress)


def _fit_locked(cfg: TrainConfig, resume: bool, progress: bool) -> dict:
    run = Path(cfg.out)
    sel = select(cfg.real, Path(cfg.real_root), Path(cfg.synthetic_root) if cfg.synthetic_root else None,
                 cfg.synthetic, cfg.real_fraction, cfg.classes, cfg.synthetic_only, cfg.seed)
    cfg.num_classes, cfg.info = len(sel.classes), sel.info
    if cfg.modality == "flow":
        roots = {Path(s.prefix).parent for s in sel.train + sel.val}
        cfg.info["flow_method"] = check_flow(sorted(roots), cfg.allow_mixed_flow)
    cfg.lr = cfg.lr or DEFAULT_LR[cfg.modality]
    run.mkdir(parents=True, exist_ok=True)
    if (run / CHECKPOINT).exists() and not resume:
        raise BadConfig(f"{run}: already holds a run; pass --resume to continue it or choose another --out")
    write_lists(run, sel)
    (run / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    if cfg.engine == "mmaction2":
        write_config(cfg, run, backbone_checkpoint(cfg, run))
        return train_mmaction(cfg, run, resume)
    if cfg.engine != "synthact":
        raise BadConfig(f"unknown engine {cfg.engine!r}: synthact or mmaction2")
    if cfg.backbone in DEPTH:  # the same selection, ready for mmaction2 (weights: see the config)
        write_config(cfg, run, None)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)  # the initial weights of everything not loaded from a file
    model = build_model(cfg)
    if cfg.init_from:
        init = load_checkpoint(Path(cfg.init_from), cfg)
        model.load_state_dict(init["model"])
    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    sched = _scheduler(opt, cfg)
    start, history = 0, []
    if resume:
        ck = load_checkpoint(run / CHECKPOINT, cfg)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
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
        torch.manual_seed(cfg.seed * 100003 + epoch)   # dropout masks
        model.train()
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        for x, y in tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                scores = model(x)
                loss = loss_fn(scores.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP_GRAD[cfg.modality])
            opt.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (scores.argmax(1) == y).sum().item()
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
        if progress:
            tqdm.write(f"epoch {epoch + 1}: loss {row['train_loss']:.4f} train {row['train_acc']:.3f} "
                       f"val top1 {row['val_top1']:.3f} ({row['images_per_s']} img/s)")
    if writer:
        writer.close()
    torch.save({"model": model.state_dict(), "config": {k: getattr(cfg, k) for k in ARCH_KEYS}}, run / "model.pt")
    metrics = evaluate_run(run, model, sel, cfg, device)
    metrics["history"] = history
    metrics["selection"] = sel.info
    (run / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def _save(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-save leaves the previous epoch's checkpoint


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _tensorboard(run: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(run / "tb"))
