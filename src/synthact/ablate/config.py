"""An ablation config: the YAML (or a shipped experiment's name) read and every key, type, value
and cell's train-tsn settings checked, each refused in one line naming the key, before any cell runs."""
from __future__ import annotations

import re
from dataclasses import fields
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from .. import contract as C
from ..errors import BadConfig
from ..train.config import TrainConfig, check, setting_problem
from .grid import by_stream, cells, synthetic_sets, train_config
from .roots import check_blocks, planned_roots

GRID_KEYS = {"synthetic": [0], "real_fraction": [1.0], "modality": ["rgb"], "splits": [1], "seeds": [0]}
TOP_KEYS = {"name", "real", "real_root", "synthetic_root", "classes", "fusion_weights", "eval_protocol", "train",
            "note", "cell_cpus", "cell_gpus", "synthetic_roots", "val_split", "prepare", "render",
            "workers", "recipes", "stage1", "stage2", "fraction_epochs", "rgb_synthetic"} | set(GRID_KEYS)
TRAIN_KEYS = {f.name for f in fields(TrainConfig)} - {"out", "real", "real_root", "synthetic_root", "synthetic",
                                                      "real_fraction", "classes", "synthetic_only", "modality",
                                                      "seed", "eval_protocol", "num_classes", "info"}
MODALITIES = ("rgb", "flow", "fusion")
# mixed: real and synthetic clips in the same batches; two_stage: the synthetic-only cell of the same
# seed, count, set and stream, fine-tuned on the cell's real clips alone (the paper's pretraining)
RECIPES = ("mixed", "two_stage")
SET_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
MAX_CELL_PROCS = 16     # a data-parallel cell runs on one node: no node holds more GPUs than that
MAX_CELLS = 1000        # each cell is a training run: a grid beyond this is a typo (a range pasted as a list)


def shipped_configs() -> list[str]:
    """Names of the experiment configs shipped in the package."""
    return sorted(p.name[:-5] for p in resources.files("synthact.assets").joinpath("experiments").iterdir()
                  if p.name.endswith(".yaml"))


def load_config(spec: str | Path) -> dict:
    """A YAML file, or the name of a shipped experiment config; every key is checked."""
    path = Path(spec)
    if not path.exists():
        if str(spec) in shipped_configs():
            text = resources.files("synthact.assets").joinpath("experiments", f"{spec}.yaml").read_text()
            path = Path(f"<shipped>/{spec}.yaml")
        else:
            raise FileNotFoundError(f"{spec}: no such config file or shipped config ({', '.join(shipped_configs())})")
    else:
        text = path.read_text()
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadConfig(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise BadConfig(f"{path}: expected a mapping of settings")
    for key in cfg:
        if key not in TOP_KEYS:
            raise BadConfig(f"{path}: unknown key '{key}' (known: {', '.join(sorted(TOP_KEYS))})")
    if not isinstance(cfg.get("train") or {}, dict):
        raise BadConfig(f"{path}: train: expected a mapping of train-tsn settings, got {cfg['train']!r}")
    for key in cfg.get("train") or {}:
        if key not in TRAIN_KEYS:
            raise BadConfig(f"{path}: unknown key 'train.{key}' (known: {', '.join(sorted(TRAIN_KEYS))})")
    check_blocks(cfg, path)   # first: render without prepare is that, not a missing real_root
    for key in ("real", "real_root"):
        if key not in cfg and not (key == "real_root" and cfg.get("prepare") is not None):
            raise BadConfig(f"{path}: missing key '{key}'")
    for key, default in GRID_KEYS.items():
        value = cfg.get(key, default)
        cfg[key] = value if isinstance(value, list) else [value]
    bad = [m for m in cfg["modality"] if m not in MODALITIES]
    if bad:
        raise BadConfig(f"{path}: unknown modality {bad[0]!r} (known: {', '.join(MODALITIES)})")
    if "fusion" in cfg["modality"] and not {"rgb", "flow"} <= set(cfg["modality"]):
        raise BadConfig(f"{path}: modality fusion fuses the rgb and flow cells: list both with it")
    cfg.setdefault("fusion_weights", [1.0, 1.5])
    cfg.setdefault("eval_protocol", "tsn")
    cfg["train"] = cfg.get("train") or {}
    _check_recipes(cfg, path)
    _check_values(cfg, path)
    return cfg


def _check_recipes(cfg: dict, path) -> None:
    """``recipes`` (how synthetic clips meet real ones), ``stage1`` (train settings of the synthetic-only
    cells, the first stage), ``stage2`` (of the two-stage cells' fine-tuning, over the shared settings,
    with its own ``fraction_epochs``: each arm its own validated budget) and ``fraction_epochs``
    (epochs of the cells that train on a real fraction alone, real only or a second stage: a tenth of
    the clips takes ten times the epochs for as many steps; mixed cells keep ``train.epochs``, their
    synthetic clips fill the epoch, or with ``train.synthetic_share`` take real only's steps: see
    :func:`.grid.train_config`)."""
    recipes = cfg.get("recipes", ["mixed"])
    cfg["recipes"] = recipes = recipes if isinstance(recipes, list) else [recipes]
    bad = [r for r in recipes if r not in RECIPES]
    if bad or not recipes or len(set(recipes)) < len(recipes):
        raise BadConfig(f"{path}: recipes {recipes!r}: a list of distinct values from {', '.join(RECIPES)}")
    share = cfg["train"].get("synthetic_share")   # checked here: only the mixed cells, if any, take it
    for stream, value in by_stream(share).items():
        problem = setting_problem("synthetic_share", value)
        if problem:
            raise BadConfig(f"{path}: train.synthetic_share{'.' + stream if stream else ''} {value!r}: {problem}")
    if "two_stage" in recipes:
        if 0 not in cfg["real_fraction"] or not any(cfg["synthetic"]):
            raise BadConfig(f"{path}: recipes two_stage: its first stage is the synthetic-only cell, so the grid "
                            f"needs real_fraction 0 and a synthetic count > 0")
        if "init_from" in cfg["train"]:
            raise BadConfig(f"{path}: train.init_from: two_stage cells start from their synthetic-only cell; "
                            f"give one or the other")
    for key, whose, known in (("stage1", "the synthetic-only cells", TRAIN_KEYS - {"init_from"}),
                              ("stage2", "the second stages",
                               TRAIN_KEYS - {"init_from", "synthetic_share"} | {"fraction_epochs"})):
        stage = cfg.get(key) or {}
        if not isinstance(stage, dict) or any(k not in known for k in stage):
            raise BadConfig(f"{path}: {key} {stage!r}: a mapping of train settings for {whose} "
                            f"(known: {', '.join(sorted(known))})")
        cfg[key] = stage
    cfg["fraction_epochs"] = _fraction_epochs(cfg.get("fraction_epochs"), "fraction_epochs", path)
    if "fraction_epochs" in cfg["stage2"]:
        cfg["stage2"]["fraction_epochs"] = _fraction_epochs(cfg["stage2"]["fraction_epochs"],
                                                            "stage2.fraction_epochs", path)


def _fraction_epochs(epochs, key: str, path) -> dict:
    epochs = epochs or {}
    if not isinstance(epochs, dict) or not all(C.finite(f) and 0 < f <= 1 and C.whole(e, 1)
                                               for f, e in epochs.items()):
        raise BadConfig(f"{path}: {key} {epochs!r}: a mapping of real fraction (0, 1] -> epochs >= 1, "
                        f"e.g. {{0.25: 80}}")
    return {float(f): e for f, e in epochs.items()}


def _grid_problem(key: str, v) -> str | None:
    whole = C.whole(v)
    if key == "synthetic":
        return None if whole and v >= 0 else "a whole number >= 0"
    if key == "real_fraction":
        return None if C.finite(v) and 0 <= v <= 1 else "a number in [0, 1] (0: synthetic only)"
    if key == "splits":
        return None if whole and v in (1, 2, 3) else "1, 2 or 3"
    if key == "seeds":
        return None if whole and 0 <= v < 2**32 else "a whole number >= 0"
    return None


def _check_values(cfg: dict, path) -> None:
    """Every value's type and range, and every cell's train-tsn settings, before a cell runs."""
    cfg.update(planned_roots(cfg, Path("<out>")))
    _check_texts(cfg, path)
    _check_synthetic_roots(cfg, path)
    for key in GRID_KEYS:
        for v in cfg[key]:
            problem = _grid_problem(key, v)
            if problem:
                raise BadConfig(f"{path}: {key} {v!r}: each value must be {problem}")
    _check_resources(cfg, path)
    w = cfg["fusion_weights"]
    if not (isinstance(w, list) and len(w) == 2 and all(C.finite(x) for x in w)):
        raise BadConfig(f"{path}: fusion_weights {w!r}: expected two finite numbers (rgb, flow)")
    if not isinstance(cfg.get("rgb_synthetic", True), bool):
        raise BadConfig(f"{path}: rgb_synthetic {cfg['rgb_synthetic']!r}: true or false (false: RGB trains on real "
                        f"clips alone and fusion fuses that with each flow cell)")
    _check_cells(cfg, path)


def _check_texts(cfg: dict, path) -> None:
    for key in ("real", "real_root"):
        if not isinstance(cfg[key], str) or not cfg[key]:
            raise BadConfig(f"{path}: {key} {cfg[key]!r}: expected a text")
    v = cfg.get("val_split")
    if v is not None and not (C.whole(v, 1, 3) and v not in cfg["splits"]):
        raise BadConfig(f"{path}: val_split {v!r}: 1, 2 or 3, another split than the grid's splits (its test "
                        f"clips among their training clips validate the cells)")
    for key in ("synthetic_root", "classes", "name", "note"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            raise BadConfig(f"{path}: {key} {cfg[key]!r}: expected a text")


def _check_synthetic_roots(cfg: dict, path) -> None:
    sets = cfg.get("synthetic_roots")
    if sets is None:
        return
    if cfg.get("synthetic_root") is not None:
        raise BadConfig(f"{path}: give synthetic_root or synthetic_roots, not both")
    if not (isinstance(sets, dict) and sets):
        raise BadConfig(f"{path}: synthetic_roots: expected a mapping of set name -> root, e.g. "
                        f"{{plain: synth_a, profiled: synth_b}}")
    for k, v in sets.items():
        if not (isinstance(k, str) and SET_NAME.fullmatch(k)):
            raise BadConfig(f"{path}: synthetic_roots: set name {k!r} must be letters, digits, '-' or '_'")
        if not isinstance(v, str) or not v:
            raise BadConfig(f"{path}: synthetic_roots.{k} {v!r}: expected a root path")


def _check_resources(cfg: dict, path) -> None:
    for key, what, most in (("cell_cpus", "CPUs per cell under Ray", None),
                            ("cell_gpus", "data-parallel processes per cell, on one node", MAX_CELL_PROCS)):
        v = cfg.get(key, 1)
        if not C.whole(v, 1, most):
            raise BadConfig(f"{path}: {key} {v!r}: expected a whole number >= 1"
                            + (f" and <= {most}" if most else "") + f" ({what})")
    procs, batch = cfg.get("cell_gpus", 1), cfg["train"].get("batch_size", TrainConfig.batch_size)
    if procs > 1 and isinstance(batch, int) and batch % procs:
        raise BadConfig(f"{path}: train.batch_size {batch}: a cell of cell_gpus {procs} splits the global batch "
                        f"evenly over its processes; use a multiple of {procs}")


def _check_cells(cfg: dict, path) -> None:
    """The grid's size and that it has cells, then each training cell's train-tsn settings."""
    size = np.prod([len(cfg[k]) for k in GRID_KEYS], dtype=float) * len(synthetic_sets(cfg)) * len(cfg["recipes"])
    if size > MAX_CELLS:
        raise BadConfig(f"{path}: the grid crosses {size:.0f} cells, more than {MAX_CELLS} training runs; "
                        f"split it into several configs")
    todo = cells(cfg)
    if not todo:
        raise BadConfig(f"{path}: the grid has no cells (a cell needs real_fraction > 0 or synthetic > 0)")

    def namer(cell):
        # where the user wrote the setting this cell's TrainConfig holds (stage1 and stage2 win over train)
        stage = "stage1" if not cell.real_fraction else "stage2" if cell.two_stage else None

        def name(key: str) -> str:
            block = stage if stage and key in cfg[stage] else "train" if key in cfg["train"] else None
            return f"{path}: " + (f"{block}.{key}" if block else {"seed": "seeds"}.get(key, key))
        return name
    for cell in todo:
        if cell.trains:
            check(train_config(cfg, cell, Path("<out>")), namer(cell))
