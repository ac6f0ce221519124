"""The files of a training run's folder (``train-tsn --out``, an ablate cell): every stage that writes
or reads a run names them here."""
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
