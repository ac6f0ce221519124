"""The Blender scene, built, keyed and rendered through bpy (imported by ``process.py``).

One :class:`BlenderScene` lives in each worker process. It sets up render settings once; each clip
rebuilds only the mannequin and writes all keys in bulk (``foreach_set``), then renders the whole
animation in one call, so there is no per-frame Python and no per-frame scene rebuild.

Where a frame's CPU goes and what was cut (``bench/render.py --profile``, BENCHMARKS.md):
Blender's render call is ~95 % of it (drawing, colour conversion, JPEG writing), our per-clip
Python (animate, scene rebuild, keys) ~5 %. A render worker is one process per core, but Blender
sized its thread pool (TBB) and, without a GPU, Mesa's llvmpipe sized its raster threads to every
core of the machine; ``process.py`` keeps both on the worker's own thread.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import BLENDER_FRAMES
from ..errors import BadConfig, BadData
from .camera import CameraPath
from .mannequin import NAMES, PARENT, Skeleton, part_mesh, rest_rotations
from .process import import_bpy, lean_process
from .record import Light

bpy = import_bpy()

ENGINES = {"workbench": "BLENDER_WORKBENCH", "cycles": "CYCLES"}

class BlenderScene:
    """One worker's Blender scene: render settings for ``engine`` at ``size`` and ``fps`` set once
    (Cycles' Vector pass to multi-layer EXR with ``gt_flow``, else JPEG frames); each clip is then
    built, keyed and rendered whole by :meth:`render` or :meth:`render_skinned`."""

    def __init__(self, engine: str, size: tuple[int, int], fps: int, gt_flow: bool, threads: int = 1):
        if gt_flow and engine != "cycles":
            raise BadConfig("--gt-flow needs the cycles engine (Blender's Vector pass)")
        self.engine, self.gt_flow = engine, gt_flow
        lean_process(threads)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        sc = self.scene = bpy.context.scene
        r = sc.render
        r.engine = ENGINES[engine]
        r.resolution_x, r.resolution_y = size
        r.resolution_percentage = 100
        r.fps = fps
        r.use_compositing = False
        r.use_sequencer = False
        r.threads_mode = "FIXED"
        r.threads = threads
        sc.view_settings.view_transform = "Standard"
        for p in r.bl_rna.properties:  # no date or render time in the files: a seed gives the same bytes
            if p.identifier.startswith("use_stamp"):
                setattr(r, p.identifier, False)
        world = bpy.data.worlds.new("black")
        world.color = (0.0, 0.0, 0.0)
        sc.world = world
        if engine == "workbench":
            sh = sc.display.shading
            sh.light = "STUDIO"
            sh.color_type = "MATERIAL"
            sh.show_cavity = False
            sh.show_shadows = False
            sh.use_world_space_lighting = True
            sc.display.render_aa = "OFF"
        else:
            cy = sc.cycles
            cy.device = "CPU"
            cy.samples = 1
            cy.use_adaptive_sampling = False
            cy.use_denoising = False
            cy.max_bounces = 0
            cy.seed = 0
            world.use_nodes = True
            world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
        if gt_flow:
            r.film_transparent = True  # alpha is the body mask
            sc.view_layers[0].use_pass_vector = True
            r.image_settings.media_type = "MULTI_LAYER_IMAGE"
            r.image_settings.file_format = "OPEN_EXR_MULTILAYER"
            r.image_settings.color_depth = "32"
        else:
            r.image_settings.file_format = "JPEG"
            r.image_settings.quality = 95
            r.image_settings.color_mode = "RGB"
        cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
        cam.rotation_mode = "QUATERNION"
        cam.data.sensor_fit = "HORIZONTAL"
        cam.data.clip_start, cam.data.clip_end = 0.05, 500.0
        sc.collection.objects.link(cam)
        sc.camera = self.camera = cam
        self.material = bpy.data.materials.new("mannequin")

    # ------------------------------------------------------------------ clip
    def render(self, skel: Skeleton, quats: np.ndarray, root_loc: np.ndarray, cam: CameraPath,
               grey: float, light: Light, out: Path, backdrop: tuple | None = None, extras: Sequence = ()) -> None:
        """The mannequin: an armature keyed with ``quats`` and ``root_loc``, shot along ``cam`` into
        ``out``; ``backdrop`` (vertices, triangles, grey) adds a background mesh and ``extras`` other
        people (see :meth:`_add_extras`)."""
        self._start(len(quats), grey)
        self._add_backdrop(backdrop)
        self._add_extras(extras)
        self._key_pose(self._build_body(skel), quats, root_loc)
        self._shoot(cam, light, out)

    def _key_pose(self, arm, quats: np.ndarray, root_loc: np.ndarray) -> None:
        action = bpy.data.actions.new("pose")
        arm.animation_data_create()
        arm.animation_data.action = action
        frames = np.arange(1, len(quats) + 1, dtype=np.float32)
        for b, name in enumerate(NAMES):
            path = f'pose.bones["{name}"].rotation_quaternion'
            for i in range(4):
                _keys(action, arm, path, i, frames, quats[:, b, i])
        for i in range(3):
            _keys(action, arm, 'pose.bones["pelvis"].location', i, frames, root_loc[:, i])

    def render_skinned(self, verts: np.ndarray, faces: list, cache: Path, cam: CameraPath, grey: float,
                       light: Light, out: Path, backdrop: tuple | None = None, extras: Sequence = ()) -> None:
        """A skinned body: its rest mesh, moved by a point cache (PC2) of skinned vertices, shot along
        ``cam`` into ``out``; ``backdrop`` and ``extras`` as for :meth:`render`."""
        self._start(len(cam.lens), grey)
        self._add_backdrop(backdrop)
        self._add_extras(extras)
        mesh = _mesh("body", verts, faces)
        mesh.shade_smooth()
        mesh.materials.append(self.material)
        ob = bpy.data.objects.new("body", mesh)
        self.scene.collection.objects.link(ob)
        mod = ob.modifiers.new("motion", "MESH_CACHE")
        mod.cache_format = "PC2"
        mod.filepath = str(cache)
        mod.frame_start = 1.0  # scene frame 1 plays the cache's first sample
        self._shoot(cam, light, out)

    def _add_extras(self, extras: Sequence) -> None:
        """Other people: a mannequin per (skeleton, quats, root_loc, location, yaw), keyed like the main one."""
        for skel, quats, root_loc, location, yaw in extras:
            arm = self._build_body(skel)
            arm.location, arm.rotation_euler = location, (0.0, 0.0, yaw)
            self._key_pose(arm, quats, root_loc)

    def _add_backdrop(self, backdrop: tuple | None) -> None:
        """A flat grey, untextured background mesh with its own material (removed by :meth:`_clear`)."""
        if backdrop is None:
            return
        verts, faces, grey = backdrop
        mesh = bpy.data.meshes.new("backdrop")   # not _mesh: its edge-less bulk mesh drew these other pixels
        mesh.from_pydata(verts.tolist(), [], faces.tolist())
        mesh.update()
        mat = bpy.data.materials.new("backdrop")
        mat.diffuse_color = (grey, grey, grey, 1.0)
        if self.engine == "cycles":
            mat.use_nodes = True
            mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (grey, grey, grey, 1.0)
        mesh.materials.append(mat)
        self.scene.collection.objects.link(bpy.data.objects.new("backdrop", mesh))

    def _start(self, n: int, grey: float) -> int:
        self._clear()
        self.scene.frame_start, self.scene.frame_end = 1, n
        self._set_colour(grey)
        return n

    def _shoot(self, cam: CameraPath, light: Light, out: Path) -> None:
        self._key_camera(cam, light, out)
        bpy.ops.render.render(animation=True)

    def _key_camera(self, cam: CameraPath, light: Light, out: Path) -> None:
        frames = np.arange(1, len(cam.lens) + 1, dtype=np.float32)
        cam_action = bpy.data.actions.new("camera")
        self.camera.animation_data_create()
        self.camera.animation_data.action = cam_action
        for i in range(3):
            _keys(cam_action, self.camera, "location", i, frames, cam.position[:, i])
        for i in range(4):
            _keys(cam_action, self.camera, "rotation_quaternion", i, frames, cam.quaternion[:, i])
        lens_action = bpy.data.actions.new("lens")
        self.camera.data.animation_data_create()
        self.camera.data.animation_data.action = lens_action
        _keys(lens_action, self.camera.data, "lens", 0, frames, cam.lens)
        self._set_light(light)
        self.scene.render.filepath = str(Path(out) / ("exr_#####" if self.gt_flow else BLENDER_FRAMES))

    def load_rigged(self, path: str):
        """Rest mesh, skinning weights and bones of a rigged glTF/FBX body, as numpy (see
        bodies.SkinnedBody); the imported objects are removed again."""
        from .skinned import SkinnedBody
        self._clear()
        before = set(bpy.data.objects)
        try:
            if path.lower().endswith(".fbx"):
                bpy.ops.import_scene.fbx(filepath=path)
            else:
                bpy.ops.import_scene.gltf(filepath=path)
        except RuntimeError as e:
            raise BadData(f"{path}: Blender could not import it ({str(e).splitlines()[-1]})") from None
        new = [o for o in bpy.data.objects if o not in before]
        arms = [o for o in new if o.type == "ARMATURE"]
        skinned = [o for o in new if o.type == "MESH" and any(m.type == "ARMATURE" for m in o.modifiers)]
        if len(arms) != 1 or not skinned:
            raise BadData(f"{path}: need one armature and a mesh skinned to it, found {len(arms)} "
                                f"armature(s) and {len(skinned)} skinned mesh(es)")
        arm = arms[0]
        bones = list(arm.data.bones)
        names = [b.name for b in bones]
        index = {b: i for i, b in enumerate(names)}
        mw = np.array(arm.matrix_world)
        to_world = lambda p: (mw[:3, :3] @ np.array(p)) + mw[:3, 3]  # noqa: E731
        verts: list[np.ndarray] = []
        faces: list[list[int]] = []
        idx: list[list[int]] = []
        weights: list[list[float]] = []
        for ob in skinned:
            base = sum(len(v) for v in verts)
            m = np.array(ob.matrix_world)
            co = np.array([v.co for v in ob.data.vertices])
            verts.append(co @ m[:3, :3].T + m[:3, 3])
            faces += [[base + i for i in p.vertices] for p in ob.data.polygons]
            groups = {g.index: index.get(g.name, -1) for g in ob.vertex_groups}
            for v in ob.data.vertices:
                w = sorted(((g.weight, groups[g.group]) for g in v.groups if groups.get(g.group, -1) >= 0),
                           reverse=True)[:8]
                idx.append([j for _, j in w] + [0] * (8 - len(w)))
                weights.append([x for x, _ in w] + [0.0] * (8 - len(w)))
        wts = np.array(weights)
        if (wts.sum(axis=1) <= 0).any():
            raise BadData(f"{path}: {(wts.sum(axis=1) <= 0).sum()} vertices have no bone weights")
        body = SkinnedBody(np.concatenate(verts), faces, names,
                           np.array([index[b.parent.name] if b.parent else -1 for b in bones]),
                           np.array([to_world(b.head_local) for b in bones]),
                           np.array([to_world(b.tail_local) for b in bones]),
                           np.array(idx), wts / wts.sum(axis=1, keepdims=True))
        self._clear()
        return body

    def _set_colour(self, grey: float) -> None:
        m = self.material
        m.diffuse_color = (grey, grey, grey, 1.0)
        if self.engine == "cycles":
            m.use_nodes = True
            bsdf = m.node_tree.nodes["Principled BSDF"]
            bsdf.inputs["Base Color"].default_value = (grey, grey, grey, 1.0)
            bsdf.inputs["Roughness"].default_value = 0.6

    def _set_light(self, light: Light) -> None:
        az, el = math.radians(light.azimuth), math.radians(light.elevation)
        if self.engine == "workbench":
            # Workbench's studio light has a direction (rotation about Z) but no strength; the
            # sampled strength scales the body's grey instead (see _set_colour's caller).
            self.scene.display.shading.studiolight_rotate_z = az - math.pi
            return
        for key, strength, a, e in (("key", 4.0 * light.strength, az, el),
                                    ("fill", 1.2 * light.strength, az + math.pi * 0.8, math.radians(20))):
            sun = bpy.data.objects.new(key, bpy.data.lights.new(key, "SUN"))
            sun.data.energy = strength
            # a sun shines along its -Z; point it from (a, e) towards the origin
            sun.rotation_euler = (math.pi / 2 - e, 0.0, a + math.pi / 2)
            self.scene.collection.objects.link(sun)

    def _build_body(self, skel: Skeleton):
        data = bpy.data.armatures.new("mannequin")
        arm = bpy.data.objects.new("mannequin", data)
        self.scene.collection.objects.link(arm)
        bpy.context.view_layer.objects.active = arm
        rest = rest_rotations(skel)
        bpy.ops.object.mode_set(mode="EDIT")
        edit: list = []   # the edit bones made so far (bpy objects), a child's parent among them
        for b, name in enumerate(NAMES):
            eb = data.edit_bones.new(name)
            eb.head, eb.tail = skel.heads[b], skel.tails[b]
            eb.align_roll(rest[b][:, 2])  # bone Z as in rest_rotations: poses convert exactly
            if PARENT[b] >= 0:
                eb.parent = edit[PARENT[b]]
            edit.append(eb)
        bpy.ops.object.mode_set(mode="OBJECT")
        for b, name in enumerate(NAMES):
            got = np.array(data.bones[name].matrix_local.to_3x3())
            if not np.allclose(got, rest[b], atol=1e-4):
                raise RuntimeError(f"bone {name}: Blender's rest frame differs from ours")
            verts, faces = part_mesh(skel, b)
            length = np.linalg.norm(skel.tails[b] - skel.heads[b])
            # bone-parented objects live in the bone's frame at its tail
            local = (verts - skel.heads[b]) @ rest[b] - np.array([0.0, length, 0.0])
            mesh = _mesh(name, local, faces)
            mesh.shade_smooth()
            mesh.materials.append(self.material)
            part = bpy.data.objects.new(name, mesh)
            part.parent, part.parent_type, part.parent_bone = arm, "BONE", name
            self.scene.collection.objects.link(part)
        return arm

    def _clear(self) -> None:
        for ob in list(self.scene.collection.objects):
            if ob is not self.camera:
                bpy.data.objects.remove(ob)
        for coll in (bpy.data.meshes, bpy.data.armatures, bpy.data.actions, bpy.data.lights, bpy.data.images):
            for block in list(coll):
                coll.remove(block)
        for m in list(bpy.data.materials):  # an imported body brings its own
            if m is not self.material:
                bpy.data.materials.remove(m)


def _mesh(name: str, verts: np.ndarray, faces) -> Any:   # a bpy.types.Mesh
    """A mesh of ``verts`` (V, 3) and ``faces`` (an (F, k) array, or polygons of any sizes), written in bulk
    (no edges: the mannequin's parts and skinned bodies draw as they always did)."""
    if isinstance(faces, np.ndarray):   # one polygon size: no per-face Python (the mannequin's parts, per clip)
        sizes, loops = np.full(len(faces), faces.shape[1], dtype=np.int32), faces.astype(np.int32).ravel()
    else:
        sizes = np.array([len(f) for f in faces], dtype=np.int32)
        loops = np.concatenate([np.asarray(f, dtype=np.int32) for f in faces])
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", np.asarray(verts, dtype=np.float32).ravel())
    mesh.loops.add(int(sizes.sum()))
    mesh.loops.foreach_set("vertex_index", loops)
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32))
    mesh.update()
    return mesh


def _keys(action, owner, path: str, index: int, frames: np.ndarray, values: np.ndarray) -> None:
    fc = action.fcurve_ensure_for_datablock(owner, path, index=index)
    fc.keyframe_points.add(len(frames))
    co = np.empty(2 * len(frames), dtype=np.float32)
    co[0::2], co[1::2] = frames, values
    fc.keyframe_points.foreach_set("co", co)
    # linear keys: only whole frames are rendered, and the Vector pass differences whole frames
    fc.keyframe_points.foreach_set("interpolation", np.ones(len(frames), dtype=np.int32))
    fc.update()
