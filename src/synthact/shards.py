"""Reading clips back out of WebDataset shards written by ``synthact export``, frame by frame.

``index.jsonl`` gives each member's shard, byte offset and size, so a frame is one seek and one
read, with no unpacking; the index is loaded once per process (DataLoader workers included).
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from . import contract as C

INDEX = "index.jsonl"


def is_shard_folder(path: Path) -> bool:
    """A folder ``synthact export --format webdataset`` wrote (an index, no rawframes)."""
    return (Path(path) / INDEX).is_file() and not (Path(path) / C.RAWFRAMES).exists()


@lru_cache(maxsize=8)
def index(folder: str) -> dict[str, dict]:
    """clip -> {shard, num_frames, members: {file name: {offset, size}}} of a shard folder."""
    path = Path(folder) / INDEX
    out = {}
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            e = json.loads(line)
            out[C.check_clip_id(e["clip"], f"{path}:{i}")] = e
        except (json.JSONDecodeError, KeyError, TypeError):
            raise C.ContractError(f"{path}:{i}: not an index line of synthact export") from None
    return out


def entries(folder: Path) -> list[C.Entry]:
    """The synthetic list of a shard folder (clips sorted, labels from its ``classes.txt``), as a
    rendered root's list would be."""
    label = {c: i for i, c in enumerate(C.read_classes(Path(folder) / C.CLASSES))}
    return [C.Entry(clip, e["num_frames"], label[clip.split("/")[0]]) for clip, e in sorted(index(str(folder)).items())]


_OPEN: OrderedDict[str, int] = OrderedDict()
MAX_OPEN = 64  # shards kept open per process; the least recently read is closed beyond that


def _open(path: str) -> int:
    """A read-only descriptor of a shard, kept open: a frame is then one ``pread`` (no seek state,
    so forked DataLoader workers may share it)."""
    fd = _OPEN.pop(path, None)
    if fd is None:
        fd = os.open(path, os.O_RDONLY)
        while len(_OPEN) >= MAX_OPEN:
            os.close(_OPEN.popitem(last=False)[1])
    _OPEN[path] = fd
    return fd


def read_member(folder: Path, clip: str, name: str) -> bytes:
    """The bytes of one file of a clip (``img_00001.jpg``, ``flow_x_00001.jpg``) from its shard."""
    e = index(str(folder)).get(clip)
    m = e and e["members"].get(name)
    if not m:
        raise C.ContractError(f"{folder}: no {name} of {clip} in its shards")
    data = os.pread(_open(str(Path(folder) / e["shard"])), m["size"], m["offset"])
    if len(data) != m["size"]:
        raise C.ContractError(f"{Path(folder) / e['shard']}: cut short inside {clip}/{name}")
    return data
