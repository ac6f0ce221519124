"""Frames and flow as stored: TSN's flow encoding and strictly decoded JPEGs.

Flow k is frame k -> k+1, clipped to +-bound and stored as ``round(255*(v+bound)/(2*bound))``, one
grayscale JPEG per component, as TSN did.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import BadData
from .layout import OURS, Layout, flow_names

FLOW_BOUND = 20.0
JPEG_QUALITY = 95
FLOW_ENCODING = ("clip to +-bound, round(255*(v+bound)/(2*bound)), one grayscale JPEG per component "
                 f"(quality {JPEG_QUALITY}); flow_x/flow_y_k is frame k -> k+1, 1-based")


def encode_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 2) float flow in pixels -> two uint8 images in TSN's encoding."""
    q = np.rint(255.0 * (np.clip(flow, -bound, bound) + bound) / (2.0 * bound))
    q = q.astype(np.uint8)
    return q[..., 0], q[..., 1]


def decode_flow(fx: np.ndarray, fy: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Inverse of :func:`encode_flow` up to the quantisation step ``2*bound/255``."""
    q = np.stack([fx, fy], axis=-1).astype(np.float32)
    return q * (2.0 * bound / 255.0) - bound


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """``image`` as JPEG bytes at the contract's quality."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode a {image.shape} {image.dtype} image as JPEG")
    return buf.tobytes()


def write_jpeg(path: Path, image: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """``image`` as a JPEG file at the contract's quality."""
    Path(path).write_bytes(encode_jpeg(image, quality))


def check_jpeg(data: bytes, path: Path) -> bytes:
    """The bytes of a stored frame, if they are a whole JPEG (libjpeg decodes a cut one, greys
    out the rest and only warns)."""
    if not data:
        raise BadData(f"{path}: empty file, not an image")
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise BadData(f"{path}: truncated JPEG (no end-of-image marker)")
    return data


def read_image(path: Path, gray: bool = False) -> np.ndarray:
    """A stored frame, decoded strictly: a JPEG cut short (libjpeg would fill the rest with grey
    and only warn) or one with bytes after its end is corrupt, not an image."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise BadData(f"{path}: missing or unreadable image") from None
    return decode_image(data, path, gray)


def decode_image(data: bytes, where: Any, gray: bool = False) -> np.ndarray:
    """A frame's bytes decoded as strictly as :func:`read_image` does; ``where`` is blamed."""
    img = cv2.imdecode(np.frombuffer(check_jpeg(data, where), np.uint8),
                       cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise BadData(f"{where}: not a decodable image")
    return img


def write_flow_pair(folder: Path, k: int, flow: np.ndarray, bound: float = FLOW_BOUND) -> None:
    """Flow ``k`` in pixels, written as the contract's two flow JPEGs in ``folder``."""
    write_flow_jpegs(folder, k, *encode_flow(flow, bound))


def write_flow_jpegs(folder: Path, k: int, fx: np.ndarray, fy: np.ndarray) -> None:
    """Pair k's two flow images, already in TSN's encoding (uint8)."""
    nx, ny = flow_names(k)
    write_jpeg(Path(folder) / nx, fx)
    write_jpeg(Path(folder) / ny, fy)


def read_flow_pair(folder: Path, k: int, bound: float = FLOW_BOUND, layout: Layout = OURS) -> np.ndarray:
    """Decoded flow in pixels, (H, W, 2)."""
    return decode_flow(*read_flow_jpegs(folder, k, layout), bound)


def read_flow_jpegs(folder: Path, k: int, layout: Layout = OURS) -> tuple[np.ndarray, np.ndarray]:
    """The two encoded uint8 flow images of pair k, as stored."""
    nx, ny = layout.flow_names(k)
    return read_image(Path(folder) / nx, True), read_image(Path(folder) / ny, True)
