"""``manifest.jsonl``: one JSON line per finished clip, appended and fsynced clip by clip."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import BadData, warn
from .files import atomic_write, open_append, read_regular
from .layout import MANIFEST
from .names import check_clip_id


def read_manifest(root: Path, name: str = MANIFEST) -> list[dict]:
    """All complete lines, one record per clip; a torn last line (killed mid-write) is ignored.

    A clip recorded twice (two writers before roots were locked) keeps its last record, in the
    place of its first, and a warning says so.
    """
    path = Path(root) / name
    if not path.exists():
        return []
    records: dict[str, dict] = {}
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
        check_clip_id(rec["clip"], f"{path}:{i + 1}")
        records[rec["clip"]] = rec
        parsed += 1
    if len(records) < parsed:
        warn(f"{path}: {parsed - len(records)} duplicate record(s) of the same clip; kept the last of each")
    return list(records.values())


def repair_manifest(root: Path, name: str = MANIFEST) -> list[dict]:
    """Rewrite the manifest without a torn last line, so appends start on a fresh line."""
    records = read_manifest(root, name)
    path = Path(root) / name
    if path.exists():
        atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
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
