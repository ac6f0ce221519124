"""``synthact export``: a root as WebDataset tar shards or as one mp4 per clip, to share or stream.

WebDataset: each clip is one sample whose files share the key ``<class>__<clip>``
(``<key>.img_00001.jpg``, ``<key>.flow_x_00001.jpg``, ..., ``<key>.json`` with its manifest record,
plus flow's record when the clip has flow), in shards of ``--shard-size`` clips written whole
(``shard-000000.tar``, ...). ``index.jsonl`` lists every clip's shard and the byte offset and size
of each member, so a reader can take any frame without unpacking; ``root.json``, ``flow.json`` and
``classes.txt`` are copied beside the shards. ``videos``: ``<class>/<clip>.mp4`` at the clip's fps
and mmaction2 video lists ``<class>/<clip>.mp4 <label>``.
"""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

from . import contract as C
from .errors import BadConfig
from .rootlock import LOCK, root_lock
from .shards import INDEX

SHARD = "shard-{:06d}.tar"
KEY_SEP = "__"  # class and clip in a sample key (WebDataset keys take no '/')


def sample_key(clip: str) -> str:
    """The WebDataset key of a clip id ``<class>/<clip>``."""
    return clip.replace("/", KEY_SEP)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> dict:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # no time stamps: same root, same bytes
    tar.addfile(info, io.BytesIO(data))
    return {"offset": tar.offset - tarfile.BLOCKSIZE * ((len(data) + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE),
            "size": len(data)}


def _clip_files(root: Path, clip: str) -> list[Path]:
    folder = C.clip_dir(root, clip)
    files = sorted(p for p in folder.iterdir() if p.name.startswith(("img_", "flow_")) and p.suffix == ".jpg")
    for p in files:
        if p.is_symlink() or not p.is_file():
            raise C.ContractError(f"{p}: not a plain file")
    return files


def export_webdataset(root: Path, out: Path, shard_size: int = 100) -> dict:
    """Write every recorded clip of ``root`` into shards under ``out`` (an empty or new folder)."""
    if shard_size < 1:
        raise BadConfig(f"--shard-size {shard_size}: must be at least 1")
    records = C.read_manifest(root)
    flow = {r["clip"]: r for r in C.read_manifest(root, C.FLOW_MANIFEST)}
    index, shards = [], 0
    for start in range(0, len(records), shard_size):
        name = SHARD.format(shards)
        tmp = out / f".{name}.tmp"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for rec in records[start:start + shard_size]:
                key = sample_key(rec["clip"])
                members = {}
                for f in _clip_files(root, rec["clip"]):
                    members[f.name] = _add(tar, f"{key}.{f.name}", f.read_bytes())
                meta = {"record": rec, "flow": flow.get(rec["clip"])}
                members["json"] = _add(tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode())
                index.append({"clip": rec["clip"], "shard": name, "num_frames": rec["num_frames"],
                              "members": members})
        tmp.replace(out / name)  # a shard is there whole or not at all
        shards += 1
    C.write_lines(out / INDEX, [json.dumps(e, sort_keys=True) for e in index])
    for name in (C.ROOT_SETTINGS, C.FLOW_INFO, C.CLASSES):
        if (Path(root) / name).exists():
            shutil.copyfile(Path(root) / name, out / name)
    return {"clips": len(index), "shards": shards, "out": str(out)}


def export_videos(root: Path, out: Path) -> dict:
    """One mp4 per recorded clip under ``out/<class>/<clip>.mp4`` and mmaction2 video lists."""
    from .render.writer import write_video
    records = C.read_manifest(root)
    classes = sorted({r["clip"].split("/")[0] for r in records})
    label = {c: i for i, c in enumerate(classes)}
    lines = []
    for rec in records:
        path = out / f"{rec['clip']}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        write_video(C.clip_dir(root, rec["clip"]), rec["num_frames"], int(rec.get("fps") or 25), tmp)
        tmp.replace(path)
        lines.append(f"{rec['clip']}.mp4 {label[rec['clip'].split('/')[0]]}")
    C.write_lines(out / C.CLASSES, classes)
    C.write_lines(out / C.ANNOTATIONS / "videos.txt", lines)
    return {"clips": len(lines), "out": str(out)}


def export_root(root: Path, out: Path, fmt: str, shard_size: int = 100, wait: bool = False) -> dict:
    """Export ``root`` as ``fmt`` (``webdataset`` or ``videos``) into the folder ``out``, locked."""
    root, out = Path(root), Path(out)
    if not (root / C.MANIFEST).exists():
        raise BadConfig(f"{root}: no {C.MANIFEST}: not a rawframe root")
    if out.resolve() == root.resolve() or out.resolve().is_relative_to(root.resolve()):
        raise BadConfig(f"--out {out}: must lie outside the root it exports")
    with root_lock(out, wait):
        existing = [p for p in out.iterdir() if p.name != LOCK]
        if existing:
            raise BadConfig(f"--out {out}: not empty ({existing[0].name}); export into a new folder")
        if fmt == "webdataset":
            return export_webdataset(root, out, shard_size)
        if fmt == "videos":
            return export_videos(root, out)
        raise BadConfig(f"--format {fmt!r}: webdataset or videos")
