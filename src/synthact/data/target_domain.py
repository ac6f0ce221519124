"""A stand-in for a real dataset where none is available (the demo, CI): a rendered root made to
look like a prepared one, with a label map and train/val split lists.

It is honest about what it is: a *target domain* rendered with settings the synthetic training
set does not use (engine, seeds, body and camera draws), not real video.
"""
from __future__ import annotations

from pathlib import Path

from .. import contract as C


def write_split_lists(root: Path, name: str = "target", val_every: int = 3) -> dict:
    """Label map ``<name>_label_map.txt`` (classes.txt order) and ``<name>_{train,val}_split_1``
    lists: every ``val_every``-th clip of each class (by clip name) goes to validation."""
    root = Path(root)
    classes = C.read_classes(root / C.CLASSES)
    entries = C.read_annotations(C.synthetic_list_path(root))
    train: list[C.Entry] = []
    val: list[C.Entry] = []
    per_class: dict[int, int] = {}
    for e in sorted(entries, key=lambda e: e.clip):
        i = per_class[e.label] = per_class.get(e.label, 0) + 1
        (val if i % val_every == 0 else train).append(e)
    C.write_lines(C.label_map_path(root, name), classes)
    C.write_annotations(C.split_list_path(root, name, "train", 1), train)
    C.write_annotations(C.split_list_path(root, name, "val", 1), val)
    return {"train": len(train), "val": len(val), "classes": len(classes)}
