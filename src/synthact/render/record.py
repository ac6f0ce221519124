"""The clip record: every random choice of a clip, as a tree of dataclasses, and its manifest line.

:func:`sampling.sample_record` draws a :class:`ClipRecord` (clip, body, action, camera, light,
motion); ``animate``, ``scene`` and ``clips`` read it by attribute, so a misspelt name is an
``AttributeError`` where it is written, not a ``KeyError`` inside a render worker. A worker returns
a :class:`RenderedClip` (the record and what rendering measured); :func:`manifest_line` turns it
into the manifest's JSON object with :func:`dataclasses.asdict`, and :func:`read_clip` /
:func:`read_records` turn manifest lines of every version back into records, refusing a missing,
unknown or mistyped key with a one-line :class:`~synthact.errors.BadData` naming file and line.

A manifest line (``json.dumps(line, sort_keys=True)``) holds::

    clip class batch_seed index seed frames fps size engine gt_flow    the clip and its root's settings
    motion       {source: procedural} or {source: bvh, file, frames, start, bone_map, origin?}
                 (origin: the video an extracted capture came from);
                 absent in lines written before motion capture (procedural)
    body         proportions (height leg arm torso girth shoulders hips head), grey, model
                 (absent before skinned bodies: the mannequin), phenotype (makehuman only)
    action       speed amp phase mirror style{channel: degrees}
    camera       azimuth elevation lens fill pan zoom follow; with --profile also framing, view and
                 handheld {shake frequency phases drift drift_angle reframe reframe_at} (moving camera)
    light        azimuth elevation strength
    num_frames camera_distance camera_follows render_seconds            measured by the render
    motion_used  what a capture gave (see ``mocap.sample_positions``); captured motion only
    profile      the shot profile's name (render-clips --profile only)
    background   {kind grey size count spacing angle seed} (render-clips --background points|grid only)
    extras       [{body action x y facing}]: other people in the shot (--profile, people > 1 only)

Optional keys are written only when set, exactly as before the records were typed.
"""
from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

from .. import contract as C
from ..errors import BadData
from .skinned import body_model

_OPTIONAL = "optional"


def _optional() -> Any:
    """A field whose key is absent from the manifest line while it is None."""
    return field(default=None, metadata={_OPTIONAL: True})


@dataclass(frozen=True)
class ProceduralMotion:
    """A motion from the action library (``actions.ACTIONS[record.cls]``)."""

    source: Literal["procedural"] = "procedural"


@dataclass(frozen=True)
class CapturedMotion:
    """A motion cut from a capture of the motion library."""

    file: str                  # the BVH file
    frames: list[int] | None   # [first, last] capture frames to cut from, or None: all of them
    start: float               # where in the usable span the clip starts, 0..1
    bone_map: str | None       # the library's bone map (a name or a file), or None: the default
    source: Literal["bvh"] = "bvh"
    origin: str | None = _optional()   # the video a capture of ``motions extract`` came from


Motion = Union[ProceduralMotion, CapturedMotion]
Framing = Literal["full", "upper", "head", "lower"]   # the part of the body a profiled shot frames
View = Literal["front", "left", "back", "right"]      # the side a profiled shot sees


@dataclass(frozen=True)
class Body:
    """The mannequin's proportions (``body.PROPORTION_RANGES``; our skeleton carries every motion),
    its grey, and the body model rendered."""

    height: float
    leg: float
    arm: float
    torso: float
    girth: float
    shoulders: float
    hips: float
    head: float
    grey: float
    model: str | None = _optional()                    # mannequin | makehuman | a rigged file
    phenotype: dict[str, float] | None = _optional()   # makehuman's shape (bodies.PHENOTYPE_RANGES)

    def proportions(self) -> dict[str, float]:
        """The proportions alone, as :func:`body.build_skeleton` takes them."""
        return {k: getattr(self, k) for k in PROPORTIONS}

    @property
    def model_name(self) -> str:
        """The model rendered (records written before bodies existed name none: the mannequin)."""
        return body_model({} if self.model is None else {"model": self.model})


PROPORTIONS = ("height", "leg", "arm", "torso", "girth", "shoulders", "hips", "head")


@dataclass(frozen=True)
class Action:
    """How the action is played: ``actions.evaluate`` reads these (as a dict: :func:`dataclasses.asdict`)."""

    speed: float
    amp: float
    phase: float
    mirror: bool
    style: dict[str, float]   # per-clip posture quirks, degrees per channel (sampling.STYLE_RANGES)


@dataclass(frozen=True)
class Handheld:
    """A hand-held camera (``render-clips --profile``, camera motion drawn): a shake of three
    sinusoids per axis, a slow drift of its position and one reframing turn."""

    shake: float          # degrees, peak yaw / pitch of the shake
    frequency: float      # Hz, the shake's base frequency (harmonics at 2.3x and 5.1x)
    phases: list[float]   # six phases in turns: yaw x3, pitch x3
    drift: float          # metres the camera wanders over the clip (in its image plane)
    drift_angle: float    # degrees, the drift's direction in the image plane (0: right)
    reframe: float        # degrees of one yaw correction, eased in around ``reframe_at``
    reframe_at: float     # when, 0..1 of the clip


@dataclass(frozen=True)
class Camera:
    """The sampled shot; ``camera.frame_clip`` turns it into a path that keeps the body in frame."""

    azimuth: float     # degrees, 0 looks at the body's front
    elevation: float   # degrees
    lens: float        # mm at the start
    fill: float        # share of the half-frame the body may fill
    pan: float         # azimuth drift over the clip, degrees
    zoom: float        # focal length factor reached at the end
    follow: bool       # track the root (forced on for travelling motions)
    framing: Framing | None = _optional()   # from a profile (None: full)
    view: View | None = _optional()         # the azimuth's sector (profile)
    handheld: Handheld | None = _optional()  # a hand-held camera's motion (profile: camera moving)
    fixed: bool | None = _optional()          # render-clips --fixed-camera: static however far the root travels


@dataclass(frozen=True)
class Extra:
    """Another person in the shot (``render-clips --profile``, the profile's people): a mannequin
    doing the clip's action with its own body and timing, beside or behind the main figure."""

    body: Body
    action: Action
    x: float          # metres from the main figure's mean ground position (world axes)
    y: float
    facing: float     # degrees about the vertical; 0 faces -Y as the main figure does


@dataclass(frozen=True)
class Background:
    """A faint untextured background that lets camera motion show (``render-clips --background``):
    ``points`` (``count`` points of angular radius ``size`` rad, positions from ``seed``) or
    ``grid`` (floor lines ``spacing`` m apart, ``size`` m half-wide, turned by ``angle`` degrees)."""

    kind: Literal["points", "grid"]
    grey: float      # its colour, 0..1 (the body's grey is 0.45-0.85)
    size: float
    count: int
    spacing: float
    angle: float
    seed: int


@dataclass(frozen=True)
class Light:
    """The key light (Workbench: studio light rotation; strength scales the grey instead)."""

    azimuth: float
    elevation: float
    strength: float


@dataclass(frozen=True, kw_only=True)
class ClipRecord:
    """Everything a clip is rendered from; the same (batch seed, class, index) always gives the same record."""

    clip: str                 # <class>/<clip>
    cls: str                  # the manifest's "class"
    batch_seed: int
    index: int
    seed: int
    frames: int
    fps: int
    size: list[int]           # [width, height]
    engine: str               # workbench | cycles
    gt_flow: bool
    motion: Motion | None = _optional()   # None: written before motion capture (procedural)
    body: Body
    action: Action
    camera: Camera
    light: Light
    profile: str | None = _optional()   # the shot profile the camera was drawn from (render-clips --profile)
    background: Background | None = _optional()   # None: black (render-clips --background)
    extras: list[Extra] | None = _optional()      # other people in the shot (profile's people > 1)

    @property
    def moved_by(self) -> Motion:
        """The motion that drives the body (procedural for records written before motion capture)."""
        return self.motion or ProceduralMotion()


@dataclass(frozen=True, kw_only=True)
class RenderedClip(ClipRecord):
    """A clip's manifest line: its record and what rendering it measured."""

    num_frames: int
    camera_distance: float
    camera_follows: bool
    motion_used: dict | None = _optional()   # what a capture gave (mocap.sample_positions); captures only
    render_seconds: float


_CLASSES = (ProceduralMotion, CapturedMotion, Body, Action, Handheld, Camera, Extra, Background, Light,
            ClipRecord, RenderedClip)
_KEY = {"cls": "class"}   # attribute -> manifest key, where the key is a Python keyword
_OMIT_WHEN_NONE = {_KEY.get(f.name, f.name) for c in _CLASSES for f in fields(c) if f.metadata.get(_OPTIONAL)}
# a None under any other key is a value (a capture with no frame range or bone map): written as null
assert not _OMIT_WHEN_NONE & {_KEY.get(f.name, f.name) for c in _CLASSES for f in fields(c)
                              if not f.metadata.get(_OPTIONAL)}


def _line_object(pairs: list[tuple[str, Any]]) -> dict:
    return {_KEY.get(k, k): v for k, v in pairs if not (v is None and k in _OMIT_WHEN_NONE)}


def manifest_line(record: ClipRecord) -> dict:
    """The JSON object of ``record`` as the manifest holds it (``contract.append_manifest`` writes
    it with sorted keys): the keys of the module doc, optional ones only when set."""
    return asdict(record, dict_factory=_line_object)


# ------------------------------------------------------------------ reading back
def read_clip(line: Any, where: str) -> RenderedClip:
    """The record of one manifest line (a parsed JSON object) of any version; ``where``
    (``file:line``) is named in the one-line :class:`BadData` a missing, unknown or mistyped key
    raises. :func:`manifest_line` gives the same object back."""
    return _build(RenderedClip, line, where, "")


def read_records(root: Path) -> list[RenderedClip]:
    """The records of a synthetic root's manifest, as :func:`contract.read_manifest` keeps them
    (a torn last line dropped, a duplicated clip's last line), each checked by :func:`read_clip`."""
    return [read_clip(line.fields, line.where) for line in C.read_manifest(root)]


def _build(cls: type, data: Any, where: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        what = f"'{prefix.rstrip('.')}'" if prefix else "the record"
        raise BadData(f"{where}: {what} is {_show(data)}, expected a JSON object")
    hints = _hints(cls)
    by_key = {_KEY.get(f.name, f.name): f for f in fields(cls)}
    unknown = sorted(set(data) - set(by_key))
    if unknown:
        raise BadData(f"{where}: unknown key '{prefix}{unknown[0]}' in the record (misspelt?)")
    values = {}
    for key, f in by_key.items():
        if key in data:
            values[f.name] = _value(hints[f.name], data[key], where, prefix + key)
        elif f.default is MISSING:
            raise BadData(f"{where}: the record has no '{prefix}{key}' key")
    if cls is Body and values.get("model") == "makehuman" and values.get("phenotype") is None:
        raise BadData(f"{where}: the record has no '{prefix}phenotype' key (a makehuman body)")
    return cls(**values)


def _value(hint: Any, value: Any, where: str, key: str) -> Any:
    """``value`` checked against a field's type hint; kept as JSON gave it (an int stays an int)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if options == [ProceduralMotion, CapturedMotion]:
            source = value.get("source") if isinstance(value, dict) else None
            if source not in ("procedural", "bvh"):
                raise BadData(f"{where}: '{key}.source' is {_show(source)}, expected 'procedural' or 'bvh'")
            return _build(ProceduralMotion if source == "procedural" else CapturedMotion, value, where, key + ".")
        (hint,) = options
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type) and is_dataclass(hint):
        return _build(hint, value, where, key + ".")
    if origin is Literal:
        if value not in args:
            raise BadData(f"{where}: '{key}' is {_show(value)}, expected {args[0]!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise BadData(f"{where}: '{key}' is {_show(value)}, expected a list")
        return [_value(args[0], v, where, key) for v in value]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise BadData(f"{where}: '{key}' is {_show(value)}, expected a JSON object")
        for k, v in value.items():
            if args:
                _value(args[1], v, where, f"{key}.{k}")
        return value
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: C.finite(v),
          str: lambda v: isinstance(v, str)}[hint](value)
    if not ok:
        raise BadData(f"{where}: '{key}' is {_show(value)}, expected {_NAMES[hint]}")
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_NAMES = {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string"}


def _show(value: Any) -> str:
    """A JSON value as a refusal shows it: short, on one line."""
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value)[:40]
