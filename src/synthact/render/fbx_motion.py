"""FBX motion captures: an armature with an action (no mesh needed), read with Blender's own FBX
importer and sampled into the joint positions a BVH gives, so the rest of the motion path cannot
tell them apart (see :mod:`.skeleton` for how the skeleton is then mapped).

Blender runs in a child process (``python -c``, bpy as a module): a render worker's scene is never
touched by an import, and a file that crashes the importer fails its capture, not the worker. Every
bone's head is sampled at every frame of the action, in Blender's world (the importer turns the
file to Z-up); each bone without children adds its tail as an end site (``<bone>_end``), as a BVH
End Site would. Results are cached per worker, like parsed BVH files. bpy 5.0.1's FBX importer
fails on files holding a light; lights are read as plain point lights here (they are not needed).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import BadData
from .bvh import Bvh

SAMPLE = r"""
import sys
import bpy
import numpy as np

src, out = sys.argv[-2], sys.argv[-1]
bpy.ops.wm.read_factory_settings(use_empty=True)
try:  # bpy 5.0.1's importer fails on any light (lamp.cycles.cast_shadow is gone): a capture needs none
    import io_scene_fbx.import_fbx as _imp
    _read_light = _imp.blen_read_light

    def _light(*args):
        try:
            return _read_light(*args)
        except AttributeError:
            return bpy.data.lights.new("light", "POINT")
    _imp.blen_read_light = _light
except (ImportError, AttributeError):
    pass
try:
    bpy.ops.import_scene.fbx(filepath=src)
except Exception as exc:  # the importer's own words, last line
    text = [ln for ln in str(exc).strip().splitlines() if ln.strip() and not ln.startswith("Location:")]
    sys.stderr.write("SYNTHACT: Blender could not import it (" + (text[-1] if text else type(exc).__name__) + ")\n")
    sys.exit(3)
arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
if len(arms) != 1:
    sys.stderr.write(f"SYNTHACT: expected one armature, found {len(arms)}\n")
    sys.exit(3)
arm = arms[0]
action = arm.animation_data.action if arm.animation_data else None
if action is None:
    sys.stderr.write("SYNTHACT: its armature has no action (no animation)\n")
    sys.exit(3)
scene = bpy.context.scene
first, last = (int(round(f)) for f in action.frame_range)
if last <= first:
    sys.stderr.write(f"SYNTHACT: its action has {last - first + 1} frame(s); a motion needs at least 2\n")
    sys.exit(3)
bones = list(arm.data.bones)
depth = {b.name: len(b.parent_recursive) for b in bones}
bones.sort(key=lambda b: depth[b.name])  # parents first, as in a BVH
names = [b.name for b in bones]
index = {n: i for i, n in enumerate(names)}
parents = [index[b.parent.name] if b.parent else -1 for b in bones]
leaves = [i for i, b in enumerate(bones) if not b.children]
mw = arm.matrix_world
rest = [mw @ b.head_local for b in bones] + [mw @ bones[i].tail_local for i in leaves]
pose = [arm.pose.bones[n] for n in names]
P = np.empty((last - first + 1, len(rest), 3))
for k, f in enumerate(range(first, last + 1)):
    scene.frame_set(f)
    m = arm.matrix_world
    P[k, :len(pose)] = [tuple(m @ pb.head) for pb in pose]
    P[k, len(pose):] = [tuple(m @ pose[i].tail) for i in leaves]
fps = scene.render.fps / scene.render.fps_base
np.savez(out, names=np.array(names + [names[i] + "_end" for i in leaves]), parents=np.array(parents + leaves),
         rest=np.array([tuple(v) for v in rest]), P=P, fps=fps, ends=len(leaves))
"""


@lru_cache(maxsize=16)
def load_fbx(path: str, mtime_ns: int) -> tuple[Bvh, np.ndarray]:
    """A capture read from an FBX file: (its skeleton as a :class:`Bvh` with rest offsets and no
    channels, (F, J, 3) joint and end-site positions in Blender's world axes, file units)."""
    with tempfile.TemporaryDirectory(prefix="synthact-fbx-") as tmp:
        out = Path(tmp) / "motion.npz"
        try:
            r = subprocess.run([sys.executable, "-c", SAMPLE, str(path), str(out)], capture_output=True, text=True,
                               timeout=600)
        except subprocess.TimeoutExpired:
            raise BadData(f"{path}: reading the FBX took over 10 minutes") from None
        said = [ln[len("SYNTHACT: "):] for ln in r.stderr.splitlines() if ln.startswith("SYNTHACT: ")]
        if r.returncode != 0 or not out.exists():
            why = said[0] if said else f"Blender exited with {r.returncode}"
            raise BadData(f"{path}: {why}")
        with np.load(out) as z:
            names, parents, rest, P = list(z["names"]), [int(p) for p in z["parents"]], z["rest"], z["P"]
            fps, n_ends = float(z["fps"]), int(z["ends"])
    if not (np.isfinite(P).all() and np.isfinite(rest).all() and fps > 0):
        raise BadData(f"{path}: the FBX gives non-finite joint positions or frame rate")
    offsets = np.array([rest[j] - rest[p] if p >= 0 else rest[j] for j, p in enumerate(parents)])
    J = len(names)
    ends = [False] * (J - n_ends) + [True] * n_ends
    b = Bvh(str(path), names, parents, offsets, [[] for _ in names], np.zeros((len(P), 0)), 1.0 / fps, ends)
    return b, P
