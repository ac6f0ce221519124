"""``synthact export``: a root as WebDataset tar shards or as one mp4 per clip, to share or stream.

WebDataset: each clip is one sample whose files share the key ``<class>__<clip>``
(``<key>.img_00001.jpg``, ``<key>.flow_x_00001.jpg``, ..., ``<key>.json`` with its manifest record,
plus flow's record when the clip has flow), in shards of ``--shard-size`` clips written whole
(``shard-000000.tar``, ...). ``index.jsonl`` lists every clip's shard and the byte offset and size
of each member, so a reader can take any frame without unpacking; ``root.json``, ``flow.json`` and
``classes.txt`` are copied beside the shards. ``videos``: ``<class>/<clip>.mp4`` at the clip's fps
and mmaction2 video lists ``<class>/<clip>.mp4 <label>``.

Every clip's record and files are checked before anything is written. ``export.json`` says which
root and format a folder holds: a killed export is finished by running it again (whole shards and
videos are kept), and a folder holding anything else is refused before it is even locked.
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from . import contract as C
from .errors import BadConfig, BadData
from .rootlock import output_folder
from .shards import INDEX, KEY_SEP, sample_key  # noqa: F401  (KEY_SEP, sample_key: the format's names)

SHARD = "shard-{:06d}.tar"
MARKER = "export.json"   # which root and format an export folder holds: a rerun resumes only that
FORMATS = ("webdataset", "videos")
MAX_FPS = 1000


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> dict:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # no time stamps: same root, same bytes
    tar.addfile(info, io.BytesIO(data))
    return {"offset": tar.offset - tarfile.BLOCKSIZE * ((len(data) + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE),
            "size": len(data)}


def _clip_files(root: Path, clip: str) -> list[Path]:
    folder = C.clip_dir(root, clip)
    if folder.is_symlink() or not folder.is_dir():
        raise BadData(f"{folder}: listed in {root / C.MANIFEST} but not a clip folder of its own")
    files = sorted(p for p in folder.iterdir() if C.is_frame_name(p.name))
    for p in files:
        if p.is_symlink() or not p.is_file():
            raise C.BadData(f"{p}: not a plain file")
    return files


def check_records(root: Path, records: list[C.ManifestLine], fmt: str) -> None:
    """Refuse, before anything is written, a record whose frame count or fps is not a number that
    makes a clip, or whose folder lacks a frame it lists."""
    for rec in records:
        n, fps = rec.num_frames, rec.fields.get("fps")
        if fmt == "videos" and fps is not None and not (C.finite(fps) and 0 < fps <= MAX_FPS):
            raise BadData(f"{rec.where}: clip {rec.clip}: fps {fps!r}: expected a number of frames per second "
                          f"(0-{MAX_FPS})")
        names = {p.name for p in _clip_files(root, rec.clip)}
        missing = [k for k in range(1, n + 1) if C.img_name(k) not in names]
        if missing:
            raise BadData(f"{C.clip_dir(root, rec.clip) / C.img_name(missing[0])}: missing ({len(missing)} of "
                          f"the {n} frames {rec.where} lists)")


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    f = tar.extractfile(member)   # None for anything but a regular file or a link
    return f.read() if f else None


def _shard_index(path: Path, expected: dict[str, int], records: dict[str, bytes]) -> dict | None:
    """The members (name -> offset, size) of a shard a killed export finished, if it holds exactly
    the expected members (name -> size) and the same clip records (``<key>.json`` -> bytes: a clip
    rendered again differs there); None means write it again."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with tarfile.open(path, "r:") as tar:
            members = [m for m in tar if m.isreg()]
            have = {m.name: {"offset": m.offset_data, "size": m.size} for m in members}
            if {k: v["size"] for k, v in have.items()} != expected:
                return None
            same = all(_member_bytes(tar, m) == records[m.name] for m in members if m.name in records)
    except (tarfile.TarError, OSError):
        return None
    return have if same else None


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: clips, into ``out``; ``kept``: shards or videos a killed run had
    finished whole; ``shards``: how many (None for videos)."""
    clips: int
    kept: int
    out: Path
    shards: int | None = None


def export_webdataset(root: Path, out: Path, shard_size: int = 100) -> ExportSummary:
    """Write every recorded clip of ``root`` into shards under ``out``; shards a killed run finished
    whole are kept."""
    records = C.read_manifest(root)
    flow = {r.clip: r.fields for r in C.read_manifest(root, C.FLOW_MANIFEST)}
    index, shards, kept = [], 0, 0
    for start in range(0, len(records), shard_size):
        name = SHARD.format(shards)
        clips = []
        for rec in records[start:start + shard_size]:
            meta = json.dumps({"record": rec.fields, "flow": flow.get(rec.clip)}, sort_keys=True).encode()
            clips.append((rec, _clip_files(root, rec.clip), meta))
        expected = {f"{sample_key(rec.clip)}.{f.name}": f.stat().st_size for rec, files, _ in clips for f in files}
        expected.update({f"{sample_key(rec.clip)}.json": len(meta) for rec, _, meta in clips})
        members = _shard_index(out / name, expected,
                               {f"{sample_key(rec.clip)}.json": meta for rec, _, meta in clips})
        kept += members is not None
        if members is None:
            members = {}
            with C.atomic_output(out / name) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                for rec, files, meta in clips:  # a shard is there whole or not at all
                    key = sample_key(rec.clip)
                    for f in files:
                        members[f"{key}.{f.name}"] = _add(tar, f"{key}.{f.name}", f.read_bytes())
                    members[f"{key}.json"] = _add(tar, f"{key}.json", meta)
        for rec, files, _ in clips:
            key = sample_key(rec.clip)
            index.append({"clip": rec.clip, "shard": name, "num_frames": rec.num_frames,
                          "members": {n: members[f"{key}.{n}"] for n in [f.name for f in files] + ["json"]}})
        shards += 1
    C.write_lines(out / INDEX, [json.dumps(e, sort_keys=True) for e in index])
    for name in (C.ROOT_SETTINGS, C.FLOW_INFO, C.CLASSES):
        if (Path(root) / name).exists():
            C.atomic_write(out / name, (Path(root) / name).read_bytes())
    return ExportSummary(len(index), kept, Path(out), shards)


def _check_video(path: Path, n: int, folder: Path) -> None:
    """An mp4 decodes to the ``n`` frames it was written from (OpenCV's writer drops a frame it
    cannot take without a word); ``folder``, the clip's frames, is blamed."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    got = 0
    while cap.read()[0]:
        got += 1
    cap.release()
    if got != n:
        raise BadData(f"{folder}: its mp4 decodes to {got} of the {n} frames written (frames of differing "
                      f"sizes?); not exported")


def export_videos(root: Path, out: Path) -> ExportSummary:
    """One mp4 per recorded clip under ``out/<class>/<clip>.mp4`` and mmaction2 video lists; videos a
    killed run finished are kept. A class folder appears with its first finished video."""
    from .render.writer import write_video
    records = C.read_manifest(root)
    classes = sorted({r.cls for r in records})
    label = {c: i for i, c in enumerate(classes)}
    lines, kept = [], 0
    for d in [out, *(d for d in out.iterdir() if d.is_dir() and not d.is_symlink())]:
        C.remove_stale_temps(d)  # of a killed run
    for rec in records:
        path = out / f"{rec.clip}.mp4"
        if path.parent.is_symlink():
            raise BadData(f"{path.parent}: a link where this export's class folder belongs; refusing to write there")
        if path.is_file() and not path.is_symlink():
            kept += 1
        else:
            made = not path.parent.exists()
            path.parent.mkdir(exist_ok=True)
            try:
                with C.atomic_output(path, ".mp4") as tmp:
                    write_video(C.clip_dir(root, rec.clip), rec.num_frames, rec.fields.get("fps") or 25, tmp)
                    _check_video(tmp, rec.num_frames, C.clip_dir(root, rec.clip))
            except BaseException:
                if made:  # no class folder without a video in it
                    path.parent.rmdir()
                raise
        lines.append(f"{rec.clip}.mp4 {label[rec.cls]}")
    C.write_lines(out / C.CLASSES, classes)
    C.write_lines(out / C.ANNOTATIONS / "videos.txt", lines)
    return ExportSummary(len(lines), kept, Path(out))


def export_root(root: Path, out: Path, fmt: str, shard_size: int = 100, wait: bool = False) -> ExportSummary:
    """Export ``root`` as ``fmt`` (``webdataset`` or ``videos``) into the folder ``out``, locked: a new
    or empty folder, or one holding a killed export of the same root and format, which is finished."""
    root, out = Path(root), Path(out)
    if fmt not in FORMATS:
        raise BadConfig(f"--format {fmt!r}: webdataset or videos")
    if shard_size < 1:
        raise BadConfig(f"--shard-size {shard_size}: must be at least 1")
    if not (root / C.MANIFEST).exists():
        raise BadConfig(f"{root}: no {C.MANIFEST}: not a rawframe root")
    if out.resolve() == root.resolve() or out.resolve().is_relative_to(root.resolve()):
        raise BadConfig(f"--out {out}: must lie outside the root it exports")
    check_records(root, C.read_manifest(root), fmt)
    plan = {"made_by": "synthact export", "root": str(root.resolve()), "format": fmt,
            **({"shard_size": shard_size} if fmt == "webdataset" else {})}
    with output_folder(out, MARKER, plan, tuple(plan), wait):
        if fmt == "webdataset":
            return export_webdataset(root, out, shard_size)
        return export_videos(root, out)
