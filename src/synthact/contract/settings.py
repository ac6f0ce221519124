"""What a root records once for all its clips: ``root.json`` (its settings) and ``flow.json`` (how its
flow was made)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import BadConfig, BadData, warn
from ..provenance import differences, versions
from .codec import FLOW_BOUND, FLOW_ENCODING
from .files import read_json, write_json
from .layout import FLOW_INFO, ROOT_SETTINGS
from .manifest import read_manifest
from .names import finite


@dataclass(frozen=True)
class FlowInfo:
    """How the flow of a root was made (``flow.json``); one method per root, never mixed."""

    method: str
    params: dict | str = ""
    opencv_call: str | None = None
    bound: float = FLOW_BOUND
    encoding: str = FLOW_ENCODING
    opencv: str | None = None
    computed_on: str | None = None
    versions: dict | None = None     # of synthact and its libraries, when the flow was first made

    def same_flow(self, other: "FlowInfo") -> bool:
        """Flow of one method and bound: the only thing a root may hold."""
        return (self.method, self.bound) == (other.method, other.bound)

    def write(self, root: Path) -> None:
        """``flow.json`` of ``root``, atomically."""
        write_json(Path(root) / FLOW_INFO, {k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def read(cls, root: Path) -> "FlowInfo | None":
        """The root's ``flow.json``, or None where it has no flow; a malformed one is named."""
        path = Path(root) / FLOW_INFO
        if not path.exists():
            return None
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("method"), str) or not finite(data.get("bound")):
            raise BadData(f"{path}: expected a flow record with 'method' and 'bound'")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


# what every clip of a root shares, recorded once in root.json (older roots: read off a record)
SYNTHETIC_SETTINGS = ("frames", "fps", "size", "engine", "gt_flow")
REAL_SETTINGS = ("dataset", "size")


def settings_of(record: dict) -> dict:
    """The root settings a manifest record implies (a rendered clip, or a prepared real video)."""
    if "dataset" in record:
        return {"kind": "real", **{k: record.get(k) for k in REAL_SETTINGS}}
    return {"kind": "synthetic", **{k: record.get(k) for k in SYNTHETIC_SETTINGS}}


def recorded_settings(root: Path) -> dict | None:
    """A root's settings: its ``root.json``, else those its manifest records imply, else None."""
    path = Path(root) / ROOT_SETTINGS
    if path.exists():
        settings = read_json(path)
        if not isinstance(settings, dict) or not isinstance(settings.get("kind"), str):
            raise BadData(f"{path}: expected the root's settings (a mapping with 'kind')")
        return settings
    records = read_manifest(root)
    if not records:
        return None
    settings = settings_of(records[0].fields)
    if settings["kind"] == "synthetic":  # body models, as render records them (the mannequin before bodies)
        settings["bodies"] = sorted({(r.fields.get("body") or {}).get("model", "mannequin") for r in records})
    return settings


def settings_diff(have: dict, want: dict) -> list[str]:
    """The keys of ``want`` that ``have`` records with another value."""
    want = json.loads(json.dumps(want))  # tuples compare as the lists JSON gives back
    return [k for k in want if k in have and have[k] != want[k] and k != "versions"]


def claim_settings(root: Path, settings: dict) -> None:
    """Refuse, before anything is written, a run whose settings differ from the root's; record
    them when the root has none yet."""
    have = recorded_settings(root)
    path = Path(root) / ROOT_SETTINGS
    if have is not None:
        diff = settings_diff(have, settings)
        if diff:
            raise BadConfig(f"{path}: this root holds clips with " + ", ".join(f"{k}={have[k]}" for k in diff)
                            + "; this run asks " + ", ".join(f"{k}={json.loads(json.dumps(settings[k]))}"
                                                            for k in diff) + "; use another root")
        changed = differences(have.get("versions"))
        if changed:
            warn(f"{path}: this root was made with other versions ({', '.join(changed)}); its clips may differ "
                 f"slightly from the ones this run adds")
    if not path.exists():
        write_json(path, {"versions": versions(), **(have or {}), **settings})  # a merge keeps its sources' versions
