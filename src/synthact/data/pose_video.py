"""3D human pose from a video, frame by frame: MediaPipe Pose (BlazePose GHUM, the "full" model).

The mediapipe wheel ships its models (``pose_landmark_full.tflite``, ``pose_detection.tflite``),
so nothing is downloaded. Its legacy ``solutions.pose`` graph detects one person and then tracks
that person's region from frame to frame, re-detecting when it loses them. Its own landmark
smoothing is off: :mod:`.motion_cleanup` smooths without lag and records it.
"""
from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from ..errors import BadData, MissingDependency
from .motion_cleanup import LANDMARKS, Track

ESTIMATOR = "mediapipe Pose (BlazePose GHUM full, model_complexity 1)"
INSTALL = ("pip install -c constraints.txt --no-deps mediapipe==0.10.21 absl-py attrs flatbuffers protobuf "
           "matplotlib (make install does)")


@contextmanager
def _quiet_stderr():
    """mediapipe's C++ side prints notices on the C stream (XNNPACK, absl, and with protobuf 6 a
    harmless ``GetPrototype`` line at import): keep them off the user's terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def mediapipe_pose():
    """The mediapipe ``solutions.pose`` module; a one-line :class:`MissingDependency` without it."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        with _quiet_stderr():
            from mediapipe.python.solutions import pose
    except ImportError as exc:
        raise MissingDependency(f"motions extract needs mediapipe, which is not installed here ({exc}): "
                                f"{INSTALL}") from None
    return pose


def estimator_version() -> str:
    """The estimator and its version, for the library's record."""
    from importlib.metadata import version
    return f"{ESTIMATOR}, mediapipe {version('mediapipe')}"


def estimate(video: Path) -> Track:
    """The pose track of every frame of ``video`` (see :class:`~.motion_cleanup.Track`); a file
    OpenCV cannot read, or with no frames, is a one-line :class:`BadData`."""
    pose = mediapipe_pose()
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise BadData(f"{video}: cannot open the video")
    fps = cap.get(cv2.CAP_PROP_FPS)
    world: list = []   # per frame: landmarks, or NaN where none were found
    image: list = []
    vis: list = []
    size = (0, 0)
    with warnings.catch_warnings():   # protobuf 6 deprecates the FieldDescriptor.label it reads
        warnings.simplefilter("ignore", DeprecationWarning)
        est = pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=False, enable_segmentation=False)
    try:
        with _quiet_stderr(), est:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                h, w = frame.shape[:2]
                size = (w, h)
                r = est.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if r.pose_world_landmarks is None or r.pose_landmarks is None:
                    world.append(np.full((LANDMARKS, 3), np.nan))
                    image.append(np.full((LANDMARKS, 2), np.nan))
                    vis.append(np.zeros(LANDMARKS))
                    continue
                world.append([(p.x, p.y, p.z) for p in r.pose_world_landmarks.landmark])
                image.append([(p.x * w, p.y * h) for p in r.pose_landmarks.landmark])
                vis.append([p.visibility for p in r.pose_landmarks.landmark])
    finally:
        cap.release()
    if not world:
        raise BadData(f"{video}: no frames could be read")
    if not (np.isfinite(fps) and 1.0 <= fps <= 1000.0):
        fps = 30.0   # a container without a usable rate: HMDB-51 and UCF-101 are 30 and 25
    return Track(np.array(world, float), np.array(image, float), np.array(vis, float), float(fps), size)
