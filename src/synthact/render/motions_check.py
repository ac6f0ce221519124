"""``synthact motions check``: what each motion capture maps to and whether it moves like a person,
and a contact sheet of the mannequin performing them (rendered by the job runner)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from .. import contract as C
from ..errors import BadData, one_line
from .jobs import RenderJob, render_batch
from .keypoints import KEYS
from .mocap import bone_maps, describe_capture, load_capture
from .sanity import capture_sanity, describe_sanity
from .writer import contact_sheet


def check_motions(files: list[str], bone_map: str | None, sheet: Path | None, size: tuple[int, int] = (160, 120),
                  seconds: float = 4.0, frames: int = 5) -> dict:
    """``synthact motions check``: each capture's map (see :func:`.mocap.describe_capture`) and sanity (see
    :func:`.sanity.capture_sanity`), or the one line saying why it is not mapped; with ``sheet``, a
    contact sheet of the mannequin performing ``seconds`` of every mapped capture (one row each),
    rendered in a scratch folder. ``captures``: one record per file, for ``--json``."""
    if bone_map:
        bone_maps(bone_map)
    lines, failed, ok = [], [], []
    captures: list[dict] = []
    for f in files:
        try:
            km, text = describe_capture(f, bone_map)
        except BadData as exc:
            failed.append((f, one_line(exc)))
            captures.append({"file": f, "error": one_line(exc)})
            continue
        bvh, P = load_capture(f, Path(f).stat().st_mtime_ns)
        sane = capture_sanity(km, P)
        lines.append(text + "\n" + describe_sanity(sane))
        ok.append(str(Path(f).resolve()))
        captures.append({"file": f, "fps": round(bvh.fps, 3), "frames": len(P) - km.first, "bind_frames": km.first,
                         "up": km.up, "facing": km.forward, "unit": km.unit, "stature_m": round(km.stature, 3),
                         "mapped_by": km.how, "key_points": {k: km.names.get(k) for k in KEYS}, **sane})
    if sheet is None or not ok:
        return {"lines": lines, "failed": failed, "sheet": None, "captures": captures}
    with tempfile.TemporaryDirectory(prefix="motions-check-") as tmp:
        classes = {f"capture{i:03d}": [f] for i, f in enumerate(ok)}
        lib = Path(tmp) / "motions.yaml"
        lib.write_text(yaml.safe_dump({"motions": classes}))
        out = Path(tmp) / "clips"
        fps = max(1, round((frames - 1) / seconds))
        s = render_batch(RenderJob(out=out, classes=",".join(classes), per_class=1, frames=frames, size=size,
                                   fps=fps, motions=str(lib), bone_map=bone_map), progress=False)
        failed += [(classes[C.class_of(clip)][0], err) for clip, err in s.failures]
        rows = [(f"{Path(classes[r.cls][0]).name}", C.clip_dir(out, r.clip), frames)
                for r in sorted(C.read_manifest(out), key=lambda r: r.cls)]
        if rows:
            contact_sheet(rows, Path(sheet), per_clip=frames, thumb_w=size[0])
    return {"lines": lines, "failed": failed, "sheet": str(sheet) if rows else None, "captures": captures}
