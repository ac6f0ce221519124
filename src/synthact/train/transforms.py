"""Group transforms: one random draw applied to every image of a clip (after tsn-pytorch).

Images are numpy HxWxC uint8 (RGB: 3 channels; flow: 2 channels, x then y). All randomness comes
from the ``rng`` passed in, so a sample is a pure function of (seed, epoch, index) and a resumed
run sees the same augmentations.
"""
from __future__ import annotations

import cv2
import numpy as np

from .recipe import CROP_SCALES, FLIP_RATIO


def multiscale_crop(group: list[np.ndarray], size: int, rng: np.random.Generator, max_distort: int = 1) -> list:
    """TSN's GroupMultiScaleCrop: crop sides from scales of the short side, at 13 fixed places."""
    h, w = group[0].shape[:2]
    base = min(h, w)
    sizes = [int(base * s) for s in CROP_SCALES]
    sizes = [size if abs(s - size) < 3 else s for s in sizes]
    pairs = [(cw, ch) for i, ch in enumerate(sizes) for j, cw in enumerate(sizes) if abs(i - j) <= max_distort]
    cw, ch = pairs[rng.integers(len(pairs))]
    sx, sy = (w - cw) // 4, (h - ch) // 4
    offsets = [(0, 0), (4 * sx, 0), (0, 4 * sy), (4 * sx, 4 * sy), (2 * sx, 2 * sy), (0, 2 * sy), (4 * sx, 2 * sy),
               (2 * sx, 4 * sy), (2 * sx, 0), (sx, sy), (3 * sx, sy), (sx, 3 * sy), (3 * sx, 3 * sy)]
    x, y = offsets[rng.integers(len(offsets))]
    return [cv2.resize(img[y:y + ch, x:x + cw], (size, size), interpolation=cv2.INTER_LINEAR).reshape(size, size, -1)
            for img in group]


def hflip(group: list[np.ndarray], flow: bool) -> list[np.ndarray]:
    """Mirror every image; mirrored motion points the other way, so every flow-x channel (the
    even channels of a stacked x, y, x, y... snippet) becomes 255 - x and flow-y stays."""
    out = []
    for img in group:
        f = np.ascontiguousarray(img[:, ::-1])
        if flow:
            f[..., 0::2] = 255 - f[..., 0::2]
        out.append(f)
    return out


def resize_short(group: list[np.ndarray], short: int) -> list[np.ndarray]:
    """Resize every image so that its short side is ``short``."""
    h, w = group[0].shape[:2]
    if min(h, w) == short:
        return group
    s = short / min(h, w)
    size = (round(w * s), round(h * s))
    return [cv2.resize(img, size, interpolation=cv2.INTER_LINEAR).reshape(size[1], size[0], -1) for img in group]


def crop(group: list[np.ndarray], x: int, y: int, size: int) -> list[np.ndarray]:
    """The same ``size`` square of every image, at (x, y)."""
    return [img[y:y + size, x:x + size] for img in group]


def centre_crop(group: list[np.ndarray], size: int) -> list[np.ndarray]:
    """The centre ``size`` square of every image."""
    h, w = group[0].shape[:2]
    return crop(group, (w - size) // 2, (h - size) // 2, size)


def ten_crops(group: list[np.ndarray], size: int, flow: bool) -> list[list[np.ndarray]]:
    """TSN test protocol: four corners and the centre, each also mirrored."""
    h, w = group[0].shape[:2]
    places = [(0, 0), (w - size, 0), (0, h - size), (w - size, h - size), ((w - size) // 2, (h - size) // 2)]
    five = [crop(group, x, y, size) for x, y in places]
    return five + [hflip(g, flow) for g in five]


def train_preset(group: list[np.ndarray], size: int, flow: bool, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Multi-scale crop and a random flip (training)."""
    assert rng is not None   # training draws its crops and flips; evaluation takes none
    group = multiscale_crop(group, size, rng)
    return hflip(group, flow) if rng.random() < FLIP_RATIO else group


def val_preset(group: list[np.ndarray], size: int, flow: bool, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Resize and centre crop (validation)."""
    return centre_crop(resize_short(group, size * 256 // 224), size)


def test_preset(group: list[np.ndarray], size: int, flow: bool, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Resize and ten crops (TSN's test protocol)."""
    return [img for crops in ten_crops(resize_short(group, size * 256 // 224), size, flow) for img in crops]


# the recipes as data (torchvision's presets): the loop only names one
PRESETS = {"train": train_preset, "val": val_preset, "test": test_preset}
