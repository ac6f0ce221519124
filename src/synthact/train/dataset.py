"""TSN segment sampling from rawframe lists (after tsn-pytorch's ``dataset.py``).

A clip is cut into K equal segments and one snippet is taken from each: at a random offset in
training, at the centre in evaluation; the TSN test protocol takes 25 evenly spaced snippets and
10 crops of each. An RGB snippet is one frame; a flow snippet stacks 5 consecutive x/y pairs.
"""
from __future__ import annotations

from contextlib import contextmanager

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .. import contract as C
from ..errors import BadData, SynthactError
from .mixing import synthetic_per_epoch
from .recipe import NEW_LENGTH, epoch_seed
from .samples import FrameSource, Sample
from .transforms import PRESETS


def snippet_starts(num_frames: int, modality: str, segments: int, mode: str, rng: np.random.Generator | None,
                   test_snippets: int = 25) -> list[int]:
    """1-based first frame (RGB) or first pair (flow) of each snippet."""
    length = NEW_LENGTH[modality]
    available = (num_frames if modality == "rgb" else num_frames - 1) - length + 1
    if available < 1:
        raise C.BadData(f"{num_frames} frames are too few for one {modality} snippet of {length}")
    if mode == "test":
        tick = available / test_snippets
        return [int(tick / 2 + tick * i) + 1 for i in range(test_snippets)]
    tick = available / segments
    if mode == "train":
        assert rng is not None   # training draws its offsets; evaluation takes none
        if available >= segments:
            seg = available // segments
            return [i * seg + int(rng.integers(seg)) + 1 for i in range(segments)]
        return sorted(int(v) + 1 for v in rng.integers(available, size=segments))
    return [int(tick / 2 + tick * i) + 1 for i in range(segments)]


def load_snippet(sample: FrameSource, start: int, modality: str) -> np.ndarray:
    """(H, W, 3) RGB or (H, W, 10) stacked flow x, y, x, y..."""
    if modality == "rgb":
        img = sample.image(sample.layout.img_name(start))
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    chans = []
    for k in range(start, start + NEW_LENGTH["flow"]):
        chans += [sample.image(name, gray=True) for name in sample.layout.flow_names(k)]
    return np.stack(chans, axis=-1)


class EpochSampler(Sampler):
    """A seeded shuffle per epoch that hands the epoch to the dataset inside each index
    (``epoch * N + i``), so persistent DataLoader workers need no state from the main process."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration draws its order for."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter((self.epoch * self.n + torch.randperm(self.n, generator=g)).tolist())


class ShareSampler(EpochSampler):
    """``--synthetic-share``: an epoch is every real clip once (indices below ``n_real``) and as many
    synthetic clips as make up ``share`` of the epoch, a fresh seeded draw from the synthetic pool
    (each at most once: :func:`.mixing.share_problem` refuses a share that needs more), spread evenly
    so that every batch holds ``share`` synthetic clips to within one. Without it a few real clips
    drown in thousands of synthetic ones."""

    def __init__(self, n_real: int, n_synthetic: int, share: float, seed: int):
        super().__init__(n_real + n_synthetic, seed)
        self.n_real, self.n_synthetic = n_real, n_synthetic
        self.per_epoch = synthetic_per_epoch(n_real, share)
        if not 1 <= self.per_epoch <= n_synthetic:
            raise ValueError(f"{n_real} real clips at share {share} ask {self.per_epoch} of {n_synthetic} synthetic")

    def __len__(self) -> int:
        return self.n_real + self.per_epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        real = iter(torch.randperm(self.n_real, generator=g).tolist())
        synthetic = iter((self.n_real + torch.randperm(self.n_synthetic, generator=g)[:self.per_epoch]).tolist())
        n, m = len(self), self.per_epoch
        # position j is synthetic where floor(j * m / n) steps: any b positions in a row hold b*m/n of them, +-1
        order = [next(synthetic) if (j + 1) * m // n > j * m // n else next(real) for j in range(n)]
        return iter([self.epoch * self.n + i for i in order])


class TSNDataset(Dataset):
    """TSN snippets of a list of clips, augmented for ``mode`` (train, val or test)."""

    def __init__(self, samples: list[Sample], modality: str, segments: int = 3, size: int = 224,
                 mode: str = "train", seed: int = 0, test_snippets: int = 25):
        self.samples, self.modality, self.segments = samples, modality, segments
        self.size, self.mode, self.seed, self.test_snippets = size, mode, seed, test_snippets
        for s in samples:  # fail at start, not an hour in
            if not s.sharded and not s.folder.is_dir():
                raise C.BadData(f"{s.folder}: frame folder missing (listed as {s.clip})")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        epoch, i = divmod(k, len(self.samples))   # see EpochSampler
        s = self.samples[i]
        # augmentation is a pure function of (seed, epoch, index): resumed runs repeat it exactly
        rng = np.random.default_rng([self.seed, epoch, i])
        starts = snippet_starts(s.num_frames, self.modality, self.segments, self.mode, rng, self.test_snippets)
        group = [load_snippet(s, k, self.modality) for k in starts]
        group = PRESETS["train" if self.mode == "train" else self.mode](group, self.size, self.modality == "flow", rng)
        x = torch.from_numpy(np.stack(group)).permute(0, 3, 1, 2).float().div_(255.0)
        return x, s.label


def _original_line(exc: BaseException) -> str:
    """The original message of an error torch re-raised from a DataLoader worker: its text is
    "Caught X in DataLoader worker process N." and the worker's whole traceback."""
    text, kind = str(exc), type(exc)
    heads = (f"{kind.__module__}.{kind.__qualname__}: ", f"{kind.__qualname__}: ")
    found = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(heads)]
    return found[-1] if found else text.strip().splitlines()[-1]


@contextmanager
def worker_errors():
    """A refusal (a corrupt frame, a missing file) raised inside a DataLoader worker comes back
    as its own one line, as :class:`BadData`; anything else (a bug) keeps its traceback."""
    try:
        yield
    except (SynthactError, OSError) as exc:
        if not str(exc).startswith("Caught ") or "DataLoader worker" not in str(exc).splitlines()[0]:
            raise
        raise BadData(_original_line(exc)) from None
