"""The one data contract that joins the stages.

A rawframe root holds ``rawframes/<class>/<clip>/img_00001.jpg`` (1-based RGB frames) and, once
flow exists, ``flow_x_00001.jpg`` / ``flow_y_00001.jpg`` where flow k is frame k -> k+1, encoded
as TSN did: clip to +-bound, ``round(255*(v+bound)/(2*bound))``, one grayscale JPEG per component.
Beside it lie ``manifest.jsonl`` (one JSON line per finished clip), ``classes.txt`` and
mmaction2-style annotation lists ``<class>/<clip> <num_frames> <label>``.
Every stage reads and writes through this module, nothing else.
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

RAWFRAMES = "rawframes"
MANIFEST = "manifest.jsonl"
CLASSES = "classes.txt"
ANNOTATIONS = "annotations"
FLOW_BOUND = 20.0
JPEG_QUALITY = 95
FLOW_INFO = "flow.json"          # how the flow of a root was made; one method per root
FLOW_MANIFEST = "flow.jsonl"     # one line per clip whose flow is complete
FLOW_ENCODING = ("clip to +-bound, round(255*(v+bound)/(2*bound)), one grayscale JPEG per component "
                 f"(quality {JPEG_QUALITY}); flow_x/flow_y_k is frame k -> k+1, 1-based")
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


class ContractError(ValueError):
    """Input that breaks the data contract; the message names the file and the problem."""


@dataclass(frozen=True)
class Layout:
    """File name templates of a rawframe folder (mmaction2's ``filename_tmpl``)."""

    img: str = "img_{:05d}.jpg"
    flow: str = "flow_{}_{:05d}.jpg"   # formatted with "x" / "y"

    def img_name(self, k: int) -> str:
        return self.img.format(k)

    def flow_names(self, k: int) -> tuple[str, str]:
        return self.flow.format("x", k), self.flow.format("y", k)


OURS = Layout()
MMACTION2_FLOW = Layout(flow="{}_{:05d}.jpg")  # mmaction2's test data and denseflow's default
img_name = OURS.img_name
flow_names = OURS.flow_names


def clip_dir(root: Path, clip_id: str) -> Path:
    """``clip_id`` is ``<class>/<clip>``, the key used in manifests and annotation lists."""
    return Path(root) / RAWFRAMES / clip_id


# ---------------------------------------------------------------- flow encoding
def encode_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 2) float flow in pixels -> two uint8 images in TSN's encoding."""
    q = np.rint(255.0 * (np.clip(flow, -bound, bound) + bound) / (2.0 * bound))
    q = q.astype(np.uint8)
    return q[..., 0], q[..., 1]


def decode_flow(fx: np.ndarray, fy: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Inverse of :func:`encode_flow` up to the quantisation step ``2*bound/255``."""
    q = np.stack([fx, fy], axis=-1).astype(np.float32)
    return q * (2.0 * bound / 255.0) - bound


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode a {image.shape} {image.dtype} image as JPEG")
    return buf.tobytes()


def write_jpeg(path: Path, image: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    Path(path).write_bytes(encode_jpeg(image, quality))


def read_image(path: Path, gray: bool = False) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise ContractError(f"{path}: missing or unreadable image")
    return img


def write_flow_pair(folder: Path, k: int, flow: np.ndarray, bound: float = FLOW_BOUND) -> None:
    write_flow_jpegs(folder, k, *encode_flow(flow, bound))


def write_flow_jpegs(folder: Path, k: int, fx: np.ndarray, fy: np.ndarray) -> None:
    """Pair k's two flow images, already in TSN's encoding (uint8)."""
    nx, ny = flow_names(k)
    write_jpeg(Path(folder) / nx, fx)
    write_jpeg(Path(folder) / ny, fy)


def read_flow_pair(folder: Path, k: int, bound: float = FLOW_BOUND, layout: Layout = OURS) -> np.ndarray:
    """Decoded flow in pixels, (H, W, 2)."""
    return decode_flow(*read_flow_jpegs(folder, k, layout), bound)


def read_flow_jpegs(folder: Path, k: int, layout: Layout = OURS) -> tuple[np.ndarray, np.ndarray]:
    """The two encoded uint8 flow images of pair k, as stored."""
    nx, ny = layout.flow_names(k)
    return read_image(Path(folder) / nx, True), read_image(Path(folder) / ny, True)


def count_frames(folder: Path) -> int:
    """Number of consecutive ``img_#####.jpg`` from 1; a gap is a contract error."""
    if not Path(folder).is_dir():
        raise ContractError(f"{folder}: frame folder missing")
    names = sorted(p.name for p in Path(folder).glob("img_*.jpg"))
    for k, name in enumerate(names, start=1):
        if name != img_name(k):
            raise ContractError(f"{folder}: frame {img_name(k)} missing (found {name})")
    return len(names)


# ---------------------------------------------------------------- atomic clip folders
def staging_dir(root: Path, clip_id: str) -> Path:
    """A fresh hidden folder beside the final one; renamed into place when complete."""
    final = clip_dir(root, clip_id)
    tmp = final.parent / f"{_TMP_PREFIX}{final.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_dir(tmp: Path, final: Path) -> None:
    """Put the finished ``tmp`` folder in place of ``final``.

    An existing ``final`` is first renamed aside, so a kill at any point leaves either the old or
    the new complete folder (or the old one aside, which :func:`recover_staging` puts back), never
    a mixture.
    """
    final = Path(final)
    if final.exists():
        old = final.parent / f"{_OLD_PREFIX}{final.name}"
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)


@contextmanager
def staged_clip(root: Path, clip_id: str) -> Iterator[Path]:
    """Build a clip in a staging folder: committed whole on success, removed on any failure."""
    tmp = staging_dir(root, clip_id)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_dir(tmp, clip_dir(root, clip_id))


def recover_staging(root: Path) -> int:
    """After a kill: restore folders left aside mid-swap, delete unfinished staging folders."""
    n = 0
    base = Path(root, RAWFRAMES)
    for old in base.glob(f"*/{_OLD_PREFIX}*"):
        final = old.parent / old.name[len(_OLD_PREFIX):]
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, final)
        n += 1
    for tmp in base.glob(f"*/{_TMP_PREFIX}*"):
        shutil.rmtree(tmp, ignore_errors=True)
        n += 1
    return n


# ---------------------------------------------------------------- manifest
def read_manifest(root: Path, name: str = MANIFEST) -> list[dict]:
    """All complete lines; a torn last line (killed mid-write) is ignored."""
    path = Path(root) / name
    if not path.exists():
        return []
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ContractError(f"{path}:{i + 1}: not a JSON line")
        if "clip" not in rec:
            raise ContractError(f"{path}:{i + 1}: record has no 'clip' key")
        records.append(rec)
    return records


def repair_manifest(root: Path, name: str = MANIFEST) -> list[dict]:
    """Rewrite the manifest without a torn last line, so appends start on a fresh line."""
    records = read_manifest(root, name)
    path = Path(root) / name
    if path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        os.replace(tmp, path)
    return records


def append_manifest(root: Path, record: dict, name: str = MANIFEST) -> None:
    """One line per finished clip, flushed to disk before the next clip is counted."""
    with open(Path(root) / name, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- classes and annotation lists
@dataclass(frozen=True)
class Entry:
    """One line of an mmaction2 rawframe annotation list."""

    clip: str
    num_frames: int
    label: int

    def line(self) -> str:
        return f"{self.clip} {self.num_frames} {self.label}"


def write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    os.replace(tmp, path)


def write_classes(root: Path, classes: list[str]) -> None:
    write_lines(Path(root) / CLASSES, classes)


def read_classes(path: Path) -> list[str]:
    path = Path(path)
    if not path.exists():
        raise ContractError(f"{path}: class list not found")
    return [c.strip() for c in path.read_text().splitlines() if c.strip()]


def write_annotations(path: Path, entries: Iterable[Entry]) -> None:
    write_lines(Path(path), (e.line() for e in entries))


def read_annotations(path: Path) -> list[Entry]:
    path = Path(path)
    if not path.exists():
        raise ContractError(f"{path}: annotation list not found")
    entries = []
    for i, raw in enumerate(path.read_text().splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].lstrip("-").isdigit():
            raise ContractError(f"{path}:{i}: expected '<class>/<clip> <num_frames> <label>', got {raw!r}")
        entries.append(Entry(parts[0], int(parts[1]), int(parts[2])))
    return entries


def iter_clips(root: Path) -> Iterator[str]:
    """``<class>/<clip>`` of every committed clip folder under ``rawframes/``."""
    base = Path(root) / RAWFRAMES
    for d in sorted(base.glob("*/*")):
        if d.is_dir() and not d.name.startswith((_TMP_PREFIX, _OLD_PREFIX)):
            yield f"{d.parent.name}/{d.name}"
