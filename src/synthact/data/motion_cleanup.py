"""A pose track from a video made into clean captures (numpy only).

The estimator (:mod:`.pose_video`) gives, per frame, 33 BlazePose landmarks: metric positions
centred on the hips (x right, y down, z away from the camera), image positions in pixels and a
visibility score; a frame without a person is NaN. Each step below is recorded in the segment's
``steps``, and a segment that is dropped says why:

1. One person: the estimator tracks one person from frame to frame; a jump of the hip centre by
   more than :data:`SWITCH` torso lengths between frames is taken as a switch to someone else and
   cuts the track there.
2. Gaps: runs of at most :data:`MAX_GAP` seconds without a person are filled by linear
   interpolation; longer gaps split the track into segments.
3. Smoothing: a Savitzky-Golay filter (a local quadratic fit, centred, so no lag).
4. Bone lengths: each bone keeps its median length over the segment (:mod:`.capture_bvh` writes
   the capture on those lengths, bone directions from the track).
5. Root travel: the landmarks are hip-centred, so the travel is estimated from the image: the
   hip centre's pixel track and the body's apparent size (pixels per metre, fitted per frame),
   with an assumed field of view and a still camera. Recorded as an estimate.
6. Upper body: where the legs are seen (knees and ankles inside the picture, their visibility
   :data:`LEGS_SEEN` or more) in fewer than half of the frames (HMDB-51 calls 31 % of its shots
   upper body), the estimator's leg guesses are replaced by a neutral stance, the root
   stays in place, and the capture is marked ``upper``.
7. Drops: a segment shorter than :data:`MIN_SECONDS` or whose landmarks are seen less than
   :data:`MIN_VISIBILITY` on average is dropped, with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# BlazePose landmark indices
NOSE, EYE_L, EYE_R, EAR_L, EAR_R, MOUTH_L, MOUTH_R = 0, 2, 5, 7, 8, 9, 10
SHOULDER_L, SHOULDER_R, ELBOW_L, ELBOW_R, WRIST_L, WRIST_R = 11, 12, 13, 14, 15, 16
PINKY_L, PINKY_R, INDEX_L, INDEX_R = 17, 18, 19, 20
HIP_L, HIP_R, KNEE_L, KNEE_R, ANKLE_L, ANKLE_R, TOE_L, TOE_R = 23, 24, 25, 26, 27, 28, 31, 32
LANDMARKS = 33
CORE = (SHOULDER_L, SHOULDER_R, HIP_L, HIP_R)
LEGS = (KNEE_L, KNEE_R, ANKLE_L, ANKLE_R)
UPPER = (NOSE, SHOULDER_L, SHOULDER_R, ELBOW_L, ELBOW_R, WRIST_L, WRIST_R)
LIMBS = UPPER + (HIP_L, HIP_R) + LEGS

SEEN = 0.5            # a landmark with this visibility or more is seen
LEGS_SEEN = 0.35      # legs inside the picture with this mean visibility are seen (the estimator is shy of legs)
MAX_GAP = 0.25        # seconds of missing person filled by interpolation; longer gaps split
SWITCH = 1.0          # hip jump between frames, in torso lengths, taken as another person
MIN_SECONDS = 0.5     # shorter segments are dropped
MIN_VISIBILITY = 0.5  # mean visibility of the landmarks used, below which a segment is dropped
SMOOTH = 0.2          # seconds: the Savitzky-Golay window of the pose
SMOOTH_TRAVEL = 0.5   # and of the root's travel (the apparent size is noisier)
FOV = 60.0            # degrees, the assumed horizontal field of view of the camera


@dataclass
class Track:
    """A video's pose track: ``world`` (F, 33, 3) metres hip-centred (x right, y down, z away),
    ``image`` (F, 33, 2) pixels, ``visibility`` (F, 33); NaN (visibility 0) without a person."""

    world: np.ndarray
    image: np.ndarray
    visibility: np.ndarray
    fps: float
    size: tuple[int, int]   # (width, height) of the video

    @property
    def found(self) -> np.ndarray:
        """(F,) frames where the estimator found a person."""
        return np.isfinite(self.world).all(axis=(1, 2))


@dataclass
class Segment:
    """A run of frames of one person: [start, end) video frames, what was done to it, and either
    its cleaned body (``points``: key point -> (N, 3) metres, Y up, facing the camera +Z) or why
    it was dropped."""

    start: int
    end: int
    filled: int = 0                       # frames interpolated
    body: str = "full"                    # full | upper
    quality: float = 0.0                  # mean visibility of the landmarks used x share not filled
    visibility: float = 0.0
    dropped: str | None = None            # why, for a dropped segment
    points: dict = field(default_factory=dict)
    travel: np.ndarray | None = None      # (N, 3) estimated root travel, metres
    steps: list = field(default_factory=list)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def split_track(present: np.ndarray, max_gap: int, breaks=()) -> list[tuple[int, int]]:
    """[start, end) segments of ``present`` frames: gaps of at most ``max_gap`` frames are bridged,
    longer ones split, and so does a frame listed in ``breaks`` (a switch of person)."""
    cut = sorted(int(c) for c in breaks)
    pieces: list[tuple[int, int]] = []
    for a, b in runs(present):
        edges = [a] + [c for c in cut if a < c < b] + [b]
        pieces += zip(edges[:-1], edges[1:], strict=True)
    out: list[list[int]] = []
    for a, b in pieces:
        if out and a - out[-1][1] <= max_gap and not any(out[-1][1] <= c <= a for c in cut):
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def interpolate(x: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``x`` (N, ...) with the frames not ``present`` linearly interpolated from their neighbours
    (held at the ends)."""
    t = np.flatnonzero(present)
    flat = x.reshape(len(x), -1)
    out = np.empty_like(flat, dtype=float)
    for c in range(flat.shape[1]):
        out[:, c] = np.interp(np.arange(len(x)), t, flat[t, c])
    return out.reshape(x.shape)


def savgol(x: np.ndarray, window: int, order: int = 2) -> np.ndarray:
    """A Savitzky-Golay filter along axis 0: each frame replaced by a least-squares polynomial of
    ``order`` fitted over the centred ``window`` (odd); the ends are padded by point reflection,
    which keeps a linear trend, so neither end lags."""
    n = len(x)
    window = min(window, n if n % 2 else n - 1)
    if window <= order:
        return np.array(x, float)
    h = window // 2
    k = np.arange(-h, h + 1)
    coef = np.linalg.pinv(np.vander(k, order + 1, increasing=True))[0]  # the fit's value at 0
    pad_lo = 2 * x[:1] - x[h:0:-1]
    pad_hi = 2 * x[-1:] - x[-2:-h - 2:-1]
    xp = np.concatenate([pad_lo, x, pad_hi])
    return sum(c * xp[i:i + n] for i, c in enumerate(coef))


def odd(seconds: float, fps: float, least: int = 3) -> int:
    """An odd frame count covering ``seconds``."""
    n = max(least, int(round(seconds * fps)))
    return n + 1 - n % 2


def key_points(world: np.ndarray) -> dict[str, np.ndarray]:
    """Key points (the names of :mod:`synthact.render.keypoints`) from landmarks (..., 33, 3) in the
    estimator's axes, turned to Y up with the camera at +Z (a proper rotation: x, -y, -z)."""
    w = world * np.array([1.0, -1.0, -1.0])
    mid = lambda a, b: (w[..., a, :] + w[..., b, :]) / 2  # noqa: E731
    hips, neck = mid(HIP_L, HIP_R), mid(SHOULDER_L, SHOULDER_R)
    head = mid(EAR_L, EAR_R)
    face_up = mid(EYE_L, EYE_R) - mid(MOUTH_L, MOUTH_R)
    face_up /= np.maximum(np.linalg.norm(face_up, axis=-1, keepdims=True), 1e-9)
    k = {"hips": hips, "spine_low": hips + (neck - hips) / 3, "spine_mid": hips + 2 * (neck - hips) / 3,
         "neck": neck, "head": head, "head_top": head + 0.12 * face_up}
    for s, (sh, el, wr, pk, ix, hp, kn, an, to) in {
            "l": (SHOULDER_L, ELBOW_L, WRIST_L, PINKY_L, INDEX_L, HIP_L, KNEE_L, ANKLE_L, TOE_L),
            "r": (SHOULDER_R, ELBOW_R, WRIST_R, PINKY_R, INDEX_R, HIP_R, KNEE_R, ANKLE_R, TOE_R)}.items():
        k.update({f"shoulder.{s}": w[..., sh, :], f"elbow.{s}": w[..., el, :], f"wrist.{s}": w[..., wr, :],
                  f"hand_tip.{s}": mid(pk, ix), f"hip.{s}": w[..., hp, :], f"knee.{s}": w[..., kn, :],
                  f"ankle.{s}": w[..., an, :], f"toe.{s}": w[..., to, :]})
    return k


def neutral_legs(k: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Legs standing straight under the hips, feet forward, sized from the torso (thigh and
    shin each 0.85 of hip-centre to shoulder-centre): the upper-body policy."""
    torso = float(np.median(np.linalg.norm(k["neck"] - k["hips"], axis=-1)))
    down, fwd = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    out = dict(k)
    for s in "lr":
        hip = k[f"hip.{s}"]
        out[f"knee.{s}"] = hip + 0.85 * torso * down
        out[f"ankle.{s}"] = hip + 1.7 * torso * down
        out[f"toe.{s}"] = out[f"ankle.{s}"] + 0.25 * torso * fwd + 0.1 * torso * down
    return out


def legs_in_view(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N,) frames whose knees and ankles all lie inside the picture."""
    xy = image[:, list(LEGS)]
    with np.errstate(invalid="ignore"):
        return ((xy >= 0) & (xy < np.array(size))).all(axis=(1, 2))


def body_scale(image: np.ndarray, world: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """(N,) pixels per metre of each frame: the least-squares scale from the seen landmarks' metric
    x, y (hip-centred) to their pixel positions about the image hip centre."""
    seen = (visibility >= SEEN).astype(float)
    seen[:, list(CORE)] = 1.0   # the torso always counts: it carries the scale
    img = image - (image[:, HIP_L] + image[:, HIP_R])[:, None] / 2
    w = world[..., :2]
    num = np.sum(seen[..., None] * img * w, axis=(1, 2))
    den = np.sum(seen[..., None] * w * w, axis=(1, 2))
    return num / np.maximum(den, 1e-9)


def root_travel(image: np.ndarray, world: np.ndarray, visibility: np.ndarray, size: tuple[int, int],
                fps: float) -> np.ndarray:
    """(N, 3) the root's travel in metres (x right, y up, z towards the camera), from the first
    frame: the image hip centre back-projected at the depth its apparent size gives, for a still
    pinhole camera of :data:`FOV` degrees across."""
    w, h = size
    focal = w / (2 * np.tan(np.radians(FOV) / 2))
    s = np.exp(savgol(np.log(np.maximum(body_scale(image, world, visibility), 1e-3)), odd(SMOOTH_TRAVEL, fps)))
    hip = savgol((image[:, HIP_L] + image[:, HIP_R]) / 2, odd(SMOOTH_TRAVEL, fps))
    depth = focal / s
    pos = np.stack([(hip[:, 0] - w / 2) / s, -(hip[:, 1] - h / 2) / s, -depth], axis=-1)
    return pos - pos[:1]


def switches(track: Track) -> list[int]:
    """Frames where the hip centre jumps by more than :data:`SWITCH` torso lengths from the frame
    before (both with a person): another person taken for the tracked one."""
    idx = np.flatnonzero(track.found)   # across a gap too: from the last frame with a person
    img = track.image[idx]
    hip = (img[:, HIP_L] + img[:, HIP_R]) / 2
    torso = np.linalg.norm((img[:, SHOULDER_L] + img[:, SHOULDER_R]) / 2 - hip, axis=-1)
    jump = np.linalg.norm(np.diff(hip, axis=0), axis=-1)
    return idx[1:][jump > SWITCH * np.maximum(torso[1:], torso[:-1])].tolist()


def clean(track: Track) -> list[Segment]:
    """The segments of a track, each cleaned (see the module doc) or marked dropped with why."""
    fps = track.fps
    seen_core = np.nan_to_num(track.visibility[:, list(CORE)]).mean(axis=1) >= SEEN
    present = track.found & seen_core
    max_gap = max(1, int(round(MAX_GAP * fps)))
    cuts = switches(track)
    out = []
    for a, b in split_track(present, max_gap, cuts):
        seg = Segment(a, b)
        here = present[a:b]
        seg.filled = int((~here).sum())
        seg.steps.append(f"one person: frames {a}-{b - 1}" + (f", cut at a switch (frame {a})" if a in cuts else ""))
        if seg.filled:
            seg.steps.append(f"gaps filled: {seg.filled} frame(s) interpolated (gaps up to {max_gap})")
        if b - a < MIN_SECONDS * fps:
            seg.dropped = f"too short ({b - a} frames, {(b - a) / fps:.2f} s < {MIN_SECONDS} s)"
            out.append(seg)
            continue
        vis = np.where(here[:, None], np.nan_to_num(track.visibility[a:b]), 0.0)
        legs_seen = (legs_in_view(track.image[a:b], track.size) & (vis[:, list(LEGS)].mean(axis=1) >= LEGS_SEEN)).mean()
        seg.body = "full" if legs_seen >= 0.5 else "upper"
        used = list(LIMBS if seg.body == "full" else UPPER)
        seg.visibility = round(float(vis[:, used].mean()), 4)
        seg.quality = round(seg.visibility * (1 - seg.filled / (b - a)), 4)
        if seg.visibility < MIN_VISIBILITY:
            seg.dropped = f"low visibility ({seg.visibility:.2f} < {MIN_VISIBILITY})"
            out.append(seg)
            continue
        raw = interpolate(track.world[a:b], here)
        image = interpolate(track.image[a:b], here)
        window = odd(SMOOTH, fps)
        world = savgol(raw, window)
        seg.steps.append(f"smoothed: Savitzky-Golay, order 2, {window} frames")
        k = key_points(world)
        if seg.body == "upper":
            k = neutral_legs(k)
            seg.travel = np.zeros((b - a, 3))
            seg.steps.append(f"upper body: legs seen in {legs_seen:.0%} of frames, so held in a neutral stance; "
                             f"root in place")
        else:
            seg.travel = root_travel(image, raw, vis, track.size, fps)
            seg.steps.append(f"root travel estimated from the image hip track and apparent size "
                             f"(still camera, {FOV:.0f} degree field of view assumed)")
        seg.points = k
        seg.steps.append("bone lengths: each bone's median over the segment")
        out.append(seg)
    if not out:   # nothing to split: say why the whole video gives nothing
        found = np.flatnonzero(track.found)
        if not len(found):
            return [Segment(0, len(present), dropped="no person found")]
        return [Segment(int(found[0]), int(found[-1]) + 1,
                        dropped=f"torso not seen (shoulders and hips under {SEEN} visibility in every frame)")]
    return out
