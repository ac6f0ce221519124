"""The files of a training run's folder (``train-tsn --out``, an ablate cell) and of an ablation
grid's folder (``synthact ablate --out``): every stage that writes or reads them names them here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class RunLayout:
    """A run folder and the paths of its files."""

    folder: Path

    CONFIG: ClassVar[str] = "config.json"            # the run's settings, written before training starts
    CHECKPOINT: ClassVar[str] = "checkpoint.pt"      # model, optimiser and random state after each epoch
    MODEL: ClassVar[str] = "model.pt"                # the final weights and their architecture
    METRICS: ClassVar[str] = "metrics.json"          # the final evaluation, written whole when the run ends
    LOG: ClassVar[str] = "log.csv"                   # one row per epoch
    LISTS: ClassVar[tuple[str, str]] = ("train_list.txt", "val_list.txt")  # the exact selection, absolute folders
    LABELS: ClassVar[str] = "labels.npy"             # the val clips' labels, in val list order
    SCORES: ClassVar[str] = "scores_{}.npy"          # formatted with the evaluation protocol
    CONFUSION: ClassVar[str] = "confusion.png"
    TENSORBOARD: ClassVar[str] = "tb"
    MMACTION2_CONFIG: ClassVar[str] = "mmaction2_config.py"
    MMACTION2_LISTS: ClassVar[tuple[str, str]] = ("mmaction2_train_list.txt", "mmaction2_val_list.txt")
    MMACTION2_WORK: ClassVar[str] = "mmaction2"      # mmengine's work_dir: its epoch checkpoints
    MMACTION2_BACKBONE: ClassVar[str] = "backbone_init.pth"  # the pretrained backbone, as mmaction2 loads it

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))

    @property
    def config(self) -> Path:
        """The run's settings (``TrainConfig`` as JSON)."""
        return self.folder / self.CONFIG

    @property
    def checkpoint(self) -> Path:
        """The last epoch's state, from which ``--resume`` continues."""
        return self.folder / self.CHECKPOINT

    @property
    def model(self) -> Path:
        """The final model, which evaluate and predict load."""
        return self.folder / self.MODEL

    @property
    def metrics(self) -> Path:
        """The final metrics; a run that has them is finished."""
        return self.folder / self.METRICS

    @property
    def log(self) -> Path:
        """The per-epoch training log."""
        return self.folder / self.LOG

    @property
    def train_list(self) -> Path:
        """The clips the run trains on (mmaction2 rawframe list, absolute frame folders)."""
        return self.folder / self.LISTS[0]

    @property
    def val_list(self) -> Path:
        """The clips the run is evaluated on; scores and labels rows follow its order."""
        return self.folder / self.LISTS[1]

    @property
    def labels(self) -> Path:
        """The val clips' labels."""
        return self.folder / self.LABELS

    def scores(self, protocol: str) -> Path:
        """The val clips' class scores under ``protocol`` (``tsn`` or ``fast``)."""
        return self.folder / self.SCORES.format(protocol)

    @property
    def confusion(self) -> Path:
        """The final confusion matrix, drawn."""
        return self.folder / self.CONFUSION

    @property
    def tensorboard(self) -> Path:
        """TensorBoard's event files."""
        return self.folder / self.TENSORBOARD

    @property
    def mmaction2_config(self) -> Path:
        """The config written for ``--engine mmaction2``."""
        return self.folder / self.MMACTION2_CONFIG

    @property
    def mmaction2_backbone(self) -> Path:
        """The pretrained backbone in the format ``--engine mmaction2`` loads."""
        return self.folder / self.MMACTION2_BACKBONE

    @property
    def mmaction2_work(self) -> Path:
        """mmengine's work folder (its epoch checkpoints) under ``--engine mmaction2``."""
        return self.folder / self.MMACTION2_WORK


@dataclass(frozen=True)
class GridLayout:
    """An ablation grid's folder (``synthact ablate --out``): its tables and one run folder per cell."""

    folder: Path

    CELLS: ClassVar[str] = "cells"                          # cells/<id>/: a RunLayout each
    CONFIG: ClassVar[str] = "config.resolved.yaml"         # the config as the grid ran it
    CSV: ClassVar[str] = "results.csv"                     # one row per cell
    TABLE: ClassVar[str] = "results.md"                    # mean ± std, as the paper prints it
    PLOT: ClassVar[str] = "accuracy_vs_synthetic.png"
    PER_CLASS: ClassVar[str] = "per_class.md"
    CONFUSION: ClassVar[str] = "confusion"                 # confusion/<group>.png

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))

    def cell(self, cell_id: str) -> Path:
        """A cell's run folder (not checked: :func:`synthact.ablate.cell_results.cell_dir` keeps it inside)."""
        return self.folder / self.CELLS / cell_id

    @property
    def config(self) -> Path:
        """The resolved config."""
        return self.folder / self.CONFIG

    @property
    def csv(self) -> Path:
        """Every cell's result."""
        return self.folder / self.CSV

    @property
    def table(self) -> Path:
        """The Markdown table."""
        return self.folder / self.TABLE

    @property
    def plot(self) -> Path:
        """Top-1 against synthetic clips added."""
        return self.folder / self.PLOT

    @property
    def per_class(self) -> Path:
        """Per-class accuracy of each group of cells."""
        return self.folder / self.PER_CLASS

    @property
    def confusion(self) -> Path:
        """The folder of summed confusion plots."""
        return self.folder / self.CONFUSION
