"""A run's settings: type-checked before anything runs, recorded once, held to on resume.

A setting reaches the run from the CLI or an ablate YAML, and later becomes file names, torch
arguments and an mmaction2 config: a wrong type or range is refused here, in one line naming the
option (``--lr``) or the file and key (``grid.yaml: train.lr``), before a folder is written. A
resumed run must ask for exactly the data and recipe it began with, or it would quietly become a
different experiment under the same name.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from .. import contract as C
from ..errors import BadConfig, BadData, MissingDependency, warn
from ..provenance import differences, versions
from .mixing import parse_real
from .recipe import BACKBONES, DEFAULT_LR, MODALITIES, PROTOCOLS, WEIGHT_DECAY

CHOICES = {"modality": MODALITIES, "backbone": BACKBONES, "schedule": ("step", "cosine"),
           "eval_protocol": tuple(PROTOCOLS), "engine": ("synthact", "mmaction2")}
# upper bounds where a larger value only exhausts memory or processes: TSN samples 3 to 25 segments,
# inputs are crops of frames stored at most 4096 wide, and DataLoader workers beyond 64 only add processes
INTS = {"synthetic": (0, None), "segments": (1, 64), "size": (16, 4096), "epochs": (1, None),
        "batch_size": (1, None), "workers": (0, 64), "val_interval": (0, None),
        "seed": (0, 2**32 - 1),   # numpy/torch seed range
        "world_size": (1, None)}
# finite numbers: each one's range and how a value outside it is refused; lr and synthetic_share may be None
NUMBERS: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda v: v > 0, "must be a finite number > 0"),
    "weight_decay": (lambda v: v >= 0, "must be a finite number >= 0"),
    "real_fraction": (lambda v: 0 < v <= 1, "must be a number in (0, 1]"),
    "synthetic_share": (lambda v: 0 < v < 1, "must be a number in (0, 1)"),
    "backbone_lr_mult": (lambda v: 0 < v <= 1, "must be a number in (0, 1]")}
OPTIONAL_NUMBERS = ("lr", "synthetic_share")
TEXT = ("out", "real", "real_root", "pretrained")
OPTIONAL_TEXT = ("synthetic_root", "classes", "init_from")
FLAGS = ("synthetic_only", "allow_mixed_flow", "compile", "adapt_bn")
# what a resumed run may change: where and how fast it runs, how often it validates and the final
# evaluation and the statistics it normalises with (and how many processes run it: a torchrun run resumes
# at any world size; --compile on or off)
RESUME_FREE = {"out", "workers", "device", "eval_protocol", "allow_mixed_flow", "info", "world_size", "compile",
               "val_interval", "adapt_bn"}
PATHS = {"real_root", "synthetic_root", "init_from", "pretrained"}


@dataclass
class TrainConfig:
    """Every setting of one train-tsn run (CLI options, or an ablate cell)."""

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
    weight_decay: float = WEIGHT_DECAY
    workers: int = 2
    seed: int = 0
    eval_protocol: str = "tsn"           # final evaluation: tsn (25 snippets x 10 crops) or fast
    val_interval: int = 1                # validate every N epochs and after the last (0: never); mmaction2's name
    device: str = "auto"
    allow_mixed_flow: bool = False       # train on roots whose flow methods differ
    engine: str = "synthact"             # or mmaction2 (optional extra: make mmaction)
    compile: bool = False                # torch.compile the model for training (inductor)
    adapt_bn: bool = False               # BatchNorm statistics re-estimated on the real training clips
    synthetic_share: float | None = None  # fraction of each epoch's (and batch's) clips that are synthetic
    backbone_lr_mult: float = 1.0        # the backbone's lr over the head's (mmengine's lr_mult)
    world_size: int = 1                  # processes training together (torchrun); filled at start
    num_classes: int = 0                 # filled from the selection
    info: dict = field(default_factory=dict)


def stream_lr(cfg: TrainConfig) -> float:
    """The learning rate a run trains at and records: its own, or its stream's default."""
    return cfg.lr or DEFAULT_LR[cfg.modality]


def cli_name(key: str) -> str:
    """How the CLI spells a setting: ``--batch-size``."""
    return "--" + key.replace("_", "-")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def setting_problem(key: str, v: Any) -> str | None:
    """What is wrong with setting ``key`` = ``v``, or None."""
    if key in CHOICES:
        return None if v in CHOICES[key] else "choose from " + ", ".join(CHOICES[key])
    if key in INTS:
        lo, hi = INTS[key]
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
        return None if ok else f"must be a whole number >= {lo}" + (f" and <= {hi}" if hi else "")
    if key in NUMBERS:
        if v is None and key in OPTIONAL_NUMBERS:
            return None
        if isinstance(v, str):   # YAML 1.1 reads 1e-3 (no dot) as text
            return "must be a number, not text (in YAML write 1.0e-3 or 0.001, not 1e-3)"
        in_range, refusal = NUMBERS[key]
        return None if _number(v) and math.isfinite(v) and in_range(v) else refusal
    if key in TEXT or key in OPTIONAL_TEXT:
        ok = (isinstance(v, str) and v != "") or (v is None and key in OPTIONAL_TEXT)
        return None if ok else "must be a non-empty text"
    if key in FLAGS:
        return None if isinstance(v, bool) else "must be true or false"
    return None


def check(cfg: TrainConfig, name: Callable[[str], str] = cli_name) -> TrainConfig:
    """Refuse a setting of the wrong type or range; ``name(key)`` is how the user wrote it."""
    for key, value in asdict(cfg).items():
        problem = setting_problem(key, value)
        if problem:
            raise BadConfig(f"{name(key)} {value!r}: {problem}")
    check_device(cfg.device, name("device"))
    parse_real(cfg.real)
    for flag in ("compile", "adapt_bn", "synthetic_share"):   # mmaction2 builds its own model and sampler
        if getattr(cfg, flag) not in (False, None) and cfg.engine == "mmaction2":
            raise BadConfig(f"{name(flag)}: applies to the synthact engine only (mmaction2 builds its own model "
                            f"and sampler)")
    return cfg


def read_config(run: Path) -> TrainConfig:
    """A run folder's recorded settings (``config.json``) as the TrainConfig it ran with, each held to
    the types and ranges a new run's are: a hand-edited or foreign file is refused in one line naming it
    and the key. A setting added to synthact since the run began takes its default; keys this version
    does not know (the recorded versions among them) are left out."""
    path = C.RunLayout(run).config
    return config_from(C.read_json(path), path)


def config_from(raw: Any, path: Path) -> TrainConfig:
    """:func:`read_config` of a ``config.json`` already read (``raw``), for a caller that also
    wants what it records besides the settings (the versions); ``path`` is named in errors."""
    known = {f.name for f in fields(TrainConfig)}
    needed = ("out", "real", "real_root", "backbone", "modality", "segments", "size", "num_classes")
    if not isinstance(raw, dict) or any(k not in raw for k in needed):
        raise BadData(f"{path}: not a train-tsn run's settings (expected a JSON object with {', '.join(needed)})")
    for key in known & raw.keys():
        value = raw[key]
        problem = setting_problem(key, value)
        if key == "num_classes" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            problem = "must be a whole number >= 1"
        if key == "info":
            problem = _info_problem(value)
        if key == "device" and not isinstance(value, str):
            problem = "must be a text"
        if problem:
            raise BadData(f"{path}: {key} {value!r}: {problem}")
    return TrainConfig(**{k: v for k, v in raw.items() if k in known})


def _info_problem(info: Any) -> str | None:
    """What is wrong with a recorded selection (``info``): predict reads the flow method from it."""
    from ..flow.methods import METHODS
    if not isinstance(info, dict):
        return "must be a mapping"
    method = info.get("flow_method")
    if method is not None and not (isinstance(method, str) and all(m in METHODS for m in method.split(","))):
        return f"flow_method {method!r} is not one of {', '.join(METHODS)}"
    return None


def check_device(device: Any, name: str = "--device") -> None:
    """auto, cpu, cuda or cuda:N; a CUDA device this machine lacks is a missing dependency."""
    m = re.fullmatch(r"auto|cpu|cuda(?::(\d+))?", device) if isinstance(device, str) else None
    if not m:
        raise BadConfig(f"{name} {device!r}: choose auto, cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(m.group(1) or 0) >= n:
            raise MissingDependency(f"{name} {device}: torch sees {n} CUDA device(s) here; use --device cpu or auto")


def _same(key: str, old: Any, new: Any) -> bool:
    if old == new:
        return True
    # a root named from another folder, or by an absolute path, is still the same root
    return key in PATHS and isinstance(old, str) and isinstance(new, str) and Path(old).resolve() == Path(new).resolve()


def list_entries(sel) -> dict[str, list[C.Entry]]:
    """A selection's training and validation clips as the run folder's list files hold them."""
    return {name: [C.Entry(str(Path(s.prefix) / s.clip), s.num_frames, s.label) for s in samples]
            for name, samples in zip(C.RunLayout.LISTS, (sel.train, sel.val), strict=True)}


def changed_settings(path: Path, cfg: TrainConfig, free: set[str] = RESUME_FREE) -> tuple[str, str] | None:
    """Where ``cfg`` differs from the settings recorded in ``path`` (a run's config.json), outside
    ``free``: the recorded and the asked values as ``key=value, ...``; None where they agree."""
    # held to a new run's checks; a setting added to synthact since the run began was its default then
    old = json.loads(json.dumps(asdict(config_from(C.read_json(path), path))))
    new = json.loads(json.dumps(asdict(cfg)))   # compared as JSON gives them back
    diff = [k for k in new if k not in free and not _same(k, old[k], new[k])]
    if not diff:
        return None
    return ", ".join(f"{k}={old[k]!r}" for k in diff), ", ".join(f"{k}={new[k]!r}" for k in diff)


def check_resume(run: Path, cfg: TrainConfig, sel) -> None:
    """Refuse resuming ``run`` with settings or a selection other than those it was started with."""
    path = C.RunLayout(run).config
    if not path.exists():
        raise BadData(f"{path}: missing, so there is no run here whose settings --resume could continue; "
                      f"start without --resume or in another --out")
    diff = changed_settings(path, cfg)
    if diff:
        raise BadConfig(f"{path}: --resume asks {diff[1]}; the run was started with {diff[0]}: resume with the same "
                        f"settings or train into another --out")
    for name, entries in list_entries(sel).items():
        if C.read_annotations(Path(run) / name, clip_ids=False) != entries:
            raise BadConfig(f"{Path(run) / name}: this run's clips differ from the selection the same settings give "
                            f"now (the roots changed?); resume refused: train into another --out")
    if C.read_classes(Path(run) / C.CLASSES) != sel.classes:
        raise BadConfig(f"{Path(run) / C.CLASSES}: the label space changed since the run began; resume refused")
    changed = differences(C.read_json(path).get("versions"))
    if changed:
        warn(f"{path}: this run was started with other versions ({', '.join(changed)})")


def record(run: Path, cfg: TrainConfig, sel) -> None:
    """A new run's exact lists (mmaction2 rawframe format) and settings; each file written whole."""
    for name, entries in list_entries(sel).items():
        C.write_annotations(Path(run) / name, entries)
    C.write_classes(Path(run), sel.classes)
    C.write_json(C.RunLayout(run).config, {**asdict(cfg), "versions": versions()})
