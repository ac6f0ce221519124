"""Training input from WebDataset shards against the same clips in rawframe folders, in one run.

    .venv/bin/python bench/shards.py [--clips 48] [--frames 32] [--epochs 3] [--workers 2] [--modality flow]

Renders a small root at 340x256 with flow (not timed), exports it as shards, then times full
passes of train-tsn's own DataLoader (TSNDataset, training augmentation, 3 segments at 224) over
the same selection from folders and from shards: images/s counts segment images. The passes
alternate so that the page cache serves both alike.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader


def rate(samples, modality: str, epochs: int, workers: int) -> float:
    from synthact.train.dataset import EpochSampler, TSNDataset
    ds = TSNDataset(samples, modality, 3, 224, "train", 0)
    sampler = EpochSampler(len(ds), 0)
    loader = DataLoader(ds, 8, sampler=sampler, num_workers=workers, persistent_workers=workers > 0)
    start, n = time.perf_counter(), 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, _ in loader:
            n += x.shape[0] * x.shape[1]
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--modality", default="flow")
    a = ap.parse_args()
    from synthact import contract as C
    from synthact.export import export_root
    from synthact.flow.extract import run_flow
    from synthact.render.jobs import RenderJob, render_batch
    from synthact.train.dataset import Sample
    with tempfile.TemporaryDirectory() as tmp:
        root, shards = Path(tmp) / "synth", Path(tmp) / "shards"
        classes = "wave,clap,jump,walk"
        assert render_batch(RenderJob(out=root, classes=classes, per_class=a.clips // 4, frames=a.frames,
                                      workers=2), progress=False).ok
        assert run_flow(root, "dis", 2, progress=False).ok
        export_root(root, shards, "webdataset", shard_size=16)
        entries = C.read_annotations(C.synthetic_list_path(root))
        folders = [Sample(str(root / C.RAWFRAMES), e.clip, e.num_frames, e.label) for e in entries]
        sharded = [Sample(str(shards), e.clip, e.num_frames, e.label, sharded=True) for e in entries]
        rate(folders, a.modality, 1, a.workers)  # warm the page cache
        f1, s1 = rate(folders, a.modality, a.epochs, a.workers), rate(sharded, a.modality, a.epochs, a.workers)
        s2, f2 = rate(sharded, a.modality, a.epochs, a.workers), rate(folders, a.modality, a.epochs, a.workers)
    folder_rate, shard_rate = (f1 + f2) / 2, (s1 + s2) / 2
    print(f"machine: {platform.processor() or platform.machine()}, {a.workers} DataLoader workers, {a.modality}, "
          f"{a.clips} clips x {a.frames} frames at 340x256, {a.epochs} epochs per pass")
    print("| input | images/s |")
    print("|---|---|")
    print(f"| rawframe folders | {folder_rate:.1f} |")
    print(f"| WebDataset shards (synthact export) | {shard_rate:.1f} |")
    print(f"| ratio shards / folders | {shard_rate / folder_rate:.2f} |")


if __name__ == "__main__":
    main()
