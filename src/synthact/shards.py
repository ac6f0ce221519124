"""Reading clips back out of WebDataset shards written by ``synthact export``, frame by frame.

``index.jsonl`` gives each member's shard, byte offset and size, so a frame is one seek and one
read, with no unpacking; the index is loaded once per process (DataLoader workers included).
"""
from __future__ import annotations

import json
import os
import stat
import tarfile
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from . import contract as C

INDEX = "index.jsonl"


def is_shard_folder(path: Path) -> bool:
    """A folder ``synthact export --format webdataset`` wrote (an index, no rawframes)."""
    return (Path(path) / INDEX).is_file() and not (Path(path) / C.RAWFRAMES).exists()


KEY_SEP = "__"  # class and clip in a sample key (WebDataset keys take no '/')
MAX_MEMBER = 1 << 31  # bytes: far above any frame; a larger size in an index is a lie, never a read


def sample_key(clip: str) -> str:
    """The WebDataset key of a clip id ``<class>/<clip>``."""
    return clip.replace("/", KEY_SEP)


def _whole(v, low: int, high: int | None = None) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v < high)


def _check_entry(e, where: str) -> dict:
    """One index line as export writes it: its shard a plain file name of the folder (never a path
    out of it), whole numbers where numbers belong; else one line naming the line and the field."""
    if not isinstance(e, dict) or not {"clip", "shard", "num_frames", "members"} <= set(e):
        raise C.BadData(f"{where}: not an index line of synthact export (clip, shard, num_frames, members)")
    C.check_clip_id(e["clip"], where)
    if not isinstance(e["shard"], str) or not e["shard"].endswith(".tar"):
        raise C.BadData(f"{where}: shard {e['shard']!r}: expected a .tar file name of this folder")
    C.check_name(e["shard"], "shard", where)
    bad = ("num_frames" if not _whole(e["num_frames"], 1) else "members" if not isinstance(e["members"], dict)
           else next((f"members.{k}" for k, m in e["members"].items() if not isinstance(m, dict)
                      or not _whole(m.get("offset"), 0) or not _whole(m.get("size"), 0, MAX_MEMBER)), None))
    if bad:
        raise C.BadData(f"{where}: {bad}: expected whole numbers (num_frames >= 1, members of "
                              f"{{offset, size}} under {MAX_MEMBER} bytes)")
    return e


@lru_cache(maxsize=8)
def index(folder: str) -> dict[str, dict]:
    """clip -> {shard, num_frames, members: {file name: {offset, size}}} of a shard folder."""
    path = Path(folder) / INDEX
    out = {}
    for i, line in enumerate(C.read_text(path, "shard index").splitlines(), start=1):
        try:
            e = _check_entry(json.loads(line), f"{path}:{i}")
        except json.JSONDecodeError:
            raise C.BadData(f"{path}:{i}: not an index line of synthact export") from None
        out[e["clip"]] = e
    return out


def entries(folder: Path) -> list[C.Entry]:
    """The synthetic list of a shard folder (clips sorted, labels from its ``classes.txt``), as a
    rendered root's list would be."""
    label = {c: i for i, c in enumerate(C.read_classes(Path(folder) / C.CLASSES))}
    out = []
    for clip, e in sorted(index(str(folder)).items()):
        if C.class_of(clip) not in label:
            raise C.BadData(f"{Path(folder) / INDEX}: clip {clip}: its class is not in "
                                  f"{Path(folder) / C.CLASSES}")
        out.append(C.Entry(clip, e["num_frames"], label[C.class_of(clip)]))
    return out


_OPEN: OrderedDict[str, int] = OrderedDict()
MAX_OPEN = 64  # shards kept open per process; the least recently read is closed beyond that


def _open_regular(path: str) -> int:
    """A read-only descriptor of a regular file: a link is not followed, a FIFO never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise C.BadData(f"{path}: cannot open shard ({exc.strerror}; a link is never followed)") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise C.BadData(f"{path}: not a regular file; a shard is a tar file")
    return fd


def _open(path: str) -> int:
    """A read-only descriptor of a shard, kept open: a frame is then one ``pread`` (no seek state,
    so forked DataLoader workers may share it)."""
    fd = _OPEN.pop(path, None)
    if fd is None:
        fd = _open_regular(path)
        while len(_OPEN) >= MAX_OPEN:
            os.close(_OPEN.popitem(last=False)[1])
    _OPEN[path] = fd
    return fd


@lru_cache(maxsize=MAX_OPEN)
def _headers(path: str) -> dict[str, tuple[int, int]]:
    """member name -> (data offset, size) as the shard's own tar headers give them (read once per
    process, through a descriptor of its own: the shared one's file position is never moved)."""
    try:
        with os.fdopen(_open_regular(path), "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
            return {m.name: (m.offset_data, m.size) for m in tar if m.isreg()}
    except (tarfile.TarError, OSError) as exc:
        raise C.BadData(f"{path}: not a readable tar shard ({exc})") from None


def read_member(folder: Path, clip: str, name: str) -> bytes:
    """The bytes of one file of a clip (``img_00001.jpg``, ``flow_x_00001.jpg``) from its shard; the
    index's offset and size must be those of the member's own tar header (an index that lies never
    gives another frame's bytes)."""
    e = index(str(folder)).get(clip)
    m = e["members"].get(name) if e else None
    if e is None or not m:
        raise C.BadData(f"{folder}: no {name} of {clip} in its shards")
    path = str(Path(folder) / e["shard"])
    member = f"{sample_key(clip)}.{name}"
    if _headers(path).get(member) != (m["offset"], m["size"]):
        raise C.BadData(f"{Path(folder) / INDEX}: {clip} {name}: offset {m['offset']} and size {m['size']} "
                              f"are not those of {member} in {path}")
    data = os.pread(_open(path), m["size"], m["offset"])
    if len(data) != m["size"]:
        raise C.BadData(f"{path}: cut short inside {clip}/{name}")
    return data
