"""Where everything of a rawframe root lies: its file names, frame folders and frame file names."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import BadData
from .names import check_clip_id, inside

RAWFRAMES = "rawframes"
MANIFEST = "manifest.jsonl"
CLASSES = "classes.txt"
ANNOTATIONS = "annotations"
FLOW_INFO = "flow.json"          # how the flow of a root was made; one method per root
FLOW_MANIFEST = "flow.jsonl"     # one line per clip whose flow is complete
ROOT_SETTINGS = "root.json"      # the settings every clip of a root shares, recorded once
SYNTHETIC_LIST = "synthetic_rawframes.txt"  # a rendered root's annotation list, under annotations/
MISSING = "missing.txt"          # videos a split lists but the disk lacks (prepare)
FAILURES = "failures.txt"        # items of the last run that failed, one line each
PREVIEW = "preview.png"          # a contact sheet of a few clips, for looking


@dataclass(frozen=True)
class Layout:
    """File name templates of a rawframe folder (mmaction2's ``filename_tmpl``)."""

    img: str = "img_{:05d}.jpg"
    flow: str = "flow_{}_{:05d}.jpg"   # formatted with "x" / "y"

    def img_name(self, k: int) -> str:
        """File name of frame ``k`` (1-based)."""
        return self.img.format(k)

    def flow_names(self, k: int) -> tuple[str, str]:
        """File names of pair ``k``'s x and y flow images (frame k -> k+1)."""
        return self.flow.format("x", k), self.flow.format("y", k)


OURS = Layout()
MMACTION2_FLOW = Layout(flow="{}_{:05d}.jpg")  # mmaction2's test data and denseflow's default
img_name = OURS.img_name
flow_names = OURS.flow_names


BLENDER_FRAMES = "img_#####"   # the frame path Blender renders to: it writes img_00001.jpg, ... (format: JPEG)
_FRAME_PREFIXES = ("img_", "flow_")
_IMG_NAME = re.compile(r"img_(\d+)\.jpg")
_FLOW_NAME = re.compile(r"flow_([xy])_(\d+)\.jpg")


def is_flow_name(name: str) -> bool:
    """A flow image's file name (``flow_x_#####.jpg``, ``flow_y_#####.jpg``) of a clip folder."""
    return name.startswith("flow_")


def is_frame_name(name: str) -> bool:
    """A frame's or flow image's file name of a clip folder (what an export copies)."""
    return name.startswith(_FRAME_PREFIXES) and Path(name).suffix == ".jpg"


def parse_frame_name(name: str) -> tuple[str, int]:
    """``("img", k)`` for frame k's file name, ``("x", k)`` / ``("y", k)`` for pair k's flow images."""
    m = _FLOW_NAME.fullmatch(name)
    if m:
        return m.group(1), int(m.group(2))
    m = _IMG_NAME.fullmatch(name)
    if m is None:
        raise ValueError(f"{name!r}: neither a frame nor a flow image of the layout")
    return "img", int(m.group(1))


def label_map_path(root: Path, dataset: str) -> Path:
    """``<dataset>_label_map.txt``: a prepared root's class names in label order."""
    return Path(root) / f"{dataset}_label_map.txt"


def split_list_path(root: Path, dataset: str, kind: str, split: int) -> Path:
    """``annotations/<dataset>_{train,val}_split_<k>_rawframes.txt``, mmaction2's names."""
    if kind not in ("train", "val"):
        raise ValueError(f"split list kind {kind!r}: train or val")
    return inside(root, Path(root) / ANNOTATIONS / f"{dataset}_{kind}_split_{split}_rawframes.txt")


def synthetic_list_path(root: Path) -> Path:
    """A rendered root's annotation list of all its clips (inside the root: an ``annotations`` link
    to another folder is refused)."""
    return inside(root, Path(root) / ANNOTATIONS / SYNTHETIC_LIST)


def clip_dir(root: Path, clip_id: str) -> Path:
    """``clip_id`` is ``<class>/<clip>``, the key used in manifests and annotation lists; the folder
    is checked to lie inside the root (no ``..``, no class folder symlinked elsewhere)."""
    check_clip_id(clip_id, Path(root) / RAWFRAMES)
    return inside(root, Path(root) / RAWFRAMES / clip_id)


def iter_clips(root: Path) -> Iterator[str]:
    """``<class>/<clip>`` of every committed clip folder under ``rawframes/``."""
    base = Path(root) / RAWFRAMES
    for d in sorted(base.glob("*/*")):
        if d.is_dir() and not d.name.startswith(".") and not d.parent.name.startswith("."):
            yield check_clip_id(f"{d.parent.name}/{d.name}", d)


def count_frames(folder: Path) -> int:
    """Number of consecutive ``img_#####.jpg`` from 1; a gap is a contract error."""
    if not Path(folder).is_dir():
        raise BadData(f"{folder}: frame folder missing")
    names = sorted(p.name for p in Path(folder).glob("img_*.jpg"))
    for k, name in enumerate(names, start=1):
        if name != img_name(k):
            raise BadData(f"{folder}: frame {img_name(k)} missing (found {name})")
    return len(names)
