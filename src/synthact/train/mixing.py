"""Which clips a run trains and evaluates on: real subsets, synthetic counts, the label space.

The label space is the real dataset's (its label map, optionally restricted to a named subset).
Synthetic classes map onto it through the class map in ``assets/classes.yaml`` (or by identical
name), synthetic clips are drawn balanced over the classes that map, real training clips are
subsampled per class with a fixed seed, and evaluation only ever sees real validation clips.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import contract as C
from .. import shards
from ..assets import class_map
from ..data.splits import subset_classes
from ..errors import BadConfig
from .samples import Sample


@dataclass
class Selection:
    """The label space and the training and validation clips of a run."""

    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    info: dict = field(default_factory=dict)
    real_pool: list[Sample] = field(default_factory=list)   # every real training clip, whatever the run keeps

    @property
    def mix(self) -> tuple[int, int]:
        """(real, synthetic) training clips: ``train`` holds the real ones first."""
        n_synthetic = self.info["synthetic"]
        return len(self.train) - n_synthetic, n_synthetic


class RealSpec(NamedTuple):
    """``--real``: the dataset, its official split, and the split whose test clips validate instead."""

    dataset: str
    split: int
    val_split: int | None = None   # hold out, among ``split``'s training clips, those this split tests on


REAL_SPEC = re.compile(r"([^:]+):split([123])(?:-val([123]))?")


def parse_real(spec: str) -> RealSpec:
    """``hmdb51:split1`` -> (hmdb51, 1); ``hmdb51:split1-val2`` -> (hmdb51, 1, 2): train on split 1's
    training clips that split 2 also trains on, validate on those that split 2 tests on, so that
    tuning never touches split 1's test clips."""
    m = REAL_SPEC.fullmatch(spec)
    if not m or m.group(2) == m.group(3):
        raise BadConfig(f"bad --real {spec!r}: expected DATASET:splitK or DATASET:splitK-valJ (J another split), "
                        f"e.g. hmdb51:split1 or hmdb51:split1-val2")
    C.check_name(m.group(1), "dataset", f"--real {spec!r}")   # it names the root's list files
    return RealSpec(m.group(1), int(m.group(2)), int(m.group(3)) if m.group(3) else None)


def _real_lists(root: Path, spec: RealSpec) -> tuple[list[str], list[C.Entry], list[C.Entry]]:
    dataset, split, val_split = spec
    train = C.read_annotations(C.split_list_path(root, dataset, "train", split))
    if val_split is None:
        val = C.read_annotations(C.split_list_path(root, dataset, "val", split))
    else:
        held = {e.clip for e in C.read_annotations(C.split_list_path(root, dataset, "val", val_split))}
        train, val = [e for e in train if e.clip not in held], [e for e in train if e.clip in held]
    return C.read_classes(C.label_map_path(root, dataset)), train, val


def _relabel(entries: list[C.Entry], old: list[str], new: list[str], root: Path, path: str) -> list[Sample]:
    index = {c: i for i, c in enumerate(new)}
    out = []
    for e in entries:
        if not 0 <= e.label < len(old):
            raise C.BadData(f"{root / path}: {e.clip} has label {e.label}, the label map has {len(old)} classes")
        name = old[e.label]
        if name in index:
            out.append(Sample(str(root / C.RAWFRAMES), e.clip, e.num_frames, index[name]))
    return out


def flow_method(root: Path) -> str:
    """The flow method a root holds (its flow.json); a root without flow is an error for flow runs."""
    info = C.FlowInfo.read(Path(root))
    if info is None:
        raise C.BadData(f"{root}: no flow here ({C.FLOW_INFO} missing): run extract-flow on it first")
    return info.method


def check_flow(roots: list[Path], allow_mixed: bool) -> str:
    """Every root the run reads must hold flow, and the same method unless explicitly allowed:
    TSN's premise is that synthetic and real flow look alike."""
    methods = {str(r): flow_method(r) for r in dict.fromkeys(map(Path, roots))}
    if len(set(methods.values())) > 1 and not allow_mixed:
        raise BadConfig("flow methods differ: " + ", ".join(f"{r} has {m}" for r, m in methods.items())
                         + " (recompute one with extract-flow --overwrite, or pass --allow-mixed-flow)")
    return ",".join(sorted(set(methods.values())))


def synthetic_target(ours: str, dataset: str, labels: list[str]) -> str | None:
    """The target class our synthetic class stands for: same name, else the dataset's class map."""
    if ours in labels:
        return ours
    mapped = class_map()["actions"].get(ours, {}).get(dataset)
    return mapped if mapped in labels else None


def _per_class_pick(samples: list[Sample], quota: dict[int, int], rng: np.random.Generator, what: str) -> list[Sample]:
    by_class: dict[int, list[Sample]] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    picked = []
    for label, n in sorted(quota.items()):
        pool = by_class.get(label, [])
        if n > len(pool):
            raise BadConfig(f"{what}: class {label} has {len(pool)} clips, {n} requested")
        order = rng.permutation(len(pool))[:n]
        picked += [pool[i] for i in sorted(order)]
    return picked


class NoValidationClips(BadConfig):
    """A selection whose real root holds none of its validation (or test) clips."""


def select_clips(real: str, real_root: Path, synthetic_root: Path | None = None, synthetic: int = 0,
                 real_fraction: float = 1.0, classes: str | None = None, synthetic_only: bool = False,
                 seed: int = 0) -> Selection:
    """The clips a run trains and evaluates on (see the module docstring)."""
    spec = parse_real(real)
    dataset, split = spec.dataset, spec.split
    real_root = Path(real_root)
    labels, train_e, val_e = _real_lists(real_root, spec)
    keep = subset_classes(dataset, classes, labels) if classes else labels
    train = _relabel(train_e, labels, keep, real_root, f"{dataset}_train_split_{split}")
    val = _relabel(val_e, labels, keep, real_root, f"{dataset}_val_split_{split}")
    if not 0.0 < real_fraction <= 1.0:
        raise BadConfig(f"--real-fraction {real_fraction}: must be in (0, 1]")
    if not val:   # else the run reports a top-1 of 0.0 scored on nothing
        raise NoValidationClips(f"{real_root}: --real {real} leaves no validation clips"
                        + (f" in the classes {classes}" if classes else "")
                        + (f" (none of split {split}'s training clips here is one split {spec.val_split} tests on)"
                           if spec.val_split else f" (split {split}'s test videos are not prepared here)"))
    rng = np.random.default_rng([seed, 1])
    counts = np.bincount([s.label for s in train], minlength=len(keep))
    pool = train
    if real_fraction < 1.0:  # per class, at least one clip each
        train = _per_class_pick(train, {c: max(1, round(real_fraction * n)) for c, n in enumerate(counts) if n},
                                rng, f"{real_root} train split {split}")
    info = {"dataset": dataset, "split": split, **({"val_split": spec.val_split} if spec.val_split else {}),
            "classes": len(keep), "real_train_available": int(counts.sum()),
            "real_train": 0 if synthetic_only else len(train), "val": len(val)}
    synth: list[Sample] = []
    if synthetic or synthetic_only:
        if synthetic_root is None:
            raise BadConfig("--synthetic needs --synthetic-root")
        synth = _synthetic(Path(synthetic_root), dataset, keep, synthetic, np.random.default_rng([seed, 2]))
        info["synthetic_classes"] = len({s.label for s in synth})
    info["synthetic"] = len(synth)
    picked = synth if synthetic_only else train + synth   # real first: ShareSampler counts on it
    if not picked:
        raise BadConfig("the selection has no training clips")
    return Selection(keep, picked, val, info, pool)


def synthetic_per_epoch(n_real: int, share: float) -> int:
    """``--synthetic-share``: the synthetic clips an epoch of ``n_real`` real clips holds."""
    return round(n_real * share / (1.0 - share))


def share_problem(share: float, n_real: int, n_synthetic: int) -> str | None:
    """Why a run of ``n_real`` real and ``n_synthetic`` synthetic training clips cannot mix them at
    ``share``, or None. A clip drawn twice in an epoch would be the same crops twice (augmentation is
    seeded by clip and epoch), and a share near 1 would make epochs without end."""
    if not n_real or not n_synthetic:
        return f"mixes real and synthetic clips; this run has {n_real} real and {n_synthetic} synthetic training clips"
    per_epoch = synthetic_per_epoch(n_real, share)
    if per_epoch < 1:
        return f"with {n_real} real training clips an epoch would hold no synthetic clip; use a larger share"
    if per_epoch > n_synthetic:
        return (f"{n_real} real training clips ask {per_epoch} synthetic clips an epoch, more than the "
                f"{n_synthetic} selected (each at most once an epoch): use a smaller share or more synthetic clips")
    return None


def _synthetic(root: Path, dataset: str, labels: list[str], n: int, rng: np.random.Generator) -> list[Sample]:
    ours = C.read_classes(root / C.CLASSES)
    sharded = shards.is_shard_folder(root)  # synthact export's shards read like the root they came from
    entries = shards.entries(root) if sharded else C.read_annotations(C.synthetic_list_path(root))
    target = {i: synthetic_target(c, dataset, labels) for i, c in enumerate(ours)}
    index = {c: i for i, c in enumerate(labels)}
    prefix = str(root if sharded else root / C.RAWFRAMES)
    pool = [Sample(prefix, e.clip, e.num_frames, index[name], sharded=sharded)
            for e in entries if (name := target.get(e.label))]
    covered = sorted({s.label for s in pool})
    if not covered:
        raise BadConfig(f"{root}: none of its classes maps onto the {dataset} label space")
    if n <= 0:  # synthetic-only without a count: all that map
        return pool
    quota = {c: n // len(covered) + (i < n % len(covered)) for i, c in enumerate(covered)}
    return _per_class_pick(pool, quota, rng, f"{root} synthetic clips")
