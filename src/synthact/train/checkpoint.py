"""Reading ``.pt`` files a user hands us (``--resume``, ``--init-from``, ``--pretrained FILE``).

They are input like any other: loaded with ``weights_only=True`` (a pickle could run code), and a
truncated, foreign or hostile file is one line naming it, never torch's advice to unpickle it
anyway, nor a traceback from deep inside ``load_state_dict``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..errors import BadConfig, BadData

ARCH_KEYS = ("backbone", "modality", "segments", "num_classes")
RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "history")


def load_pt(path: Path, what: str = "checkpoint", map_location: Any = "cpu", safe: list | tuple = ()) -> Any:
    """``torch.load(weights_only=True)``, admitting only the extra globals ``safe``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no {what} there")
    try:
        with torch.serialization.safe_globals(list(safe)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # any failure to parse the file is the file's fault
        raise BadData(f"{path}: not a readable {what} ({_why(exc)})") from None


def _why(exc: Exception) -> str:
    """torch's reason in a few words, without its advice to load the file unsafely."""
    text = str(exc)
    named = re.search(r"GLOBAL (\S+)", text)
    if named:
        return f"it pickles {named.group(1)}, not only tensors and plain types; refusing to unpickle it"
    if isinstance(exc, EOFError):
        return "empty or cut short"
    detail = text.split("WeightsUnpickler error:")[-1].strip() or type(exc).__name__
    return f"corrupt or not written by torch.save: {detail.splitlines()[0].split('. ')[0][:120]}"


def load_checkpoint(path: Path, cfg, keys: tuple[str, ...] = ("model",)) -> dict:
    """A train-tsn checkpoint with ``keys``, of the same architecture as ``cfg``."""
    ck = load_pt(path)
    missing = [k for k in (*keys, "config") if not isinstance(ck, dict) or k not in ck]
    if missing or not isinstance(ck["config"], dict):
        found = f"keys {sorted(map(str, ck))[:6]}" if isinstance(ck, dict) else f"a {type(ck).__name__}"
        raise BadData(f"{path}: not a train-tsn checkpoint (expected {', '.join((*keys, 'config'))}; found {found})")
    old = ck["config"]
    diff = [f"{k}={old.get(k)!r} (this run {getattr(cfg, k)!r})" for k in ARCH_KEYS if old.get(k) != getattr(cfg, k)]
    if diff:
        raise BadConfig(f"{path}: checkpoint of another architecture: {', '.join(diff)}")
    if "epoch" in keys and not (isinstance(ck["epoch"], int) and isinstance(ck["history"], list)):
        raise BadData(f"{path}: not a train-tsn checkpoint (epoch or history malformed)")
    return ck


def restore(path: Path, target, state: Any, what: str) -> None:
    """``target.load_state_dict(state)``; a state that does not fit is the file's fault."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise BadData(f"{path}: its {what} does not fit this run ({detail})") from None
