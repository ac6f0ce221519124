"""Shot statistics as data: what a dataset's clips look like, per class and overall.

HMDB-51 describes every video in its name, ``<name>_<class>_<body>_<camera>_<people>_<view>_<quality>_<n>.avi``:
visible body ``f``/``u``/``h``/``l`` (full, upper, head, lower), camera motion ``cm``/``nm``, people
``np1``, ``np2``..., viewpoint ``fr``/``ba``/``le``/``ri`` and quality ``bad``/``med``/``goo``.
:func:`hmdb51_profile` counts those tags over the official split files into a :class:`Profile`
(shares per class and overall); :func:`write_profile` writes it as YAML (the shipped
``assets/profiles/hmdb51.yaml`` is that output); :func:`load_profile` reads a shipped or a user's
profile, checking every key and value; :func:`draw` draws one clip's :class:`Shot` from it.

The YAML schema (a user may write one for their own dataset)::

    name: mydata            # optional: a label
    dataset: hmdb51         # optional: whose class names the classes are (maps our classes onto them)
    overall:                # required: one weight per value; weights need not sum to 1
      body: {full: 0.6, upper: 0.3, head: 0.1}        # full | upper | head | lower
      camera: {moving: 0.6, static: 0.4}
      people: {1: 0.85, 2: 0.12, 3: 0.03}             # 1, 2, 3... figures
      view: {front: 0.4, back: 0.2, left: 0.2, right: 0.2}
      quality: {bad: 0.2, medium: 0.6, good: 0.2}     # optional, not drawn
    classes:                # optional: per class; a dimension left out uses overall's
      wave: {body: {upper: 1}}
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from ..contract import read_text
from ..errors import BadConfig, BadData
from .splits import _lines, hmdb51

# every dimension a profile holds, with the values it may take (people: any whole number >= 1)
VALUES = {"body": ("full", "upper", "head", "lower"), "camera": ("moving", "static"),
          "view": ("front", "back", "left", "right"), "quality": ("bad", "medium", "good")}
DIMENSIONS = ("body", "camera", "people", "view", "quality")
DRAWN = ("body", "camera", "people", "view")          # what a clip draws; quality is informational
MAX_PEOPLE = 3                                        # HMDB's np3..np10 are counted as 3 (three or more)
MAX_FIGURES = 10      # a profile's people at most: HMDB's largest tag (np10); every figure is a body to pose
# HMDB-51's name tags -> profile values
HMDB_TAGS = {"body": {"f": "full", "u": "upper", "h": "head", "l": "lower"},
             "camera": {"cm": "moving", "nm": "static"},
             "view": {"fr": "front", "ba": "back", "le": "left", "ri": "right"},
             "quality": {"bad": "bad", "med": "medium", "goo": "good"}}
TOP_KEYS = ("name", "dataset", "source", "clips", "overall", "classes")
DIGITS = 4   # shares are written rounded to this many decimals


@dataclass(frozen=True)
class Tags:
    """The shot tags of one HMDB-51 video name."""

    cls: str
    body: str
    camera: str
    people: int
    view: str
    quality: str


@dataclass(frozen=True)
class Shares:
    """One distribution per dimension: value -> probability (each sums to 1)."""

    body: dict
    camera: dict
    people: dict       # int -> probability
    view: dict
    quality: dict = field(default_factory=dict)

    def of(self, dim: str) -> dict:
        """The distribution of dimension ``dim``."""
        return getattr(self, dim)


@dataclass(frozen=True)
class Profile:
    """A dataset's shot statistics: overall shares and per-class shares (a class holds every
    dimension: those its file leaves out are overall's)."""

    name: str
    overall: Shares
    classes: dict = field(default_factory=dict)    # class -> Shares
    dataset: str | None = None
    clips: dict = field(default_factory=dict)      # class -> clips counted ("all": the total), when known
    source: str = ""

    def digest(self) -> str:
        """sha256 of what clips are drawn from (dataset, overall and per-class shares): a root records
        it, so two profiles under one name never mix in one root."""
        data = {"dataset": self.dataset, "overall": _plain(self.overall),
                "classes": {c: _plain(s) for c, s in sorted(self.classes.items())}}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def shares(self, class_name: str | None) -> Shares:
        """The shares for ``class_name``: its own; else those of the class it maps to in
        ``dataset`` (assets/classes.yaml); else overall."""
        if class_name in self.classes:
            return self.classes[class_name]
        if class_name and self.dataset:
            from ..assets import class_map
            theirs = class_map()["actions"].get(class_name, {}).get(self.dataset)
            if theirs in self.classes:
                return self.classes[theirs]
        return self.overall


@dataclass(frozen=True)
class Shot:
    """What one clip draws from a profile."""

    body: str
    camera: str
    people: int
    view: str


# ------------------------------------------------------------------ HMDB-51 names
def parse_name(stem: str, cls: str, where: str) -> Tags:
    """The tags of ``<name>_<class>_<body>_<camera>_<people>_<view>_<quality>_<n>`` (no ``.avi``)."""
    parts = stem.split("_")
    if len(parts) < 8:
        raise BadData(f"{where}: {stem!r} does not end in _<body>_<camera>_<people>_<view>_<quality>_<n>")
    body, camera, people, view, quality, n = parts[-6:]
    bad = [(t, v) for t, v in (("body", body), ("camera", camera), ("view", view), ("quality", quality))
           if v not in HMDB_TAGS[t]]
    if not people.startswith("np") or not people[2:].isdigit():
        bad.append(("people", people))
    if not n.isdigit():
        bad.append(("n", n))
    if bad:
        raise BadData(f"{where}: {stem!r}: unknown tag " + ", ".join(f"{t} {v!r}" for t, v in bad))
    return Tags(cls, HMDB_TAGS["body"][body], HMDB_TAGS["camera"][camera], int(people[2:]),
                HMDB_TAGS["view"][view], HMDB_TAGS["quality"][quality])


def hmdb51_tags(split_dir: Path) -> list[Tags]:
    """The tags of every video the official split files name (tag 0, unused, included), once each."""
    split_dir = Path(split_dir)
    splits = hmdb51(split_dir)          # every line checked (file:line on a malformed one)
    seen: dict[str, Tags] = {}
    for cls in splits.classes:
        for k in (1, 2, 3):
            path = split_dir / f"{cls}_test_split{k}.txt"
            for i, ln in _lines(path):
                stem = ln.split()[0][:-4]
                if stem not in seen:
                    seen[stem] = parse_name(stem, cls, f"{path}:{i}")
    return list(seen.values())


def people_bucket(n: int) -> int:
    """People as drawn: 1, 2 or 3 (three or more); HMDB's one ``np0`` counts as 1."""
    return min(max(n, 1), MAX_PEOPLE)


def _shares(tags: list[Tags]) -> Shares:
    def dist(values, order) -> dict:
        c = Counter(values)
        return {v: round(c[v] / len(values), DIGITS) for v in order if c[v]}
    return Shares(dist([t.body for t in tags], VALUES["body"]), dist([t.camera for t in tags], VALUES["camera"]),
                  dist([people_bucket(t.people) for t in tags], range(1, MAX_PEOPLE + 1)),
                  dist([t.view for t in tags], VALUES["view"]), dist([t.quality for t in tags], VALUES["quality"]))


def profile_from_tags(tags: list[Tags], name: str, dataset: str | None = None, source: str = "") -> Profile:
    """Shares overall and per class of a list of tagged videos."""
    if not tags:
        raise BadData(f"{source or name}: no videos to count")
    by_class: dict[str, list[Tags]] = {}
    for t in tags:
        by_class.setdefault(t.cls, []).append(t)
    clips = {"all": len(tags), **{c: len(v) for c, v in sorted(by_class.items())}}
    return Profile(name, _shares(tags), {c: _shares(v) for c, v in sorted(by_class.items())}, dataset, clips, source)


def hmdb51_profile(split_dir: Path) -> Profile:
    """HMDB-51's shot profile from its official split files."""
    return profile_from_tags(hmdb51_tags(split_dir), "hmdb51", "hmdb51",
                             "HMDB-51 video name tags, official testTrainMulti_7030_splits (all 3 splits)")


# ------------------------------------------------------------------ YAML
def _plain(s: Shares) -> dict:
    return {d: dict(s.of(d)) for d in DIMENSIONS if s.of(d)}


def profile_text(p: Profile) -> str:
    """A profile as the YAML :func:`load_profile` reads."""
    head = (f"# Shot profile {p.name}: shares of each value per class and overall "
            "(see docs/render.md, 'Shot profiles').\n"
            "# people: 3 means three or more. Written by `synthact profile`; edit a copy for your own dataset.\n")
    data = {"name": p.name, **({"dataset": p.dataset} if p.dataset else {}),
            **({"source": p.source} if p.source else {}), **({"clips": dict(p.clips)} if p.clips else {}),
            "overall": _plain(p.overall), "classes": {c: _plain(s) for c, s in p.classes.items()}}
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)


def write_profile(p: Profile, out: Path) -> Path:
    """``out`` holds :func:`profile_text` of ``p`` (written whole)."""
    from ..contract import write_lines
    out = Path(out)
    write_lines(out, profile_text(p).rstrip("\n").split("\n"))
    return out


def make_profile(dataset: str, splits: Path, out: Path) -> Profile:
    """``synthact profile DATASET --splits DIR --out FILE``: count and write the profile."""
    if dataset != "hmdb51":
        raise BadConfig(f"profile {dataset!r}: only hmdb51 names its shots in its file names; write a profile "
                        f"YAML by hand for other datasets (docs/render.md, 'Shot profiles')")
    p = hmdb51_profile(splits)
    write_profile(p, out)
    return p


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped in the package."""
    return sorted(q.name[:-5] for q in resources.files("synthact.assets").joinpath("profiles").iterdir()
                  if q.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``hmdb51``) or a profile YAML file; every key and value is
    checked, a problem named in one line with the file and the key."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in shipped_profiles():
        text = resources.files("synthact.assets").joinpath("profiles", f"{name_or_path}.yaml").read_text()
        path = Path(f"<shipped>/{name_or_path}.yaml")
    elif not path.exists():
        raise BadConfig(f"{name_or_path}: no such profile file or shipped profile "
                        f"({', '.join(shipped_profiles())})")
    else:
        text = read_text(path, "profile", BadConfig)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise BadConfig(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or str(exc).splitlines()[0]})") \
            from None
    return parse_profile(data, path)


def parse_profile(data, path: Path | str) -> Profile:
    """A profile from parsed YAML; ``path`` is blamed in every refusal."""
    if not isinstance(data, dict):
        raise BadConfig(f"{path}: expected a mapping with 'overall' (and optionally 'classes', 'name', 'dataset')")
    unknown = [str(k) for k in data if k not in TOP_KEYS]
    if unknown:
        raise BadConfig(f"{path}: unknown key {', '.join(unknown)}: expected {', '.join(TOP_KEYS)}")
    if "overall" not in data:
        raise BadConfig(f"{path}: missing 'overall' (one weight per value of body, camera, people, view)")
    for key in ("name", "dataset", "source"):
        if key in data and not isinstance(data[key], str):
            raise BadConfig(f"{path}: {key}: must be text")
    overall = _parse_shares(data["overall"], f"{path}: overall", None)
    classes = data.get("classes") or {}
    if not isinstance(classes, dict):
        raise BadConfig(f"{path}: classes: expected a mapping of class name -> dimensions")
    parsed = {str(c): _parse_shares(v, f"{path}: classes.{c}", overall) for c, v in classes.items()}
    clips = data.get("clips") or {}
    if not isinstance(clips, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                              for v in clips.values()):
        raise BadConfig(f"{path}: clips: expected a mapping of class -> whole number of clips")
    return Profile(data.get("name") or Path(str(path)).stem, overall, parsed, data.get("dataset"),
                   {str(k): v for k, v in clips.items()}, data.get("source", ""))


def _parse_shares(block, where: str, fallback: Shares | None) -> Shares:
    if not isinstance(block, dict):
        raise BadConfig(f"{where}: expected a mapping of dimension -> {{value: weight}}")
    unknown = [str(k) for k in block if k not in DIMENSIONS]
    if unknown:
        raise BadConfig(f"{where}: unknown dimension {', '.join(unknown)}: expected {', '.join(DIMENSIONS)}")
    out = {}
    for dim in DIMENSIONS:
        if dim in block:
            out[dim] = _parse_dist(block[dim], dim, f"{where}.{dim}")
        elif fallback is not None:
            out[dim] = fallback.of(dim)
        elif dim in DRAWN:
            raise BadConfig(f"{where}: missing {dim} (one weight per value: "
                            f"{', '.join(VALUES.get(dim, ('1', '2', '3')))})")
        else:
            out[dim] = {}
    return Shares(**out)


def _parse_dist(dist, dim: str, where: str) -> dict:
    if not isinstance(dist, dict) or not dist:
        raise BadConfig(f"{where}: expected a mapping of value -> weight, e.g. "
                        + ("{1: 0.85, 2: 0.15}" if dim == "people" else f"{{{VALUES[dim][0]}: 1}}"))
    out = {}
    for value, weight in dist.items():
        if dim == "people":
            ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_FIGURES
            if not ok:
                raise BadConfig(f"{where}: value {value!r}: people is a whole number of figures, 1 to {MAX_FIGURES}")
        elif value not in VALUES[dim]:
            raise BadConfig(f"{where}: unknown value {value!r}: choose from {', '.join(VALUES[dim])}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight < 0:
            raise BadConfig(f"{where}.{value}: weight {weight!r} must be a finite number >= 0")
        out[value] = float(weight)
    total = sum(out.values())
    if not math.isfinite(total):   # finite weights can still overflow: every share would become 0
        raise BadConfig(f"{where}: the weights sum to {total}; give smaller weights (they need not sum to 1)")
    if total <= 0:
        raise BadConfig(f"{where}: the weights sum to 0; give at least one a positive weight")
    return {v: w / total for v, w in out.items()}


# ------------------------------------------------------------------ drawing
def draw(profile: Profile, class_name: str | None, rng: np.random.Generator) -> Shot:
    """One clip's body, camera, people and view from ``class_name``'s shares (see
    :meth:`Profile.shares`); exactly four uniform draws from ``rng``, in that order."""
    s = profile.shares(class_name)
    picked = {}
    for dim in DRAWN:
        values = list(s.of(dim))
        cum = np.cumsum([s.of(dim)[v] for v in values])
        u = rng.random() * cum[-1]
        picked[dim] = values[min(int(np.searchsorted(cum, u, side="right")), len(values) - 1)]
    return Shot(picked["body"], picked["camera"], int(picked["people"]), picked["view"])
