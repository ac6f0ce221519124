"""Counters of the TV-L1 solvers' work, off unless a benchmark turns them on.

``bench/flow_torch.py``'s bandwidth figure sets :data:`COUNTERS` to a dict: pixel-iterations of the
inner step and of the median actually executed (pairs still iterating x pixels), and on the plain
torch path the wall seconds of its inner steps and medians. Both solvers (``tvl1_torch``,
``tvl1_triton``) count here, so neither imports the other for it.
"""
from __future__ import annotations

COUNTERS: dict | None = None


def counting() -> bool:
    """Whether a benchmark asked for the counts."""
    return COUNTERS is not None


def count(key: str, value: float) -> None:
    """Add to ``COUNTERS[key]`` when counting is on."""
    if COUNTERS is not None:
        COUNTERS[key] = COUNTERS.get(key, 0) + value
