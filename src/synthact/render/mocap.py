"""Recorded motion on our bodies: bone maps, retargeting and the motion library (numpy only).

Retargeting matches directions, not angles, so it does not care how a capture's rest pose or
joint axes were set up: the pelvis, spine and chest take the full orientation of the capture's
torso (its spine direction and its hip or shoulder line), every other bone turns from its parent's
orientation by the smallest rotation that points it along the captured segment. Captured root
travel is scaled by leg length; the clip is lifted so its lowest vertex touches the floor once,
which keeps jumps in the air.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from ..contract import check_name, read_text
from ..errors import BadConfig, BadData, one_line
from .bvh import load_bvh
from .keypoints import KEYS, OTHER_SIDE, KeyMap, analyse
from .mannequin import INDEX, NAMES, PARENT, Skeleton
from .motion import Posed, forward_kinematics, posed_vertices
from .vectors import align, frame, unit

# a named bone map: our key points -> the capture's joints, overriding the search by structure
# (keypoints.py); "<joint>_end" is a joint's end site; a list gives candidates, the first one the
# capture has is used (captures of one family differ in the fingers). The toes, hand tips and head
# top may be missing (real exports of these families have no end sites): they are found as the
# structure would, the last bone carried on, the head's top on its neck-to-head line (see OPTIONAL)
BONE_MAPS: dict[str, dict[str, str | list[str]]] = {
    # CMU, cgspeed's MotionBuilder-friendly conversion (and MakeHuman's cmu_mb rig)
    # (Spine1, Neck and the shoulders share a point, as do Head and its end site, and LeftHand,
    # LeftFingerBase and LThumb)
    "cgspeed": {"hips": "Hips", "hip.l": "LeftUpLeg", "hip.r": "RightUpLeg", "spine_low": "LowerBack",
                "spine_mid": "Spine", "neck": "Neck", "head": "Neck1", "head_top": "Head",
                "shoulder.l": "LeftArm", "elbow.l": "LeftForeArm", "wrist.l": "LeftHand",
                "hand_tip.l": ["LeftHandIndex1", "LFingers"], "shoulder.r": "RightArm", "elbow.r": "RightForeArm",
                "wrist.r": "RightHand", "hand_tip.r": ["RightHandIndex1", "RFingers"], "knee.l": "LeftLeg",
                "ankle.l": "LeftFoot", "toe.l": "LeftToeBase", "knee.r": "RightLeg", "ankle.r": "RightFoot",
                "toe.r": "RightToeBase"},
    # CMU's 3ds Max (Biped) conversion
    "3dsmax": {"hips": "Hips", "hip.l": "LeftHip", "hip.r": "RightHip", "spine_low": "Chest",
               "spine_mid": "Chest2", "neck": "Neck", "head": "Head", "head_top": "Head_end",
               "shoulder.l": "LeftShoulder", "elbow.l": "LeftElbow", "wrist.l": "LeftWrist",
               "hand_tip.l": "LeftWrist_end", "shoulder.r": "RightShoulder", "elbow.r": "RightElbow",
               "wrist.r": "RightWrist", "hand_tip.r": "RightWrist_end", "knee.l": "LeftKnee",
               "ankle.l": "LeftAnkle", "toe.l": "LeftToe", "knee.r": "RightKnee", "ankle.r": "RightAnkle",
               "toe.r": "RightToe"},
    # CMU's DAZ-friendly conversion
    "daz": {"hips": "hip", "hip.l": "lThigh", "hip.r": "rThigh", "spine_low": "abdomen", "spine_mid": "chest",
            "neck": "neck", "head": "head", "head_top": "head_end", "shoulder.l": "lShldr", "elbow.l": "lForeArm",
            "wrist.l": "lHand", "hand_tip.l": ["lHand_end", "lMid1"], "shoulder.r": "rShldr", "elbow.r": "rForeArm",
            "wrist.r": "rHand", "hand_tip.r": ["rHand_end", "rMid1"], "knee.l": "lShin", "ankle.l": "lFoot",
            "toe.l": ["lFoot_end", "lToe"], "knee.r": "rShin", "ankle.r": "rFoot", "toe.r": ["rFoot_end", "rToe"]},
    # Character Creator / iClone
    "cc": {"hips": "CC_Base_Hip", "hip.l": "CC_Base_L_Thigh", "hip.r": "CC_Base_R_Thigh",
           "spine_low": "CC_Base_Waist", "spine_mid": "CC_Base_Spine02", "neck": "CC_Base_NeckTwist01",
           "head": "CC_Base_Head", "head_top": "CC_Base_Head_end", "shoulder.l": "CC_Base_L_Upperarm",
           "elbow.l": "CC_Base_L_Forearm", "wrist.l": "CC_Base_L_Hand",
           "hand_tip.l": ["CC_Base_L_Hand_end", "CC_Base_L_Mid1"], "shoulder.r": "CC_Base_R_Upperarm",
           "elbow.r": "CC_Base_R_Forearm", "wrist.r": "CC_Base_R_Hand",
           "hand_tip.r": ["CC_Base_R_Hand_end", "CC_Base_R_Mid1"], "knee.l": "CC_Base_L_Calf",
           "ankle.l": "CC_Base_L_Foot", "toe.l": "CC_Base_L_ToeBase", "knee.r": "CC_Base_R_Calf",
           "ankle.r": "CC_Base_R_Foot", "toe.r": "CC_Base_R_ToeBase"},
}
# key points a bone map may leave out (see analyse in keypoints.py)
OPTIONAL = ("head_top", "hand_tip.l", "hand_tip.r", "toe.l", "toe.r")
# our bone -> (key point it starts at, key point it points to)
SEGMENTS = {"spine": ("spine_low", "spine_mid"), "chest": ("spine_mid", "neck"), "neck": ("neck", "head"),
            "head": ("head", "head_top")}
for _s in ("l", "r"):
    SEGMENTS.update({f"upper_arm.{_s}": (f"shoulder.{_s}", f"elbow.{_s}"),
                     f"forearm.{_s}": (f"elbow.{_s}", f"wrist.{_s}"),
                     f"hand.{_s}": (f"wrist.{_s}", f"hand_tip.{_s}"),
                     f"thigh.{_s}": (f"hip.{_s}", f"knee.{_s}"), f"shin.{_s}": (f"knee.{_s}", f"ankle.{_s}"),
                     f"foot.{_s}": (f"ankle.{_s}", f"toe.{_s}")})


def read_yaml(path: Path, what: str):
    """A YAML file (``what``: a motion library, a bone map). A syntax error is named by file and
    line (yaml itself would blame "<unicode string>"), and so is a value yaml cannot build (a date
    such as 2024-13-45)."""
    text = read_text(path, what, BadConfig)
    try:
        return yaml.safe_load(text)
    except yaml.reader.ReaderError as exc:  # a control character: yaml gives its offset, not its line
        line = text.count("\n", 0, exc.position) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise BadConfig(f"{path}:{line}: not valid YAML (character {char!r} is not allowed)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f":{mark.line + 1}" if mark else ""
        raise BadConfig(f"{path}{at}: not valid YAML ({exc.problem or exc.context})") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise BadConfig(f"{path}: not valid YAML ({one_line(exc)})") from None


def load_bone_map(path: Path) -> dict[str, str | list[str]]:
    """A bone-map file: key point -> the capture's joint name, or a list of candidate names."""
    mapping = read_yaml(path, "bone map")
    if not isinstance(mapping, dict) or not mapping:
        raise BadConfig(f"{path}: expected a mapping key point -> joint name (key points: {', '.join(KEYS)})")
    unknown = sorted(str(k) for k in mapping if k not in KEYS)
    if unknown:
        raise BadConfig(f"{path}: unknown key point(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    for key, value in mapping.items():
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise BadConfig(f"{path}: {key}: expected a joint name or a list of them, got {value!r:.60}")
    return mapping


def bone_maps(spec: str | Path | None) -> dict[str, dict]:
    """The bone maps ``spec`` offers: every family when None, the one named, or a file's; an
    unknown name or a bad file is refused here, so a run can check ``--bone-map`` up front."""
    if not spec:
        return BONE_MAPS
    if str(spec) in BONE_MAPS:
        return {str(spec): BONE_MAPS[str(spec)]}
    if not Path(spec).is_file():
        raise BadConfig(f"{spec}: unknown bone map (choose {', '.join(BONE_MAPS)} or a YAML file)")
    return {str(spec): load_bone_map(Path(spec))}


def resolve_bone_map(names: list[str], spec: str | Path | None, where: str) -> dict[str, int]:
    """Key point -> joint index, from a named family (auto-detected when None) or a YAML file; the
    ``OPTIONAL`` key points the capture does not have are left out."""
    candidates = bone_maps(spec)
    best, missing = None, None
    for family, mapping in candidates.items():
        options = {k: [mapping[k]] if isinstance(mapping.get(k), str) else list(mapping.get(k) or []) for k in KEYS}
        found = {k: next((n for n in opts if n in names), None) for k, opts in options.items()}
        miss = [f"{k} ({' or '.join(options[k]) or 'not mapped'})" for k in KEYS
                if found[k] is None and k not in OPTIONAL]
        if not miss:
            return {k: names.index(name) for k, name in found.items() if name is not None}
        if missing is None or len(miss) < len(missing):
            best, missing = family, miss
    raise BadData(f"{where}: skeleton not mapped; closest bone map {best!r} lacks {', '.join(missing or [])}; "
                  f"pass another --bone-map FILE (YAML: key point -> joint name), or none to map it by its structure")


def load_capture(path: str, mtime_ns: int):
    """A capture file, parsed and posed once per worker: a BVH, or an FBX (read with Blender's
    importer, see :mod:`.fbx_motion`); (skeleton as a :class:`~.bvh.Bvh`, (F, J, 3) positions)."""
    if str(path).lower().endswith(".fbx"):
        from .fbx_motion import load_fbx
        return load_fbx(str(path), mtime_ns)
    return load_bvh(str(path), mtime_ns)


@lru_cache(maxsize=16)
def key_map(path: str, mtime_ns: int, spec: str | None) -> KeyMap:
    """Key points, axes, unit and first frame of a capture, once per capture and worker: by the
    skeleton's structure, or by the bone map ``spec`` names (cgspeed, 3dsmax, daz, cc or a file)."""
    bvh, P = load_capture(path, mtime_ns)
    named = resolve_bone_map(bvh.names, spec, path) if spec else None
    return analyse(bvh.names, bvh.parents, bvh.offsets, P, path, named, str(spec) if spec else "structure", bvh.ends)


def sample_positions(path: str, frames: list | None, n: int, fps: int, start: float, speed: float,
                     mirror: bool, bone_map: str | None) -> tuple[dict[str, np.ndarray], dict]:
    """Key point positions (N, 3) for one clip cut from a capture, resampled and maybe mirrored;
    a bind pose before the motion is skipped unless ``frames`` are given."""
    p = Path(path)
    if not p.exists():
        raise BadData(f"{p}: motion file not found")
    mtime = p.stat().st_mtime_ns
    bvh, P = load_capture(str(p), mtime)
    km = key_map(str(p), mtime, bone_map)
    lo, hi = (frames or [km.first, len(P) - 1])
    hi = min(hi, len(P) - 1)
    if not 0 <= lo < hi:
        raise BadData(f"{p}: frame range {frames} is outside its {len(P)} frames")
    length = (hi - lo) / bvh.fps
    span = (n - 1) / fps * speed
    if span > length:  # too short for this speed: play it slower, recorded in the manifest
        speed, span = speed * length / span, length
    t0 = start * (length - span)
    idx = lo + (t0 + np.arange(n) / fps * speed) * bvh.fps
    i0 = np.clip(np.floor(idx).astype(int), lo, hi - 1)
    w = (idx - i0)[:, None, None]
    keys = km.points(P[i0] * (1 - w) + P[i0 + 1] * w)
    if mirror:  # left takes the right's motion, reflected
        keys = {k: keys[OTHER_SIDE[k]] * np.array([-1.0, 1.0, 1.0]) for k in KEYS}
    info = {"capture_fps": round(bvh.fps, 3), "start_frame": int(i0[0]), "end_frame": int(i0[-1] + 1),
            "speed_used": round(speed, 4)}
    return keys, info


def retarget(skel: Skeleton, k: dict[str, np.ndarray], where: str = "bone map") -> Posed:
    """Pose our skeleton so each bone points along its captured segment (see the module doc);
    ``where`` (the capture) is named when its key points cannot pose a bone."""
    n = len(k["hips"])
    for bone, (a, z) in SEGMENTS.items():
        if np.median(np.linalg.norm(k[z] - k[a], axis=-1)) < 1e-6:
            raise BadData(f"{where}: {a} and {z} are the same point in this capture, so {bone} has no "
                                f"direction; map one of them to another joint (--bone-map FILE)")
    rest_dir = unit(skel.tails - skel.heads)
    G = np.empty((n, len(NAMES), 3, 3))
    hip_line = k["hip.l"] - k["hip.r"]
    shoulder_line = k["shoulder.l"] - k["shoulder.r"]
    hip_centre = (k["hip.l"] + k["hip.r"]) / 2
    G[:, INDEX["pelvis"]] = frame((k["spine_low"] + k["spine_mid"]) / 2 - hip_centre, hip_line)
    G[:, INDEX["spine"]] = frame(k["spine_mid"] - k["spine_low"], hip_line + shoulder_line)
    G[:, INDEX["chest"]] = frame(k["neck"] - k["spine_mid"], shoulder_line)
    for b, name in enumerate(NAMES):
        if name in ("pelvis", "spine", "chest"):
            continue
        a, z = SEGMENTS[name]
        parent = G[:, PARENT[b]]
        current = np.einsum("nij,j->ni", parent, rest_dir[b])
        G[:, b] = align(current, unit(k[z] - k[a])) @ parent
    L = np.empty_like(G)
    L[:, INDEX["pelvis"]] = G[:, INDEX["pelvis"]]
    for b in range(1, len(NAMES)):
        L[:, b] = np.swapaxes(G[:, PARENT[b]], -1, -2) @ G[:, b]
    # captured travel, scaled from the capture's legs to ours, starting at the origin
    def leg(a, b_, c):
        return np.linalg.norm(k[a] - k[b_], axis=-1).mean() + np.linalg.norm(k[b_] - k[c], axis=-1).mean()
    ours = np.linalg.norm(skel.heads[INDEX["shin.l"]] - skel.heads[INDEX["thigh.l"]]) + \
        np.linalg.norm(skel.tails[INDEX["shin.l"]] - skel.heads[INDEX["shin.l"]])
    scale = ours / leg("hip.l", "knee.l", "ankle.l")
    centre = hip_centre * scale
    offset = centre - centre[:1] * np.array([1.0, 1.0, 0.0]) - skel.heads[INDEX["pelvis"]]
    posed = forward_kinematics(skel, L, offset)
    lowest = posed_vertices(skel, posed)[:, :, 2].min()
    posed.offset = offset - np.array([0.0, 0.0, lowest])
    posed.heads = posed.heads - np.array([0.0, 0.0, lowest])
    return posed


def load_library(path: Path) -> dict:
    """``motions.yaml``: ``{bone_map: NAME|FILE?, motions: {class: [{file, frames?, source?, quality?}]}}``,
    files relative to the YAML file (``source``: the video a capture of ``motions extract`` came
    from). Everything is checked here, at plan time, so that a bad
    library or capture refuses the run before anything renders: class names are safe folder names,
    every class lists captures, every capture parses (see :func:`bvh.parse_bvh`), frame ranges fit."""
    path = Path(path)
    lib = read_yaml(path, "motion library")
    if (not isinstance(lib, dict) or set(lib) - {"bone_map", "motions"} or not isinstance(lib.get("motions"), dict)
            or not lib["motions"]):
        raise BadConfig(f"{path}: expected keys bone_map (optional) and motions: {{class: [{{file, frames}}]}}")
    motions = {check_name(cls, "class", path): [_capture(path, cls, item) for item in _items(path, cls, items)]
               for cls, items in lib["motions"].items()}
    bone_map = lib.get("bone_map")
    if bone_map is not None:
        if not isinstance(bone_map, str) or not bone_map:
            raise BadConfig(f"{path}: bone_map: expected {', '.join(BONE_MAPS)} or a file name, got {bone_map!r:.60}")
        if bone_map not in BONE_MAPS:
            bone_map = _beside(path, bone_map, "bone_map")
            bone_maps(bone_map)
    return {"bone_map": bone_map, "motions": motions}


# a library entry's keys: motions extract adds where the capture came from and how well it was seen
CAPTURE_KEYS = {"file", "frames", "source", "quality"}


def _items(path: Path, cls: str, items) -> list:
    """A class's captures: one entry or a list; an empty one would silently fall back to procedural."""
    items = items if isinstance(items, list) else [items]
    if not items or any(item is None for item in items):
        raise BadConfig(f"{path}: class {cls}: lists no motion file (give BVH or FBX files or remove the class)")
    return items


def _beside(path: Path, name: str, what: str) -> str:
    """A file named in the library, relative to it; it must exist."""
    try:
        f = (path.parent / name).resolve()
        found = f.is_file()
    except (OSError, ValueError) as exc:  # a name the OS cannot take (a NUL byte, too long)
        raise BadConfig(f"{path}: {what}: bad file name {name!r:.60} ({exc})") from None
    if not found:
        raise BadConfig(f"{path}: {what}: file {name!r} not found ({f})")
    return str(f)


def _capture(path: Path, cls: str, item) -> dict:
    """One library entry, checked: the file parses as a capture and its frame range fits in it."""
    item = {"file": item} if isinstance(item, str) else item
    if not isinstance(item, dict) or set(item) - CAPTURE_KEYS or not isinstance(item.get("file"), str):
        raise BadConfig(f"{path}: class {cls}: expected a file name or {{file: NAME, frames: [FIRST, LAST]}} "
                        f"(and, from motions extract, source and quality), got {item!r:.60}")
    source, quality = item.get("source"), item.get("quality")
    if source is not None and not (isinstance(source, dict) and isinstance(source.get("video"), str)):
        raise BadConfig(f"{path}: class {cls}: {item['file']!r}: source {source!r:.60}: expected "
                        f"{{video: FILE, ...}} (what motions extract writes)")
    if quality is not None and not (type(quality) in (int, float) and 0 <= quality <= 1):
        raise BadConfig(f"{path}: class {cls}: {item['file']!r}: quality {quality!r:.60}: expected a number in 0..1")
    f = _beside(path, item["file"], f"class {cls}")
    frames = item.get("frames")
    if frames is not None and not (isinstance(frames, list) and len(frames) == 2
                                   and all(type(v) is int for v in frames) and 0 <= frames[0] < frames[1]):
        raise BadConfig(f"{path}: class {cls}: {item['file']!r}: frames {frames!r:.60}: expected [FIRST, LAST], "
                        f"whole numbers, 0 <= FIRST < LAST")
    try:
        bvh, _ = load_capture(f, Path(f).stat().st_mtime_ns)
    except BadData as exc:
        raise BadData(f"{exc} (a capture of class {cls} in {path})") from None
    if frames is not None and frames[0] >= len(bvh.motion) - 1:
        raise BadConfig(f"{path}: class {cls}: {item['file']!r}: frames {frames} start past its "
                        f"{len(bvh.motion)} frames")
    return {"file": f, "frames": frames, "origin": _origin(source)}


def _origin(source: dict | None) -> str | None:
    """One line naming the video an extracted capture came from (the clips' manifest keeps it)."""
    if source is None:
        return None
    frames = source.get("frames")
    span = f" frames {frames[0]}-{frames[1]}" if isinstance(frames, list) and len(frames) == 2 else ""
    split = source.get("split")
    split = f", {split} {source.get('role', '')}".rstrip() if split not in (None, "none") else ""
    return f"video {source['video']}{span}{split}"


def describe_capture(path: str, bone_map: str | None = None) -> tuple[KeyMap, str]:
    """A capture's map and a few lines for a user: fps, frames, duration, axes, unit, key points."""
    p = Path(path)
    if not p.is_file():
        raise BadData(f"{p}: motion file not found")
    bvh, P = load_capture(str(p), p.stat().st_mtime_ns)
    km = key_map(str(p), p.stat().st_mtime_ns, bone_map)
    frames = len(P) - km.first
    dropped = f" ({km.first} bind frame{'s' * (km.first > 1)} dropped)" if km.first else ""
    lines = [f"{p}: {bvh.fps:.6g} fps, {frames} frames{dropped}, {(frames - 1) / bvh.fps:.2f} s; "
             f"{len(bvh.names) - sum(bvh.ends)} joints; up {km.up}, facing {km.forward}, unit {km.unit} "
             f"(stature {km.stature:.2f} m); mapped by {km.how}"]
    torso = [k for k in KEYS if k == OTHER_SIDE[k]]
    lines.append("  torso: " + " ".join(f"{k}={km.names.get(k, '?')}" for k in torso))
    for s, side in (("l", "left: "), ("r", "right:")):
        lines.append(f"  {side} " + " ".join(f"{k[:-2]}={km.names.get(k, '?')}" for k in KEYS if k.endswith("." + s)))
    return km, "\n".join(lines)
