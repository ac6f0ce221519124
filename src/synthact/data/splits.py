"""The official UCF-101 and HMDB-51 train/test splits, parsed exactly.

UCF-101: ``classInd.txt`` (1-based ``<id> <Class>``), ``trainlist0{1,2,3}.txt`` (``Class/v_..avi <id>``)
and ``testlist0{1,2,3}.txt`` (``Class/v_..avi``), CRLF line ends; the ``HandstandPushups`` folder
holds ``v_HandStandPushups_*`` files, so the class is the folder, never parsed from the file name.
HMDB-51: ``<class>_test_split{1,2,3}.txt`` with ``<video>.avi <tag>``, tag 1 train, 2 test, 0 unused.
Labels are the index of the class in case-insensitive alphabetical order, 0-based: for UCF-101 that
is classInd - 1 (``Hammering`` before ``HammerThrow``), for HMDB-51 mmaction2's label map.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..assets import class_map, resolve_classes
from ..contract import check_name, read_text
from ..errors import BadConfig, BadData

DATASETS = ("ucf101", "hmdb51")


@dataclass
class Video:
    """One video of a split file: its class, file stem and path under the videos folder."""

    cls: str
    stem: str            # file name without .avi
    relpath: str         # path under the videos folder

    @property
    def clip(self) -> str:
        """The rawframe clip id ``<class>/<stem>``."""
        return f"{self.cls}/{self.stem}"


@dataclass
class Splits:
    """A dataset's three official splits: classes in label order, train and test videos per split."""

    dataset: str
    classes: list[str]                                   # label order
    train: dict[int, list[Video]] = field(default_factory=dict)
    test: dict[int, list[Video]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # clip -> split file that lists it first

    def videos(self) -> list[Video]:
        """Every video any split lists, once, sorted by clip id."""
        seen: dict[str, Video] = {}
        for part in (self.train, self.test):
            for vids in part.values():
                for v in vids:
                    seen.setdefault(v.clip, v)
        return [seen[k] for k in sorted(seen)]

    def restrict(self, classes: list[str]) -> Splits:
        """The splits over ``classes`` only, relabelled in their label order."""
        unknown = sorted(set(classes) - set(self.classes))
        if unknown:
            raise BadConfig(f"{self.dataset} has no class {', '.join(unknown)}")
        keep = label_order(classes)

        def pick(vids: list[Video]) -> list[Video]:
            return [v for v in vids if v.cls in keep]
        return Splits(self.dataset, keep, {s: pick(v) for s, v in self.train.items()},
                      {s: pick(v) for s, v in self.test.items()}, self.sources)


def label_order(names) -> list[str]:
    """Class names in label order: case-insensitive alphabetical (UCF-101's classInd, mmaction2's maps)."""
    return sorted(set(names), key=lambda c: (c.lower(), c))


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of each non-blank line, CRLF or LF."""
    text = read_text(path, "split file")
    return [(i, ln.strip()) for i, ln in enumerate(text.replace("\r", "").split("\n"), start=1) if ln.strip()]


def _number(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _video(cls: str, fname: str, where: str) -> Video:
    """A listed video; its class and stem become folder names under the root and path parts under
    the videos folder, so both must be safe names (no '..', no '/', not absolute)."""
    check_name(cls, "class", where)
    return Video(cls, check_name(fname[:-4], "video", where), f"{cls}/{fname}")


def ucf101(split_dir: Path) -> Splits:
    """UCF-101's ``classInd.txt`` and ``{train,test}list0{1,2,3}.txt``, every line checked."""
    d = Path(split_dir)
    s = Splits("ucf101", _class_index(d / "classInd.txt"))
    for k in (1, 2, 3):
        s.train[k] = _ucf_list(d / f"trainlist0{k}.txt", s)
        s.test[k] = _ucf_list(d / f"testlist0{k}.txt", s, {v.clip for v in s.train[k]})
    return s


def _class_index(path: Path) -> list[str]:
    """``classInd.txt``: ``<id> <Class>``, ids 1, 2, ... in alphabetical order of the classes."""
    ind: dict[int, str] = {}
    for i, ln in _lines(path):
        parts = ln.split()
        idx = _number(parts[0]) if len(parts) == 2 else None
        if idx is None:
            raise BadData(f"{path}:{i}: expected '<id> <Class>', got {ln!r:.80}")
        name = check_name(parts[1], "class", f"{path}:{i}")
        if idx in ind or name in ind.values():
            raise BadData(f"{path}:{i}: class id or name listed twice: {ln!r:.80}")
        ind[idx] = name
    classes = [ind[i] for i in sorted(ind)]
    if not classes or classes != label_order(classes) or sorted(ind) != list(range(1, len(ind) + 1)):
        raise BadData(f"{path}: expected 1-based, alphabetical classes")
    return classes


def _ucf_list(path: Path, s: Splits, train: set[str] | None = None) -> list[Video]:
    """A train list (``Class/v_..avi <label>``) or, given ``train`` (the clips of the same split's
    train list, which it must not repeat), a test list (``Class/v_..avi``, a label optional)."""
    testing = train is not None
    vids = []
    for i, ln in _lines(path):
        where = f"{path}:{i}"
        parts = ln.split()
        cls, _, fname = parts[0].partition("/")
        if len(parts) > 2 or (len(parts) == 1 and not testing) or not fname.endswith(".avi"):
            raise BadData(f"{where}: expected 'Class/v_name.avi{'' if testing else ' <label>'}', got {ln!r:.80}")
        v = _video(cls, fname, where)
        if cls not in s.classes:
            raise BadData(f"{where}: class {cls} is not in classInd.txt")
        if len(parts) == 2 and _number(parts[1]) != s.classes.index(cls) + 1:
            raise BadData(f"{where}: label {parts[1]:.20} disagrees with classInd "
                          f"({cls} is {s.classes.index(cls) + 1})")
        if train is not None and v.clip in train:
            raise BadData(f"{where}: {v.relpath} is also in this split's train list")
        s.sources.setdefault(v.clip, path.name)
        vids.append(v)
    return vids


def hmdb51(split_dir: Path) -> Splits:
    """HMDB-51's ``<class>_test_split{1,2,3}.txt`` files (tag 1 train, 2 test, 0 unused), every line checked."""
    d = Path(split_dir)
    files = sorted(d.glob("*_test_split[123].txt"))
    if not files:
        raise BadData(f"{d}: no <class>_test_split{{1,2,3}}.txt files")
    classes = label_order(check_name(f.name.rsplit("_test_split", 1)[0], "class", f) for f in files)
    s = Splits("hmdb51", classes, {1: [], 2: [], 3: []}, {1: [], 2: [], 3: []})
    for cls in classes:
        for k in (1, 2, 3):
            path = d / f"{cls}_test_split{k}.txt"
            tags: dict[str, str] = {}
            for i, ln in _lines(path):
                parts = ln.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2") or not parts[0].endswith(".avi"):
                    raise BadData(f"{path}:{i}: expected '<video>.avi <0|1|2>', got {ln!r:.80}")
                v = _video(cls, parts[0], f"{path}:{i}")
                if tags.setdefault(v.stem, parts[1]) != parts[1]:  # both train and test: a leak
                    raise BadData(f"{path}:{i}: {parts[0]} listed again with tag {parts[1]} (was {tags[v.stem]})")
                if parts[1] == "0":
                    continue
                (s.train if parts[1] == "1" else s.test)[k].append(v)
                s.sources.setdefault(v.clip, path.name)
    return s


def load_splits(dataset: str, split_dir: Path) -> Splits:
    """The official splits of ``dataset`` (ucf101 or hmdb51) from the folder of its split files."""
    if dataset not in DATASETS:
        raise BadConfig(f"unknown dataset {dataset!r}: choose {' or '.join(DATASETS)}")
    return ucf101(split_dir) if dataset == "ucf101" else hmdb51(split_dir)


def subset_classes(dataset: str, spec: str | None, all_classes: list[str]) -> list[str]:
    """``None``/``all``: every class; a named subset of ours (``ucf25``, ``hmdb``) mapped to the
    dataset's names; or a comma list of the dataset's own class names."""
    if spec in (None, "all"):
        return list(all_classes)
    if spec in class_map()["subsets"]:
        return label_order({class_map()["actions"][c].get(dataset) for c in resolve_classes(spec)} - {None})
    names = [c.strip() for c in spec.split(",") if c.strip()]
    unknown = [c for c in names if c not in all_classes]
    if unknown or not names:
        raise BadConfig(f"{dataset} has no class {', '.join(unknown) or repr(spec)}")
    return label_order(names)
