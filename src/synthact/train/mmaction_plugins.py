"""Fixes for mmaction2 1.2.0 + mmengine 0.10.7 + mmcv-lite 2.1.0 on torch 2.14, made from our side.

Imported by the generated config (``custom_imports``) and by the engine before mmaction2 is used;
nothing installed is edited.
  * the 1.2.0 wheel lacks ``mmaction.models.localizers.drn`` (mmaction2#2714), so
    ``import mmaction.models`` fails: a stub module stands in for the temporal-grounding model
    that TSN never uses;
  * mmaction2's ``Flip`` inverts whole images at even indices, but ``RawFrameDecode`` stacks x and
    y of a pair into one 2-channel image, so it inverts x *and* y of every other pair:
    ``SynthactFlowFlip`` mirrors every pair and inverts the x channel of each;
  * mmengine's checkpoints pickle numpy scalars and arrays and its ``HistoryBuffer`` logs, whose
    statistics methods are pickled as ``getattr(HistoryBuffer, 'min')``: mmengine's local loader
    is re-registered (its own ``CheckpointLoader.register_scheme`` API) to load every file with
    ``weights_only=True``, admitting those few numpy types, ``HistoryBuffer`` and, in place of
    ``getattr``, a function that hands out only HistoryBuffer's own statistics. Nothing a
    checkpoint holds can run code, not even one planted in a run's ``mmaction2/`` folder.
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

    mod.DRN = DRN   # type: ignore[attr-defined]
    pkg.drn = mod   # type: ignore[attr-defined]
    sys.modules[name], sys.modules[f"{name}.drn"] = pkg, mod


def _history_method(cls, name):
    """Stands in for ``getattr`` while a checkpoint loads: HistoryBuffer's statistics only."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if cls is HistoryBuffer and name in ("min", "max", "mean", "current"):
        return getattr(cls, name)
    raise ValueError(f"getattr({cls!r}, {name!r}) is not a HistoryBuffer statistic")


def checkpoint_globals() -> list:
    """What mmengine 0.10.7's checkpoints pickle besides tensors and plain types (found by
    loading one with ``weights_only=True`` until it loaded)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    from numpy.core import multiarray
    numeric = [type(np.dtype(c)) for c in "?bBhHiIlLqQefdg"]   # never the object dtype
    return [(multiarray.scalar, "numpy.core.multiarray.scalar"),   # type: ignore[attr-defined]
            (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),   # type: ignore[attr-defined]
            (np.ndarray, "numpy.ndarray"),
            (np.dtype, "numpy.dtype"), *numeric, (HistoryBuffer, "mmengine.logging.history_buffer.HistoryBuffer"),
            (_history_method, "builtins.getattr")]


def _register_loader() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint import load_pt

    def load_local(filename, map_location):
        return load_pt(Path(filename).expanduser(), "checkpoint", map_location, checkpoint_globals())

    CheckpointLoader.register_scheme(prefixes="", loader=load_local, force=True)


_stub_drn()
_register_loader()

from mmaction.registry import TRANSFORMS  # noqa: E402
from mmcv.transforms import BaseTransform  # noqa: E402

from .recipe import FLIP_RATIO  # noqa: E402
from .transforms import hflip  # noqa: E402


@TRANSFORMS.register_module()
class SynthactFlowFlip(BaseTransform):
    """Horizontal flip of stacked (H, W, 2) flow images: mirror each, invert its x channel."""

    def __init__(self, flip_ratio: float = FLIP_RATIO):
        self.flip_ratio = flip_ratio

    def transform(self, results: dict) -> dict:
        """Flip the whole clip, or not, by one draw."""
        flip = np.random.rand() < self.flip_ratio
        if flip:  # each image is one (x, y) pair: the x channel is the even one hflip inverts
            results["imgs"] = hflip(results["imgs"], flow=True)
        results["flip"] = flip
        return results
