"""``classes.txt`` and mmaction2-style annotation lists ``<class>/<clip> <num_frames> <label>``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import BadData, warn
from .files import read_text, write_lines
from .layout import CLASSES, synthetic_list_path
from .manifest import read_manifest
from .names import check_name, check_relpath


@dataclass(frozen=True)
class Entry:
    """One line of an mmaction2 rawframe annotation list."""

    clip: str
    num_frames: int
    label: int

    def line(self) -> str:
        """The entry as one line of the list."""
        return f"{self.clip} {self.num_frames} {self.label}"


def write_classes(root: Path, classes: list[str]) -> None:
    """``classes.txt``: one class per line, in label order."""
    write_lines(Path(root) / CLASSES, classes)


def read_classes(path: Path) -> list[str]:
    """A class list (label order); names are checked, a class listed twice is refused."""
    path = Path(path)
    if not path.exists():
        raise BadData(f"{path}: class list not found")
    names = []
    for i, raw in enumerate(read_text(path, "class list").splitlines(), start=1):
        if raw.strip():
            names.append(check_name(raw.strip(), "class", f"{path}:{i}"))
    if len(set(names)) != len(names):
        raise BadData(f"{path}: a class is listed twice")
    return names


def write_annotations(path: Path, entries: Iterable[Entry]) -> None:
    """Each clip once (the first entry of a clip wins)."""
    unique: dict[str, Entry] = {}
    for e in entries:
        unique.setdefault(e.clip, e)
    write_lines(Path(path), (e.line() for e in unique.values()))


def read_annotations(path: Path, clip_ids: bool = True) -> list[Entry]:
    """An annotation list; with ``clip_ids`` (a root's lists) every entry must be a safe relative
    folder (see :func:`check_relpath`); a run folder's own lists hold absolute frame folders."""
    path = Path(path)
    if not path.exists():
        raise BadData(f"{path}: annotation list not found")
    entries: dict[str, Entry] = {}
    text = read_text(path, "annotation list")
    for i, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise BadData(f"{path}:{i}: expected '<class>/<clip> <num_frames> <label>', got {raw!r}")
        clip = check_relpath(parts[0], f"{path}:{i}") if clip_ids else parts[0]
        entry = Entry(clip, int(parts[1]), int(parts[2]))
        if entries.get(entry.clip, entry) != entry:
            raise BadData(f"{path}:{i}: {entry.clip} is listed twice with different frames or labels")
        entries[entry.clip] = entry
    n = sum(1 for raw in text.splitlines() if raw.split())
    if len(entries) < n:
        warn(f"{path}: {n - len(entries)} duplicate line(s); each clip is used once")
    return list(entries.values())


def write_index(root: Path) -> list[str]:
    """``classes.txt`` and the synthetic list from the manifest (labels: classes in sorted order);
    returns the classes."""
    records = read_manifest(root)
    classes = sorted({r.cls for r in records})
    label = {c: i for i, c in enumerate(classes)}
    write_classes(root, classes)
    write_annotations(synthetic_list_path(root), [Entry(r.clip, r.num_frames, label[r.cls])
                                                  for r in sorted(records, key=lambda r: r.clip)])
    return classes
