"""A clip of a selection: where its frames are (a rawframe folder or an exported shard), how many,
its label. Without torch, so the selection and the settings load without it (the CLI reads them)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .. import contract as C
from .. import shards


class FrameSource(Protocol):
    """What a snippet is read from: a :class:`Sample`, or a video held in memory (``predict``)."""

    @property
    def layout(self) -> C.Layout:
        """How its frame and flow files are named."""
        ...

    def image(self, name: str, gray: bool = False) -> np.ndarray:
        """One frame or flow image by its file name, decoded."""
        ...


@dataclass(frozen=True)
class Sample:
    """One clip of a selection: where its frames are, how many, its label."""

    prefix: str          # the folder holding <class>/<clip> (mmaction2's data_prefix), or a shard folder
    clip: str
    num_frames: int
    label: int
    layout: C.Layout = C.OURS
    sharded: bool = False  # frames inside the WebDataset shards of ``prefix`` (synthact export)

    @property
    def folder(self) -> Path:
        """The clip's frame folder (for shards: where the clip is named in messages)."""
        return Path(self.prefix) / self.clip

    @property
    def root(self) -> Path:
        """The root (or shard folder) the clip belongs to."""
        return Path(self.prefix) if self.sharded else Path(self.prefix).parent

    def image(self, name: str, gray: bool = False):
        """One of the clip's frame or flow images, decoded strictly, from its folder or its shard."""
        if self.sharded:
            return C.decode_image(shards.read_member(Path(self.prefix), self.clip, name), self.folder / name, gray)
        return C.read_image(self.folder / name, gray)
