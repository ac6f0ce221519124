"""The grid's cells: the product of the config's axes, each one training run with its TrainConfig."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from .. import contract as C
from ..errors import BadConfig, SynthactError, one_line
from ..train.config import TrainConfig


@dataclass(frozen=True)
class Cell:
    """One run of the grid; ``id`` names its run folder under ``cells/``."""
    split: int
    seed: int
    synthetic: int          # synthetic clips added
    real_fraction: float    # 0: synthetic only
    modality: str           # rgb, flow or fusion (the two streams' scores fused)
    set: str                # label in ids and tables: the synthetic set ("" without synthetic_roots),
                            # and "2stage" for a second stage: "plain-2stage"
    root: str | None        # the set's synthetic root
    recipe: str             # two_stage, or mixed: one training run (real only and synthetic only too)
    id: str
    stage1: str | None      # a second stage's first stage: its synthetic-only cell's id
    streams: tuple[str, str] | None = None   # a fusion cell's (RGB, flow) cells

    @property
    def trains(self) -> bool:
        """A training run, not a fusion of two."""
        return self.modality != "fusion"

    @property
    def two_stage(self) -> bool:
        """Fine-tuned from its first stage on the real clips alone."""
        return self.recipe == "two_stage"


def synthetic_sets(cfg: dict) -> dict[str, str | None]:
    """Set name -> synthetic root: ``synthetic_roots`` (a grid axis), else the one ``synthetic_root``
    under the name ``""`` (cell ids and tables as without the axis)."""
    return dict(cfg["synthetic_roots"]) if cfg.get("synthetic_roots") else {"": cfg.get("synthetic_root")}


def cells(cfg: dict) -> list[Cell]:
    """The grid's cells; a cell with neither real nor synthetic data is left out,
    and a cell without synthetic clips is run once, not once per synthetic set. With
    ``rgb_synthetic: false`` RGB trains on real clips alone: its cells with synthetic clips are left
    out, and each fusion cell fuses its row's flow cell with the real-only RGB cell of its seed and
    real fraction (synthetic-only fusion has no such RGB cell: left out too)."""
    out = []
    sets = synthetic_sets(cfg)
    rgb_synthetic = cfg.get("rgb_synthetic", True)
    for split, seed, n, frac, mod, name, recipe in itertools.product(
            cfg["splits"], cfg["seeds"], cfg["synthetic"], cfg["real_fraction"], cfg["modality"], sets,
            cfg.get("recipes", ["mixed"])):
        if frac == 0 and n == 0:
            continue  # neither real nor synthetic data
        if n == 0 and name != next(iter(sets)):
            continue  # the real-only baseline does not depend on the synthetic set
        if n == 0 or frac == 0:
            # real only and synthetic only are one training run whatever the recipes; they are made
            # once, also for `recipes: [two_stage]` (its baseline and its first stages)
            if recipe != cfg.get("recipes", ["mixed"])[0]:
                continue
            recipe = "mixed"
        if n and not rgb_synthetic and (mod == "rgb" or (mod == "fusion" and frac == 0)):
            continue
        two = recipe == "two_stage"
        set_label = name if n else ""
        label = "-".join(x for x in (set_label, "2stage" if two else "") if x)
        streams = None
        if mod == "fusion":
            rgb = _cell_id(split, seed, n, frac, "rgb", label) if rgb_synthetic else _cell_id(split, seed, 0, frac,
                                                                                               "rgb", "")
            streams = (rgb, _cell_id(split, seed, n, frac, "flow", label))
        out.append(Cell(split, seed, n, frac, mod, label, sets[name], recipe,
                        _cell_id(split, seed, n, frac, mod, label),
                        _cell_id(split, seed, n, 0, mod, set_label) if two else None, streams))
    # fusion reads the two streams' scores, a second stage its first stage's weights: run those first
    return sorted(out, key=lambda c: (not c.trains, c.two_stage))


def _cell_id(split: int, seed: int, n: int, frac: float, mod: str, label: str) -> str:
    return f"s{split}_seed{seed}_syn{n}_real{frac:g}_{mod}" + (f"_{label}" if label else "")


def train_config(cfg: dict, cell: Cell, out: Path) -> TrainConfig:
    """The train-tsn settings of a training cell whose run folder is ``out``."""
    name = cfg["real"].split(":")[0]
    val = f"-val{cfg['val_split']}" if cfg.get("val_split") else ""
    frac, two = cell.real_fraction, cell.two_stage
    train = _for_stream(cfg["train"], cell.modality)
    if frac in cfg.get("fraction_epochs", {}) and (two or not cell.synthetic):   # real clips alone
        train["epochs"] = cfg["fraction_epochs"][frac]
    if frac == 0:
        train.update(_for_stream(cfg.get("stage1", {}), cell.modality))
    if two:   # a second stage's own settings, then its own epochs at this fraction
        stage2 = dict(cfg.get("stage2", {}))
        own_epochs = stage2.pop("fraction_epochs", {})
        train.update(_for_stream(stage2, cell.modality))
        if frac in own_epochs:
            train["epochs"] = own_epochs[frac]
    if two or frac == 0 or not cell.synthetic:   # a share mixes real and synthetic clips: mixed cells only
        train.pop("synthetic_share", None)
    elif train.get("synthetic_share"):
        # an epoch is then the real clips and their synthetic share: (1 - share) the epochs of real only
        # make its steps (rounded up: never fewer)
        base = cfg.get("fraction_epochs", {}).get(frac, train.get("epochs", TrainConfig.epochs))
        train["epochs"] = max(1, math.ceil(base * (1 - train["synthetic_share"])))
    if cell.stage1 is not None:
        train["init_from"] = str(C.RunLayout(Path(out).parent / cell.stage1).checkpoint)
    return TrainConfig(out=str(out), real=f"{name}:split{cell.split}{val}", real_root=str(cfg["real_root"]),
                       synthetic_root=None if two else cell.root, synthetic=0 if two else cell.synthetic,
                       real_fraction=frac or 1.0, synthetic_only=frac == 0,
                       classes=cfg.get("classes"), modality=cell.modality, seed=cell.seed,
                       eval_protocol=cfg["eval_protocol"], **train)


def by_stream(value) -> dict:
    """A train setting's values by stream: a mapping such as ``lr: {rgb: 0.001, flow: 0.01}`` as
    given, any other value as ``{"": value}`` (the same for both streams)."""
    return value if isinstance(value, dict) and value and set(value) <= {"rgb", "flow"} else {"": value}


def _for_stream(settings: dict, modality: str) -> dict:
    """Train settings for one stream (see :func:`by_stream`; RGB fine-tunes ImageNet features at a
    tenth of flow's rate, as TSN does); a stream a mapping leaves out gets train-tsn's default."""
    out = {}
    for key, v in settings.items():
        values = by_stream(v)
        if "" in values or modality in values:
            out[key] = values.get("", values.get(modality))
    return out


def check_synthetic_counts(cfg: dict, spec: str | Path) -> None:
    """Every cell's synthetic count must fit its root (as the cell would select it), and a mixed cell's
    ``synthetic_share`` its real and synthetic clips, checked before the grid starts: a count a root
    cannot give would otherwise fail its cells one by one."""
    from ..train.mixing import select_clips, share_problem
    seen = set()
    for cell in cells(cfg):
        if not cell.trains or not cell.synthetic or cell.two_stage:
            continue
        c = train_config(cfg, cell, Path("<out>"))
        # a count fits a root whatever the seed; a share must fit the real clips each cell keeps
        key = (cell.split, cell.root, cell.synthetic) + ((cell.real_fraction, cell.seed) if c.synthetic_share else ())
        if key in seen:
            continue
        seen.add(key)
        try:
            sel = select_clips(c.real, Path(c.real_root), Path(c.synthetic_root) if c.synthetic_root else None,
                               c.synthetic, c.real_fraction, c.classes, c.synthetic_only, c.seed)
        except (SynthactError, OSError) as exc:
            raise BadConfig(f"{spec}: cell {cell.id}: {one_line(exc)}") from None
        problem = c.synthetic_share and share_problem(c.synthetic_share, *sel.mix)
        if problem:
            raise BadConfig(f"{spec}: cell {cell.id}: train.synthetic_share {c.synthetic_share}: {problem}")
