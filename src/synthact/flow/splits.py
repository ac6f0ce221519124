"""The official UCF-101 and HMDB-51 train/test splits, parsed exactly.

UCF-101: ``classInd.txt`` (1-based ``<id> <Class>``), ``trainlist0{1,2,3}.txt`` (``Class/v_..avi <id>``)
and ``testlist0{1,2,3}.txt`` (``Class/v_..avi``), CRLF line ends; the ``HandstandPushups`` folder
holds ``v_HandStandPushups_*`` files, so the class is the folder, never parsed from the file name.
HMDB-51: ``<class>_test_split{1,2,3}.txt`` with ``<video>.avi <tag>``, tag 1 train, 2 test, 0 unused.
Labels are the index of the class in case-insensitive alphabetical order, 0-based: for UCF-101 that
is classInd - 1 (``Hammering`` before ``HammerThrow``), for HMDB-51 mmaction2's label map.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..assets import class_map, resolve_classes
from ..contract import ContractError
from ..errors import BadConfig

DATASETS = ("ucf101", "hmdb51")


@dataclass
class Video:
    cls: str
    stem: str            # file name without .avi
    relpath: str         # path under the videos folder

    @property
    def clip(self) -> str:
        return f"{self.cls}/{self.stem}"


@dataclass
class Splits:
    dataset: str
    classes: list[str]                                   # label order
    train: dict[int, list[Video]] = field(default_factory=dict)
    test: dict[int, list[Video]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # clip -> split file that lists it first

    def videos(self) -> list[Video]:
        seen: dict[str, Video] = {}
        for part in (self.train, self.test):
            for vids in part.values():
                for v in vids:
                    seen.setdefault(v.clip, v)
        return [seen[k] for k in sorted(seen)]

    def restrict(self, classes: list[str]) -> "Splits":
        unknown = sorted(set(classes) - set(self.classes))
        if unknown:
            raise BadConfig(f"{self.dataset} has no class {', '.join(unknown)}")
        keep = label_order(classes)
        pick = lambda vids: [v for v in vids if v.cls in keep]  # noqa: E731
        return Splits(self.dataset, keep, {s: pick(v) for s, v in self.train.items()},
                      {s: pick(v) for s, v in self.test.items()}, self.sources)


def label_order(names) -> list[str]:
    return sorted(set(names), key=lambda c: (c.lower(), c))


def _lines(path: Path) -> list[str]:
    if not path.exists():
        raise ContractError(f"{path}: split file not found")
    return [ln.strip() for ln in path.read_text().replace("\r", "").split("\n") if ln.strip()]


def ucf101(split_dir: Path) -> Splits:
    d = Path(split_dir)
    ind = {}
    for ln in _lines(d / "classInd.txt"):
        idx, name = ln.split()
        ind[int(idx)] = name
    classes = [ind[i] for i in sorted(ind)]
    if classes != label_order(classes) or sorted(ind) != list(range(1, len(ind) + 1)):
        raise ContractError(f"{d / 'classInd.txt'}: expected 1-based, alphabetical classes")
    s = Splits("ucf101", classes)
    for k in (1, 2, 3):
        for kind, store in (("train", s.train), ("test", s.test)):
            name = f"{kind}list0{k}.txt"
            vids = []
            for i, ln in enumerate(_lines(d / name), start=1):
                rel = ln.split()[0]
                cls, _, fname = rel.partition("/")
                if cls not in ind.values() or not fname.endswith(".avi"):
                    raise ContractError(f"{d / name}:{i}: unexpected line {ln!r}")
                if kind == "train" and int(ln.split()[1]) != classes.index(cls) + 1:
                    raise ContractError(f"{d / name}:{i}: label {ln.split()[1]} disagrees with classInd")
                v = Video(cls, fname[:-4], rel)
                s.sources.setdefault(v.clip, name)
                vids.append(v)
            store[k] = vids
    return s


def hmdb51(split_dir: Path) -> Splits:
    d = Path(split_dir)
    files = sorted(d.glob("*_test_split[123].txt"))
    if not files:
        raise ContractError(f"{d}: no <class>_test_split{{1,2,3}}.txt files")
    classes = label_order(f.name.rsplit("_test_split", 1)[0] for f in files)
    s = Splits("hmdb51", classes, {1: [], 2: [], 3: []}, {1: [], 2: [], 3: []})
    for cls in classes:
        for k in (1, 2, 3):
            path = d / f"{cls}_test_split{k}.txt"
            for i, ln in enumerate(_lines(path), start=1):
                parts = ln.split()
                if len(parts) != 2 or parts[1] not in "012" or not parts[0].endswith(".avi"):
                    raise ContractError(f"{path}:{i}: expected '<video>.avi <0|1|2>', got {ln!r}")
                v = Video(cls, parts[0][:-4], f"{cls}/{parts[0]}")
                if parts[1] == "1":
                    s.train[k].append(v)
                elif parts[1] == "2":
                    s.test[k].append(v)
                else:
                    continue
                s.sources.setdefault(v.clip, path.name)
    return s


def load_splits(dataset: str, split_dir: Path) -> Splits:
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
