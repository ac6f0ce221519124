"""Is a trained run's backbone alive, and are its BatchNorm statistics its own?

    .venv/bin/python bench/bn_check.py RUN [RUN ...]

For each train-tsn run folder (its final ``model.pt``): the share of the pooled backbone features
that are exactly zero and their spread across clips, on the run's own training and validation
clips; and the accuracy with BatchNorm in eval mode (running statistics) against the accuracy with
the batch's own statistics. A collapsed backbone shows ~all features zero and no spread (the loss
sits at ln C); running statistics that are not the run's own show eval accuracy far below the
batch-statistics accuracy. This is how the real + synthetic collapse of issue 24 was found: frozen
ImageNet statistics in the flow model (partial BN), then the TF port's 1 % averaging rate.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from synthact import contract as C
from synthact.train.dataset import Sample, TSNDataset
from synthact.train.models import TSN

MAX_CLIPS = 64


def _samples(path: Path) -> list[Sample]:
    out = []
    for e in C.read_annotations(path, clip_ids=False):
        clip = Path(e.clip)
        out.append(Sample(str(clip.parent.parent), f"{clip.parent.name}/{clip.name}", e.num_frames, e.label))
    return out


def check(run: Path) -> None:
    cfg = C.read_json(run / "config.json")
    model = TSN(cfg["num_classes"], cfg["backbone"], cfg["modality"], cfg["segments"], "none")
    model.load_state_dict(torch.load(run / "model.pt", map_location="cpu", weights_only=True)["model"])
    for name in ("train_list.txt", "val_list.txt"):
        ss = _samples(run / name)[:MAX_CLIPS]
        ds = TSNDataset(ss, cfg["modality"], cfg["segments"], cfg["size"], "val", 0)
        x = torch.stack([torch.as_tensor(ds[i][0]) for i in range(len(ss))])
        y = np.array([s.label for s in ss])
        with torch.no_grad():
            model.eval()
            feats = model.base((x.flatten(0, 1) - model.mean) / model.std)
            eval_acc = (model(x).argmax(1).numpy() == y).mean()
            model.train()
            model.dropout.p = 0.0
            batch_acc = (model(x).argmax(1).numpy() == y).mean()
        print(f"{run} {name}: features zero {(feats == 0).float().mean():.3f}, spread across clips "
              f"{feats.std(0).mean():.4f}; accuracy eval-mode BN {eval_acc:.3f}, batch-statistics BN "
              f"{batch_acc:.3f} ({len(ss)} clips)")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        check(Path(arg))
