"""Fixes for mmaction2 1.2.0 + mmengine 0.10.7 + mmcv-lite 2.1.0 on torch 2.14, made from our side.

Imported by the generated config (``custom_imports``) and by the engine before mmaction2 is used;
nothing installed is edited.
  * the 1.2.0 wheel lacks ``mmaction.models.localizers.drn`` (mmaction2#2714), so
    ``import mmaction.models`` fails: a stub module stands in for the temporal-grounding model
    that TSN never uses;
  * mmaction2's ``Flip`` inverts whole images at even indices, but ``RawFrameDecode`` stacks x and
    y of a pair into one 2-channel image, so it inverts x *and* y of every other pair:
    ``SynthactFlowFlip`` mirrors every pair and inverts the x channel of each;
  * torch >= 2.6 loads with ``weights_only=True`` and mmengine's resume checkpoints pickle
    objects (even ``getattr``) that no allow-list should admit: mmengine's local checkpoint loader
    is re-registered (its own ``CheckpointLoader.register_scheme`` API) to load full pickles only
    from the work folders of our own runs (:func:`trust`), and weights-only everywhere else.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np


def _stub_drn() -> None:
    name = "mmaction.models.localizers.drn"
    if name in sys.modules:
        return
    pkg = types.ModuleType(name)
    pkg.__path__ = []
    mod = types.ModuleType(f"{name}.drn")

    class DRN:  # noqa: D401  stand-in; building it is an error
        def __init__(self, *args, **kwargs):
            raise ImportError("DRN is missing from the mmaction2 1.2.0 wheel (mmaction2#2714)")

    mod.DRN = DRN
    pkg.drn = mod
    sys.modules[name], sys.modules[f"{name}.drn"] = pkg, mod


_TRUSTED: list[Path] = []


def trust(folder: Path) -> None:
    """Checkpoints under ``folder`` were written by this run: resume may unpickle them fully."""
    _TRUSTED.append(Path(folder).resolve())


def _register_loader() -> None:
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_local(filename, map_location):
        path = Path(filename).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{filename} can not be found.")
        ours = any(path.is_relative_to(folder) for folder in _TRUSTED)
        return torch.load(path, map_location=map_location, weights_only=not ours)

    CheckpointLoader.register_scheme(prefixes="", loader=load_local, force=True)


_stub_drn()
_register_loader()

from mmaction.registry import TRANSFORMS  # noqa: E402
from mmcv.transforms import BaseTransform  # noqa: E402


@TRANSFORMS.register_module()
class SynthactFlowFlip(BaseTransform):
    """Horizontal flip of stacked (H, W, 2) flow images: mirror each, invert its x channel."""

    def __init__(self, flip_ratio: float = 0.5):
        self.flip_ratio = flip_ratio

    def transform(self, results: dict) -> dict:
        flip = np.random.rand() < self.flip_ratio
        if flip:
            imgs = []
            for img in results["imgs"]:
                f = np.ascontiguousarray(img[:, ::-1])
                f[..., 0] = 255 - f[..., 0]
                imgs.append(f)
            results["imgs"] = imgs
        results["flip"] = flip
        return results
