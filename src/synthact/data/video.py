"""Decoding a real video, the one way ``prepare`` and ``predict`` both do it.

A container's frame count is a hint, not a contract: J-HMDB's AVIs declare 3-8 frames more than
decode, HMDB-51's often one, and variable frame rates, edit lists and packed B-frames do the same
elsewhere, while the pictures are whole. A video is refused for what its decoding shows: nothing or
one frame decodes, the stream stops far short of what the container declares, or the decoder's
timestamps jump over a stretch in the middle. ``strict`` restores the old contract (decoded frames
within ``STRICT_SLACK`` of the declared count) for those who want it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import BadData

STRICT_SLACK = 2        # --strict-frames: HMDB containers declare one frame more than they decode
SHORT_SECONDS = 0.5     # a stream short of its declared length by more than this ...
SHORT_SHARE = 0.10      # ... and by more than this share of it has stopped early, not miscounted
GAP_SECONDS = 0.5       # a jump in decode timestamps longer than this inside the stream is lost frames
GAP_FRAMES = 5          # ... when it also spans more than this many frame intervals


@dataclass(frozen=True)
class VideoInfo:
    """What decoding a video showed: frames decoded, frames its container declared, its rate and size."""

    num_frames: int
    declared_frames: int
    fps: float
    source_size: tuple[int, int]   # width, height as decoded

    @property
    def short_by(self) -> int:
        """Frames the container declares beyond those that decode (0 where it declares none or fewer)."""
        return max(0, self.declared_frames - self.num_frames)

    def record(self) -> dict:
        """The manifest fields of a prepared video."""
        return {"num_frames": self.num_frames, "declared_frames": self.declared_frames, "fps": round(self.fps, 3),
                "source_size": list(self.source_size)}


def decode_video(path: Path, size: tuple[int, int], sink: Callable[[int, np.ndarray], None],
                 strict: bool = False) -> VideoInfo:
    """Decode ``path``, handing each frame resized to ``size`` (width, height) to ``sink(k, frame)``
    (k 1-based) as it comes; raise :class:`BadData` in one line naming the file where the decoding
    shows a broken video (see the module's docstring). FFmpeg's own messages about damaged data are
    silenced (read once, at OpenCV's first capture): the refusal names the file instead."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")   # AV_LOG_FATAL
    if not path.is_file():   # OpenCV would only say it cannot open it
        raise BadData(f"{path}: {_not_a_file(path)}, not a video")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise BadData(f"{path}: cannot open video (corrupt, empty or not a video)")
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    n, shape, stamps = 0, (0, 0), []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            shape = frame.shape[:2]
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
            sink(n, cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    finally:
        cap.release()
    info = VideoInfo(n, declared, fps if np.isfinite(fps) and fps > 0 else 0.0, (int(shape[1]), int(shape[0])))
    check_decoded(path, info, stamps, strict)
    return info


def _not_a_file(path: Path) -> str:
    if path.is_dir():
        return "a folder"
    return "a link to no file (broken or a loop)" if path.is_symlink() else "not a regular file"


def check_decoded(path: Path, info: VideoInfo, stamps: list[float], strict: bool) -> None:
    """Refuse a decoded video in one line: too few frames, stopped early, a hole mid-stream."""
    n, declared = info.num_frames, info.declared_frames
    if n == 0:
        raise BadData(f"{path}: no frame decodes (corrupt or empty video)")
    if n == 1:
        raise BadData(f"{path}: only one frame decodes; flow needs two")
    if strict and declared > 0 and n < declared - STRICT_SLACK:
        raise BadData(f"{path}: decoded {n} of the {declared} frames its container declares (--strict-frames)")
    allowed = max(SHORT_SECONDS * (info.fps or 30.0), SHORT_SHARE * declared)
    if info.short_by > allowed:
        raise BadData(f"{path}: truncated: the stream stops after {n} of the {declared} frames its container "
                      f"declares")
    frame_ms = 1000.0 / info.fps if info.fps else 0.0
    gaps = np.diff(np.asarray(stamps, float))
    if frame_ms and gaps.size:
        k = int(np.argmax(gaps))
        if gaps[k] > max(GAP_SECONDS * 1000.0, GAP_FRAMES * frame_ms):
            raise BadData(f"{path}: {gaps[k] / 1000:.2f} s of the stream fail to decode after frame {k + 1}")
