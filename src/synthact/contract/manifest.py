"""``manifest.jsonl`` (one JSON line per finished clip) and ``flow.jsonl`` (one per clip whose flow
is complete), appended and fsynced clip by clip, read back as :class:`ManifestLine`."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadData, warn
from .files import atomic_write, open_append, read_regular
from .layout import MANIFEST
from .names import check_clip_id, class_of, whole


@dataclass(frozen=True)
class ManifestLine:
    """One clip's line: its id (checked), the JSON object as written (``fields``: a render, prepare,
    flow or merge record; each stage reads its own keys, and lines are copied verbatim) and
    ``where`` (``file:line``), which an error about the line names."""
    clip: str
    fields: dict[str, Any]
    where: str

    @property
    def cls(self) -> str:
        """The clip's class (the first part of its id)."""
        return class_of(self.clip)

    @property
    def num_frames(self) -> int:
        """The clip's frame count, as every stage that writes frames records it."""
        n = self.fields.get("num_frames")
        if not isinstance(n, int) or not whole(n, 1):
            raise BadData(f"{self.where}: clip {self.clip}: num_frames {n!r}: expected a whole number >= 1")
        return n


def read_manifest(root: Path, name: str = MANIFEST) -> list[ManifestLine]:
    """All complete lines, one record per clip; a torn last line (killed mid-write) is ignored.

    A clip recorded twice (two writers before roots were locked) keeps its last record, in the
    place of its first, and a warning says so.
    """
    path = Path(root) / name
    if not path.exists():
        return []
    records: dict[str, ManifestLine] = {}
    parsed = 0
    try:
        lines = read_regular(path).decode().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadData(f"{path}: cannot read ({exc})") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise BadData(f"{path}:{i + 1}: not a JSON line") from None
        if not isinstance(rec, dict) or "clip" not in rec:
            raise BadData(f"{path}:{i + 1}: record has no 'clip' key")
        where = f"{path}:{i + 1}"
        clip = check_clip_id(rec["clip"], where)
        records[clip] = ManifestLine(clip, rec, where)
        parsed += 1
    if len(records) < parsed:
        warn(f"{path}: {parsed - len(records)} duplicate record(s) of the same clip; kept the last of each")
    return list(records.values())


def repair_manifest(root: Path, name: str = MANIFEST) -> list[ManifestLine]:
    """Rewrite the manifest without a torn last line, so appends start on a fresh line."""
    records = read_manifest(root, name)
    path = Path(root) / name
    if path.exists():
        atomic_write(path, "".join(json.dumps(r.fields, sort_keys=True) + "\n" for r in records))
    return records


def append_manifest(root: Path, record: dict, name: str = MANIFEST) -> None:
    """One line per finished clip, flushed to disk before the next clip is counted (never through
    a link: see :func:`open_append`)."""
    fd = open_append(Path(root) / name)
    try:
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
