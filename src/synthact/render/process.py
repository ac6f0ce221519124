"""Process settings for a render worker, beside the scene they tune: Blender's task pool (TBB) and,
without a GPU, Mesa's llvmpipe size their threads to every core of the machine, but a render
worker is one process per core; those threads mostly wait on each other and spin.
:func:`import_bpy` and :func:`lean_process` keep both on the worker's own thread and stop glibc
from mapping and zeroing fresh pages for every frame's buffers. None of this changes a pixel
(``bench/render.py`` measures it against Blender's defaults, ``SYNTHACT_LEAN_RENDER=0``).
"""
from __future__ import annotations

import ctypes
import os
import sys


def _lean() -> bool:
    return os.environ.get("SYNTHACT_LEAN_RENDER", "1") != "0"


def import_bpy():
    """``import bpy`` with this thread allowed one core, then all of them again: Blender sizes its
    task pool (TBB) from the cores the process may use when it loads, and a render worker is one
    process per core. Its second thread took ~11 % of the process's CPU, mostly spinning, and made two
    workers on two cores fight; the frames are the same either way."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    pin = len(cores) > 1 and "bpy" not in sys.modules and _lean()
    if pin:
        os.sched_setaffinity(0, {min(cores)})
    try:
        import bpy
    finally:
        if pin:  # this thread and any that Blender started while loading
            for tid in [0] + [int(t) for t in os.listdir("/proc/self/task")]:
                try:
                    if os.sched_getaffinity(tid) == {min(cores)}:
                        os.sched_setaffinity(tid, cores)
                except OSError:  # a thread that has ended
                    pass
    return bpy


# glibc mallopt parameters: allocations below this come from the heap, and freed heap is kept
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 64 << 20


def lean_process(threads: int) -> None:
    """Process settings for a render worker that uses ``threads`` cores; call before the first render.

    * Mesa's llvmpipe (Workbench's OpenGL where there is no GPU) starts one raster thread per core
      for each process; with one worker per core they only contend. ``LP_NUM_THREADS=0`` draws on
      the calling thread (read when the first GL context is made, i.e. at the first render; a value
      already in the environment wins).
    * Each frame allocates render buffers of ~1.4 MB; glibc serves those with fresh ``mmap`` pages
      that the kernel zeroes every frame. A fixed 64 MB threshold keeps them on the heap.

    ``SYNTHACT_LEAN_RENDER=0`` (set before this module is imported) keeps Blender's, Mesa's and glibc's
    defaults: ``bench/render.py``'s baseline rows.
    """
    if not _lean():
        return
    os.environ.setdefault("LP_NUM_THREADS", "0" if threads <= 1 else str(threads))
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
            libc.mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES)
        except (OSError, AttributeError):  # not glibc: nothing to tune
            pass
