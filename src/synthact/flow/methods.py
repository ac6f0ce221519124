"""OpenCV optical flow methods, each a ``(prev_gray, next_gray) -> (H, W, 2) float32`` callable.

``tvl1`` is OpenCV's DualTVL1 with its defaults: what TSN (denseflow) and mmaction2 used.
``tvl1-fast`` keeps TV-L1 with fewer scales, warps and iterations (~3.6x less CPU, the same
recovery inside texture-less silhouettes, see BENCHMARKS.md). ``dis`` is DIS at its medium preset,
``farneback`` uses mmaction2's parameters. ``tvl1-torch`` is the ``tvl1`` algorithm and parameters
rewritten in PyTorch (``tvl1_torch``), batched on CUDA or CPU; ``extract-flow`` runs it batched.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from ..errors import BadConfig, MissingDependency

# what DualTVL1OpticalFlow_create() uses when given nothing (recorded in flow.json, never passed)
OPENCV_TVL1_DEFAULTS = {"tau": 0.25, "lambda": 0.15, "theta": 0.3, "nscales": 5, "warps": 5, "epsilon": 0.01,
                        "scaleStep": 0.8, "innerIterations": 30, "outerIterations": 10, "medianFiltering": 5}
METHODS: dict[str, dict] = {
    "tvl1": {"opencv": "cv2.optflow.DualTVL1OpticalFlow_create", "params": OPENCV_TVL1_DEFAULTS},
    "tvl1-fast": {"opencv": "cv2.optflow.DualTVL1OpticalFlow_create",
                  "params": {"nscales": 4, "scaleStep": 0.5, "warps": 2, "outerIterations": 2, "innerIterations": 10}},
    "tvl1-torch": {"opencv": "synthact.flow.tvl1_torch: cv2.optflow.DualTVL1OpticalFlow in PyTorch",
                   "params": OPENCV_TVL1_DEFAULTS},
    "dis": {"opencv": "cv2.DISOpticalFlow_create", "params": {"preset": "DISOPTICAL_FLOW_PRESET_MEDIUM"}},
    "farneback": {"opencv": "cv2.calcOpticalFlowFarneback",
                  "params": {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5,
                             "poly_sigma": 1.2, "flags": 0}},
}


# the per-pair OpenCV methods (``prepare --flow``, bench/flow.py); tvl1-torch runs batched
OPENCV_METHODS = ("tvl1", "tvl1-fast", "dis", "farneback")


def check_method(name: str) -> None:
    """Refuse a flow method name this package does not know."""
    if name not in METHODS:
        raise BadConfig(f"unknown flow method {name!r}: choose from {', '.join(METHODS)}")


def make_flow(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A flow function for ``name``; builds the OpenCV object once (it is reused per pair)."""
    check_method(name)
    if name == "tvl1-torch":
        import torch

        from .tvl1_torch import tvl1 as tvl1_torch
        return lambda a, b: tvl1_torch(torch.from_numpy(a)[None], torch.from_numpy(b)[None])[0].numpy()
    if name in ("tvl1", "tvl1-fast"):
        if not hasattr(cv2, "optflow"):
            raise MissingDependency("TV-L1 needs cv2.optflow from opencv-contrib-python-headless; another "
                               "OpenCV wheel shadows it (pip list | grep opencv)")
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        if name == "tvl1-fast":
            p = METHODS[name]["params"]
            tvl1.setScalesNumber(p["nscales"])
            tvl1.setScaleStep(p["scaleStep"])
            tvl1.setWarpingsNumber(p["warps"])
            tvl1.setOuterIterations(p["outerIterations"])
            tvl1.setInnerIterations(p["innerIterations"])
        return lambda a, b: tvl1.calc(a, b, None)
    if name == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    p = METHODS["farneback"]["params"]
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, p["pyr_scale"], p["levels"], p["winsize"],
                                                     p["iterations"], p["poly_n"], p["poly_sigma"], p["flags"])
