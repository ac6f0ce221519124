"""TSN training throughput, in one run: the full pipeline (JPEGs through the DataLoader) against
the model-only ceiling (the same batches already in memory), and our TSN against mmaction2's TSN
training the same selection with the same recipe (`--engines`).

    .venv/bin/python bench/train.py [--device cpu|cuda] [--backbone resnet18] [--size 224]
                                    [--batch 8] [--steps 6] [--workers 2] [--modality rgb]
                                    [--engines] [--epochs 2] [--compile] [--layouts]

Images/s counts segment images (batch x segments). A ratio near 1 means training is not
input-bound. It renders its own small rawframe root at 340x256 first (not timed). ``--compile``
adds the model-only step under ``torch.compile`` (inductor; train-tsn ``--compile``) against the
same eager step, the compilation itself (the first steps) not timed. ``--layouts`` adds the
model-only step with NCHW weights against the channels_last weights train-tsn uses, same batch.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


def engines(tmp: Path, a, root: Path, with_mmaction2: bool = True) -> tuple[float, float | None, dict]:
    """Training images/s (validation excluded) of our engine and, optionally, mmaction2's on one
    selection and recipe; and where our loop's wall time went (metrics.json's timing)."""
    from synthact.data.target_domain import write_split_lists
    from synthact.train.loop import TrainConfig, fit
    counts = write_split_lists(root, "bench", val_every=5)
    common = dict(real="bench:split1", real_root=str(root), modality=a.modality, backbone=a.backbone, size=a.size,
                  epochs=a.epochs, batch_size=min(a.batch, counts["train"]), workers=a.workers, eval_protocol="fast",
                  device=a.device, val_interval=a.val_interval)
    ours = fit(TrainConfig(out=str(tmp / "ours"), **common), progress=False)
    n = ours.fields["selection"]["real_train"] * 3
    ours_rate = n * a.epochs / sum(h["seconds"] for h in ours.fields["history"])
    if not with_mmaction2:
        return ours_rate, None, ours.fields["timing"]
    from mmengine.config import Config
    from mmengine.runner import Runner

    from synthact.train import mmaction_plugins  # noqa: F401
    from synthact.train.mmaction_engine import CONFIG
    cfg = Config.fromfile(str(tmp / "ours" / CONFIG))   # the config every run writes for mmaction2
    cfg.work_dir = str(tmp / "mm")
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    t0 = time.perf_counter()
    runner.train()
    return ours_rate, n * a.epochs / (time.perf_counter() - t0), ours.fields["timing"]


def make_root(tmp: Path, modality: str, given: Path | None = None) -> list:
    from synthact import contract as C
    from synthact.flow.extract import run_flow
    from synthact.train.dataset import Sample
    root = given or tmp / "synth"
    if given is None:  # bpy only where the root is rendered: a GPU box may be given one made elsewhere
        from synthact.render.jobs import RenderJob, render_batch
        assert render_batch(RenderJob(out=root, classes="ucf25", total=50, frames=16, workers=os.cpu_count(), seed=5),
                            progress=False).ok
    if modality == "flow" and not (root / C.FLOW_MANIFEST).exists():
        assert run_flow(root, "dis", os.cpu_count(), progress=False).ok
    return [Sample(str(root / C.RAWFRAMES), e.clip, e.num_frames, e.label)
            for e in C.read_annotations(root / C.ANNOTATIONS / "synthetic_rawframes.txt")]


def step_fn(model, device):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def timed(fn, n: int, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    from torch.utils.data import DataLoader

    from synthact.train.dataset import TSNDataset
    from synthact.train.models import TSN, place
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--modality", default="rgb")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--engines", action="store_true", help="also our TSN against mmaction2's")
    ap.add_argument("--loop", action="store_true", help="also our whole training loop (train-tsn's fit) alone")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--val-interval", type=int, default=1, help="train-tsn's --val-interval for --loop")
    ap.add_argument("--root", type=Path, help="a rendered rawframe root to use instead of rendering one")
    ap.add_argument("--compile", action="store_true", help="also the model-only step under torch.compile")
    ap.add_argument("--layouts", action="store_true", help="also the model-only step with NCHW weights")
    ap.add_argument("--pretrained", default="none", help="train-tsn's --pretrained (imagenet, none)")
    a = ap.parse_args()
    device = torch.device(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        samples = make_root(Path(tmp), a.modality, a.root)
        samples = samples * (a.batch * (a.steps + 2) // len(samples) + 1)  # clips repeat: every step still decodes
        ds = TSNDataset(samples, a.modality, 3, a.size, "train")
        model = place(TSN(25, a.backbone, a.modality, pretrained=a.pretrained), device).train()
        step = step_fn(model, device)
        loader = DataLoader(ds, a.batch, shuffle=True, num_workers=a.workers, drop_last=True,
                            pin_memory=device.type == "cuda", persistent_workers=a.workers > 0)
        batches = iter(loader)
        x0, y0 = next(batches)
        step(x0, y0)                              # warm-up (and workers started)
        full = timed(lambda it=batches: step(*next(it)), a.steps, device)
        ceiling = timed(lambda: step(x0, y0), a.steps, device)
        del loader, batches
        compiled = None
        if a.compile:   # the same model and batch, compiled; 3 untimed steps compile it (and settle autotuning)
            cstep = step_fn(torch.compile(model), device)
            timed(lambda: cstep(x0, y0), 3, device)
            eager_again = timed(lambda: step(x0, y0), a.steps, device)
            compiled = (timed(lambda: cstep(x0, y0), a.steps, device), eager_again)
        nchw = None
        if a.layouts:   # the same weights and batch, contiguous: the layout before train-tsn's place()
            model.to(memory_format=torch.contiguous_format)
            timed(lambda: step(x0, y0), 2, device)
            before = timed(lambda: step(x0, y0), a.steps, device)
            place(model, device)
            nchw = (before, timed(lambda: step(x0, y0), a.steps, device))
        root = a.root or Path(tmp) / "synth"
        both = engines(Path(tmp), a, root, a.engines) if a.engines or a.loop else None
    images = a.steps * a.batch * 3
    print(f"# train bench: {platform.machine()}, {os.cpu_count()} cores, device {device}, {a.backbone} {a.modality}, "
          f"{a.size}px, batch {a.batch} x 3 segments, {a.steps} steps, {a.workers} loader workers")
    print("| case | images/s |")
    print("|---|---|")
    print(f"| model only (batch in memory), ceiling | {images / ceiling:.1f} |")
    print(f"| full pipeline (JPEG decode, TSN sampling, augmentation, DataLoader) | {images / full:.1f} |")
    print(f"| ratio full / ceiling | {ceiling / full:.2f} |")
    if compiled:
        print(f"| model only, torch.compile (inductor) | {images / compiled[0]:.1f} |")
        print(f"| model only, eager, timed again beside it | {images / compiled[1]:.1f} |")
        print(f"| ratio compiled / eager | {compiled[1] / compiled[0]:.2f} |")
    if nchw:
        print(f"| model only, NCHW weights | {images / nchw[0]:.1f} |")
        print(f"| model only, channels_last weights, timed again after it | {images / nchw[1]:.1f} |")
        print(f"| ratio channels_last / NCHW | {nchw[0] / nchw[1]:.2f} |")
    if both:
        print(f"| synthact engine (train-tsn's loop), {a.epochs} epochs, training only | {both[0]:.1f} |")
        t = both[2]
        print(f"| train-tsn's loop: share of its wall time not in training steps (per-epoch validation, "
              f"checkpoints, logs; {t['epoch_loop_s']} s for {t['epochs']} epochs, --val-interval {a.val_interval}) | "
              f"{t['not_steps_share']:.3f} |")
        print(f"| of which per-epoch validation / checkpoints and logs (s) | {t['validation_s']} / "
              f"{t['checkpoints_logs_s']} |")
    if both and both[1]:
        print(f"| mmaction2 1.2.0 engine, same selection and recipe, training only | {both[1]:.1f} |")
        print(f"| ratio synthact / mmaction2 | {both[0] / both[1]:.2f} |")


if __name__ == "__main__":
    main()
