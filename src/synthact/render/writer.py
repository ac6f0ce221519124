"""Turn what Blender wrote into the data contract: frames, ground-truth flow, video, preview."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import OpenEXR

from ..contract import PREVIEW, atomic_write, clip_dir, img_name, read_image, read_manifest, write_flow_pair, write_jpeg
from ..errors import BadConfig

MASK_ALPHA = 0.5


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def read_exr(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blender multilayer EXR -> (H, W, 3) linear RGB, (H, W) alpha, (H, W, 4) Vector pass."""
    with OpenEXR.File(str(path), separate_channels=True) as f:
        # Blender writes each pass as its own part of a multi-part file
        ch = {name: c for part in f.parts for name, c in part.channels.items()}
    def get(suffix):  # noqa: E306
        names = [k for k in ch if k.endswith(suffix)]
        if len(names) != 1:
            raise BadConfig(f"{path}: expected one channel *{suffix}, found {names}")
        return ch[names[0]].pixels.astype(np.float32)
    rgb = np.stack([get(f"Combined.{c}") for c in "RGB"], axis=-1)
    vec = np.stack([get(f"Vector.{c}") for c in "XYZW"], axis=-1)
    return rgb, get("Combined.A"), vec


def exr_to_contract(folder: Path, n: int) -> None:
    """Replace ``exr_#####.exr`` by RGB JPEGs and body-masked forward flow (frame k -> k+1).

    Blender's Vector pass holds, per pixel, the motion to the previous frame (X, Y) and to the next
    frame (Z, W) in pixels with +y up; in image coordinates (+y down) the forward flow is
    (-Z, +W) (measured: see tests/test_render.py, warping frame k+1 back onto frame k).
    """
    folder = Path(folder)
    for k in range(1, n + 1):
        exr = folder / f"exr_{k:05d}.exr"
        rgb, alpha, vec = read_exr(exr)
        bgr = (_linear_to_srgb(rgb * alpha[..., None])[..., ::-1] * 255.0 + 0.5).astype(np.uint8)
        write_jpeg(folder / img_name(k), bgr)
        if k < n:
            flow = np.stack([-vec[..., 2], vec[..., 3]], axis=-1)
            flow[alpha < MASK_ALPHA] = 0.0
            write_flow_pair(folder, k, flow)
        exr.unlink()


def write_video(folder: Path, n: int, fps: int, path: Path) -> None:
    """Frames 1..n of ``folder`` as an mp4 at ``fps`` (for looking, never read back)."""
    first = read_image(folder / img_name(1))
    h, w = first.shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not vw.isOpened():
        raise OSError(f"{path}: cannot open an mp4 writer")
    for k in range(1, n + 1):
        vw.write(read_image(folder / img_name(k)))
    vw.release()


def contact_sheet(folders: list[tuple[str, Path, int]], path: Path, per_clip: int = 5, thumb_w: int = 170) -> None:
    """One row per clip (label, folder, frame count): ``per_clip`` frames spread over the clip."""
    rows = []
    for label, folder, n in folders:
        idx = np.linspace(1, n, per_clip).round().astype(int)
        tiles = []
        for k in idx:
            img = read_image(folder / img_name(int(k)))
            th = int(round(img.shape[0] * thumb_w / img.shape[1]))
            tiles.append(cv2.resize(img, (thumb_w, th), interpolation=cv2.INTER_AREA))
        row = np.concatenate(tiles, axis=1)
        cv2.putText(row, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows]
    ok, png = cv2.imencode(".png", np.concatenate(rows, axis=0))
    if not ok:
        raise OSError(f"{path}: could not encode preview")
    atomic_write(path, png.tobytes())  # never through a link planted at its name


PREVIEW_CLIPS = 8


def write_preview(root: Path) -> Path | None:
    """``preview.png``: a contact sheet of the first clip of up to eight classes; None for an empty root."""
    first: dict = {}
    for r in read_manifest(root):
        first.setdefault(r.cls, r)
    picks = [first[c] for c in sorted(first)][:PREVIEW_CLIPS]
    if not picks:
        return None
    path = Path(root) / PREVIEW
    contact_sheet([(r.clip, clip_dir(root, r.clip), r.num_frames) for r in picks], path)
    return path
