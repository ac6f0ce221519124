"""The processes that encode and write ``--method tvl1-torch``'s flow images, started once and kept.

They are started once per process and kept across calls (a Ray worker calls ``run_torch_flow`` once
per group of clips), spawned so that they are safe beside CUDA, and they never import torch, so
starting them is cheap and overlaps the first reads. A pool broken by a dead writer is dropped and
the next call starts a fresh one.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

WRITERS = max(4, (os.cpu_count() or 4) - 2)  # JPEG encoding is the CPU's share of the work

_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _warm() -> int:
    return os.getpid()


def writer_pool() -> ProcessPoolExecutor:
    """This process's writer processes, started on first use and kept (spawned: safe with CUDA).
    Each gets a no-op task at once so all of them start while the first clips are read."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ProcessPoolExecutor(WRITERS, mp_context=multiprocessing.get_context("spawn"))
            for _ in range(WRITERS):
                _POOL.submit(_warm)
        return _POOL


def drop_pool(pool: ProcessPoolExecutor) -> None:
    """Forget a broken pool (a writer died): the next call starts a fresh one."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is pool:
            _POOL = None
    pool.shutdown(wait=False, cancel_futures=True)


@atexit.register
def _shutdown_pool() -> None:
    if _POOL is not None:
        _POOL.shutdown(wait=True)
