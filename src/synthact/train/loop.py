"""``train-tsn``: fit a TSN on a selection, checkpoint every epoch, resume to the same result.

Every random draw is seeded by (seed, epoch): the shuffle order, the dropout masks and each
sample's augmentation, so a run resumed from its epoch-e checkpoint continues exactly as the
uninterrupted run would have. Checkpoints hold state dicts and plain types only and load with
``weights_only=True``.

Under ``torchrun`` the same loop runs data-parallel (see :mod:`.distributed`): ``--batch-size`` is
the global batch, rank 0 alone locks the run folder and writes every file, and a checkpoint holds
no per-rank state, so a run resumes at any world size.
"""
from __future__ import annotations

import csv
import io
import math
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch.utils.data import DataLoader

from .. import contract as C
from ..errors import BadConfig, MissingDependency
from ..progress import Progress
from ..provenance import versions
from ..rootlock import root_lock
from . import recipe
from .adapt_bn import adapt_batchnorm
from .checkpoint import ARCH_KEYS, RESUME_KEYS, load_checkpoint, restore
from .config import TrainConfig, check, check_resume, record, stream_lr
from .dataset import EpochSampler, ShareSampler, TSNDataset, worker_errors
from .distributed import RankBatches, World, convert_batchnorm, setup, share, share_outcome, teardown
from .evaluate import evaluate_run, predict
from .mixing import check_flow, select_clips, share_problem
from .mmaction_engine import DEPTH, backbone_checkpoint, train_mmaction, write_config
from .models import TSN, place
from .results import RunMetrics

__all__ = ["TrainConfig", "fit", "build_model", "load_checkpoint"]   # TrainConfig lives in .config



def _device(name: str, world: World | None = None) -> torch.device:
    if world is not None and world.parallel:   # one device per rank: cuda:LOCAL_RANK, or the CPU
        cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
        return torch.device(f"cuda:{world.local_rank}") if cuda else torch.device("cpu")
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
    files = C.RunLayout(run)
    return files.checkpoint.exists() or any(files.mmaction2_work.glob("epoch_*.pth"))


def fit(cfg: TrainConfig, resume: bool = False, progress: bool = True, wait: bool = False) -> RunMetrics:
    """Select, train and evaluate one TSN run into the run folder ``cfg.out`` (locked for the
    run); returns the final metrics (what ``metrics.json`` holds). Settings are checked first.
    Under torchrun (``WORLD_SIZE`` > 1) every rank calls this and gets the same metrics back."""
    check(cfg)
    world = setup(cfg.device)   # a world of one outside torchrun: the single-process run, unchanged
    try:
        check_world(cfg, world)
        with ExitStack() as stack:   # rank 0 alone holds the run folder's lock; a refusal reaches every rank
            share_outcome(world, lambda: stack.enter_context(root_lock(Path(cfg.out), wait)) and None)
            metrics = json_safe(_fit_locked(cfg, resume, progress, world))
    except BaseException:
        # A failing rank keeps its connections until its process exits: the launcher has its error
        # file by then, so the peers' "Connection closed by peer" is not taken for the cause.
        if not world.parallel:
            teardown(world)
        raise
    teardown(world)
    return RunMetrics.of(metrics, C.RunLayout(Path(cfg.out)).metrics)


def check_world(cfg: TrainConfig, world: World) -> None:
    """Refuse settings a torchrun world cannot honour, and one-line --compile problems."""
    cfg.world_size = world.size
    if cfg.compile and _device(cfg.device, world).type == "cpu" and not _cxx():
        raise MissingDependency("--compile: torch.compile's inductor backend needs a C++ compiler on CPU "
                                "(no g++, c++ or clang++ found); install one or train without --compile")
    if not world.parallel:
        return
    if cfg.batch_size % world.size:
        raise BadConfig(f"--batch-size {cfg.batch_size}: under torchrun it is the global batch, split evenly over "
                        f"the {world.size} processes; use a multiple of {world.size}")


def _cxx() -> str | None:
    return next((p for p in (os.environ.get("CXX"), "g++", "c++", "clang++") if p and shutil.which(p)), None)


def _check_share(share: float, sel) -> None:
    """A share needs real and synthetic clips to mix, in numbers that make an epoch (see share_problem)."""
    problem = share_problem(share, *sel.mix)
    if problem:
        raise BadConfig(f"--synthetic-share {share}: {problem}")


def _prelude(cfg: TrainConfig, resume: bool, world: World):
    """Rank 0's selection, checks and run files; what every rank needs of them."""
    run = Path(cfg.out)
    sel = select_clips(cfg.real, Path(cfg.real_root), Path(cfg.synthetic_root) if cfg.synthetic_root else None,
                       cfg.synthetic, cfg.real_fraction, cfg.classes, cfg.synthetic_only, cfg.seed)
    cfg.num_classes, cfg.info = len(sel.classes), sel.info
    if cfg.adapt_bn and not sel.real_pool:   # refused before training, not after it
        raise BadConfig(f"--adapt-bn: {cfg.real_root} holds no training clips of {cfg.real} to take statistics from")
    if cfg.synthetic_share is not None:
        _check_share(cfg.synthetic_share, sel)
    sharded = any(s.sharded for s in sel.train)  # mmaction2 reads frame folders, not our shards
    if sharded and cfg.engine == "mmaction2":
        raise BadConfig(f"--synthetic-root {cfg.synthetic_root}: WebDataset shards train with --engine synthact; "
                        f"mmaction2 reads rawframe folders")
    if cfg.modality == "flow":
        roots = {s.root for s in sel.train + sel.val}
        cfg.info["flow_method"] = check_flow(sorted(roots), cfg.allow_mixed_flow)
    cfg.lr = stream_lr(cfg)
    run.mkdir(parents=True, exist_ok=True)
    if resume:  # the run's own lists and settings are never rewritten
        check_resume(run, cfg, sel)
    elif _holds_a_run(run):
        raise BadConfig(f"{run}: already holds a run; pass --resume to continue it or choose another --out")
    else:
        record(run, cfg, sel)
    if world.parallel and len(sel.train) < world.size:
        raise BadConfig(f"{len(sel.train)} training clips cannot be shared by {world.size} processes")
    if cfg.engine == "mmaction2":
        return sel, write_config(cfg, run, backbone_checkpoint(cfg, run)), None
    if cfg.backbone in DEPTH and not sharded:  # the same selection, ready for mmaction2 (weights: see the config)
        write_config(cfg, run, None)
    ck = load_checkpoint(C.RunLayout(run).checkpoint, cfg, RESUME_KEYS) if resume else None
    return sel, None, ck


@dataclass
class _Parts:
    """What a run's epochs share, as built: the model, what steps it (DDP, compiled) and its data."""
    model: TSN
    trainer: torch.nn.Module   # the model, or its DDP or compiled wrapper
    params: list
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    sampler: EpochSampler
    loader: DataLoader
    val_ds: TSNDataset
    device: torch.device
    full: int                  # the global batch of every step (drop_last keeps only whole ones)


@dataclass
class _Epoch:
    """One epoch's training counts, summed over the world."""
    seen: int
    loss_sum: float
    correct: int
    seconds: float
    bar: Progress              # its epoch line is written through the (closed) bar


def _fit_locked(cfg: TrainConfig, resume: bool, progress: bool, world: World) -> dict:
    run = Path(cfg.out)
    sel, settings, ck = share_outcome(world, _prelude, cfg, resume, world)
    if not world.main:   # the settings rank 0 filled in from the selection (its info holds the flow method)
        cfg.num_classes, cfg.info, cfg.lr = len(sel.classes), sel.info, stream_lr(cfg)
    if cfg.engine == "mmaction2":
        return train_mmaction(cfg, run, resume, settings, world)
    parts = build(cfg, sel, ck, world)
    start, history = (ck["epoch"] + 1, ck["history"]) if resume else (0, [])
    writer = _tensorboard(run) if world.main else None
    loop_start, step_seconds, val_seconds, save_seconds = time.perf_counter(), 0.0, 0.0, 0.0
    for epoch in range(start, cfg.epochs):
        done = train_one_epoch(parts, cfg, epoch, world, progress)
        step_seconds += done.seconds
        t0 = time.perf_counter()
        val = evaluate(parts, cfg, world) if validates(cfg, epoch) else {}
        val_seconds += time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": done.loss_sum / done.seen, "train_acc": done.correct / done.seen,
               "val_top1": val.get("top1"), "val_mean_class": val.get("mean_class"),
               "lr": parts.opt.param_groups[0]["lr"], "seconds": round(done.seconds, 2),
               "images_per_s": round(done.seen * cfg.segments / done.seconds, 1)}
        history.append(row)
        if not world.main:
            continue
        t0 = time.perf_counter()
        save(run, parts, cfg, epoch, history, writer)
        save_seconds += time.perf_counter() - t0
        val_text = f"val top1 {row['val_top1']:.3f}" if val else "not validated"
        done.bar.write(f"epoch {epoch + 1}: loss {row['train_loss']:.4f} train {row['train_acc']:.3f} "
                       f"{val_text} ({row['images_per_s']} img/s)")
    if writer:
        writer.close()
    adapted = adapt_batchnorm(parts.model, sel.real_pool, cfg, parts.device) if cfg.adapt_bn else None
    if world.main:
        _save(C.RunLayout(run).model,
              {"model": parts.model.state_dict(), "config": {k: getattr(cfg, k) for k in ARCH_KEYS}})
    loop_seconds, eval_start = time.perf_counter() - loop_start, time.perf_counter()
    metrics = evaluate_run(run, parts.model, sel, cfg, parts.device, world)
    # where this invocation's wall time went: training steps against validation, checkpoints and logs
    metrics["timing"] = {"epochs": cfg.epochs - start, "epoch_loop_s": round(loop_seconds, 2),
                         "train_steps_s": round(step_seconds, 2), "validation_s": round(val_seconds, 2),
                         "checkpoints_logs_s": round(save_seconds, 2),
                         "not_steps_share": round(1 - step_seconds / loop_seconds, 4) if loop_seconds > 0 else None,
                         "final_eval_s": round(time.perf_counter() - eval_start, 2)}
    metrics["history"] = history
    metrics["selection"] = sel.info
    if adapted is not None:
        metrics["adapt_bn"] = adapted
    metrics["world_size"] = world.size
    metrics["versions"] = versions()
    if world.main:
        C.write_json(C.RunLayout(run).metrics, json_safe(metrics))   # whole, so ablate never reads half of it
    world.barrier()   # every rank returns once the run's files are written
    return metrics


def build(cfg: TrainConfig, sel, ck: dict | None, world: World) -> _Parts:
    """The model (seeded, or from ``--init-from``, or the checkpoint ``ck`` of a resumed run), its
    optimiser, schedule and loaders, wrapped for DDP and torch.compile where asked."""
    device = _device(cfg.device, world)
    torch.manual_seed(cfg.seed)  # the initial weights of everything not loaded from a file
    model = build_model(cfg)
    if cfg.init_from:
        restore(Path(cfg.init_from), model, load_checkpoint(Path(cfg.init_from), cfg)["model"], "model weights")
    place(model, device)
    if world.parallel:   # BatchNorm over the global batch; same parameters and buffers
        model = convert_batchnorm(model, world, device.type == "cuda")
    params = [p for p in model.parameters() if p.requires_grad]
    assert cfg.lr is not None   # the stream's default filled in by _prelude
    opt = torch.optim.SGD(_param_groups(model, params, cfg.lr, cfg.backbone_lr_mult), lr=cfg.lr,
                          momentum=recipe.MOMENTUM, weight_decay=cfg.weight_decay)
    sched = _scheduler(opt, cfg)
    if ck is not None:
        for target, key in ((model, "model"), (opt, "optimizer"), (sched, "scheduler")):
            restore(C.RunLayout(Path(cfg.out)).checkpoint, target, ck[key], f"{key} state")
    train_ds = TSNDataset(sel.train, cfg.modality, cfg.segments, cfg.size, "train", cfg.seed)
    val_ds = TSNDataset(sel.val, cfg.modality, cfg.segments, cfg.size, "val", cfg.seed)
    sampler = _sampler(cfg, sel, len(train_ds))
    full = min(cfg.batch_size, len(sampler))   # every global batch: drop_last keeps only whole ones
    trainer, loader = _data_parallel(cfg, model, train_ds, sampler, full, device, world)
    if cfg.compile:
        trainer = cast(torch.nn.Module, torch.compile(trainer))
    return _Parts(model, trainer, params, opt, sched, sampler, loader, val_ds, device, full)


def _param_groups(model: torch.nn.Module, trained: list, lr: float, backbone_lr_mult: float) -> list[dict]:
    """The ``trained`` parameters in one group at ``lr``, or the head's at ``lr`` (first: its lr is the
    one logged) and the backbone's at ``lr * backbone_lr_mult``; the schedule scales both alike. One
    group when they are equal, so a checkpoint's optimiser state from before the option existed still
    resumes."""
    if backbone_lr_mult == 1:
        return [{"params": trained, "lr": lr}]
    base = {id(p) for p in cast(TSN, model).base.parameters()}
    return [{"params": [p for p in trained if id(p) not in base], "lr": lr},
            {"params": [p for p in trained if id(p) in base], "lr": lr * backbone_lr_mult}]


def _sampler(cfg: TrainConfig, sel, n: int) -> EpochSampler:
    """Each epoch's order of the ``n`` training clips (the real ones first, then the synthetic)."""
    if cfg.synthetic_share is None:
        return EpochSampler(n, cfg.seed)
    n_real, n_synthetic = sel.mix
    return ShareSampler(n_real, n_synthetic, cfg.synthetic_share, cfg.seed)


def _data_parallel(cfg: TrainConfig, model: TSN, train_ds: TSNDataset, sampler: EpochSampler, full: int,
                   device: torch.device, world: World) -> tuple[torch.nn.Module, DataLoader]:
    """The model under DDP with this rank's share of each global batch, or itself with every batch."""
    drop_last = len(sampler) > cfg.batch_size
    if not world.parallel:
        return model, DataLoader(train_ds, cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                                 persistent_workers=cfg.workers > 0, drop_last=drop_last,
                                 pin_memory=device.type == "cuda")
    import warnings

    from torch.nn.parallel import DistributedDataParallel as DDP
    # size-1 dimensions (depthwise, SE convs) give equal layouts different strides: harmless, said per rank
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    trainer = DDP(model, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False,
                  gradient_as_bucket_view=True)
    loader = DataLoader(train_ds, batch_sampler=RankBatches(sampler, cfg.batch_size, drop_last, world),
                        num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                        pin_memory=device.type == "cuda")
    first = share(full, world)[0]
    model.dropout.set_shard(full * cfg.segments, first * cfg.segments)
    if world.main:   # stated once, even with --quiet
        print(f"torchrun: {world.size} processes ({'nccl' if device.type == 'cuda' else 'gloo'}), global batch "
              f"{cfg.batch_size} = {cfg.batch_size // world.size} per process", flush=True)
    return trainer, loader


def train_one_epoch(parts: _Parts, cfg: TrainConfig, epoch: int, world: World, progress: bool) -> _Epoch:
    """One pass over the training loader, seeded by (seed, epoch), then one step of the schedule."""
    device, full = parts.device, parts.full
    parts.sampler.set_epoch(epoch)
    torch.manual_seed(recipe.epoch_seed(cfg.seed, epoch))   # dropout masks (of the global batch)
    parts.trainer.train()
    t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
    bar = Progress(len(parts.loader), f"epoch {epoch + 1}/{cfg.epochs}", "batch", "images/s",
                   enabled=progress and world.main, leave=False)
    with worker_errors(), _compile_errors(cfg.compile):
        for x, y in parts.loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                scores = parts.trainer(x)
                if world.parallel:   # this rank's share of the global batch's mean (DDP averages ranks)
                    loss = torch.nn.functional.cross_entropy(scores.float(), y, reduction="sum") * (world.size / full)
                else:
                    loss = torch.nn.functional.cross_entropy(scores.float(), y)
            parts.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parts.params, recipe.CLIP_GRAD[cfg.modality])
            parts.opt.step()
            seen += len(y)
            loss_sum += loss.item() * (full / world.size if world.parallel else len(y))
            correct += (scores.argmax(1) == y).sum().item()
            bar.update(1, len(y) * cfg.segments * world.size)
    bar.close()
    parts.sched.step()
    seconds = time.perf_counter() - t0
    if world.parallel:
        total = world.sum([seen, loss_sum, correct, seconds])
        seen, loss_sum, correct, seconds = int(total[0]), total[1], int(total[2]), total[3] / world.size
    return _Epoch(seen, loss_sum, correct, seconds, bar)


def evaluate(parts: _Parts, cfg: TrainConfig, world: World) -> dict:
    """The validation pass of an epoch: the model's metrics on the val list."""
    return predict(parts.model, parts.val_ds, cfg.batch_size, cfg.workers, parts.device, world)


def save(run: Path, parts: _Parts, cfg: TrainConfig, epoch: int, history: list[dict], writer) -> None:
    """Rank 0's end of an epoch: its scalars to TensorBoard, the checkpoint and ``log.csv``."""
    for k, v in history[-1].items():
        if k != "epoch" and writer and v is not None:
            writer.add_scalar(k, v, epoch + 1)
    _save(C.RunLayout(run).checkpoint, {"model": parts.model.state_dict(), "optimizer": parts.opt.state_dict(),
                             "scheduler": parts.sched.state_dict(), "epoch": epoch, "history": history,
                             "config": {k: getattr(cfg, k) for k in ARCH_KEYS}})
    _write_csv(C.RunLayout(run).log, history)


class _compile_errors:
    """A torch.compile backend that fails on this machine is one line, not inductor's traceback."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if not self.on or exc is None:
            return False
        from torch._dynamo.exc import BackendCompilerFailed
        if isinstance(exc, BackendCompilerFailed):
            why = " ".join(str(exc.inner_exception if hasattr(exc, "inner_exception") else exc).split())[:200]
            raise MissingDependency(f"--compile: torch.compile could not compile the model here ({why}); "
                                    f"train without --compile") from None
        return False


def json_safe(obj):
    """A diverged loss (nan, inf) as JSON null: strict JSON has no such numbers."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def _save(path: Path, obj: dict) -> None:
    with C.atomic_output(path) as tmp:  # a kill mid-save leaves the previous epoch's checkpoint
        torch.save(obj, tmp)


def validates(cfg: TrainConfig, epoch: int) -> bool:
    """Whether 0-based ``epoch`` ends with a validation pass: every ``val_interval`` epochs and after
    the last, as mmengine's loop does; never with 0 (the final evaluation still runs)."""
    n = cfg.val_interval
    return n > 0 and ((epoch + 1) % n == 0 or epoch + 1 == cfg.epochs)


def _write_csv(path: Path, rows: list[dict]) -> None:
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    C.atomic_write(path, text.getvalue())


def _tensorboard(run: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(C.RunLayout(run).tensorboard))
