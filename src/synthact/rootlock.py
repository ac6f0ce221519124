"""One writer per root: an exclusive advisory lock held for a stage's whole run.

Every stage that writes a rawframe root, an ablation folder or a run folder holds ``flock`` on
``<folder>/.synthact.lock`` from before its recovery of staging folders until it exits; the OS
drops the lock when the holder dies, even by ``kill -9``, so a crashed run never blocks the next.
The file also says who holds it (host, pid, command, start time) for the refusal a second writer
gets. Recovery of staging folders is the holder's alone: holding the lock proves nobody else is
writing them.

``flock`` is reliable on local file systems and on NFSv4 and Lustre mounted with locking (Linux
maps it to byte-range locks there); it is not on NFS mounted ``nolock``/``local_lock=none`` or on
some FUSE and SMB mounts, where two hosts can both "hold" it. There use one writer per root
(``--executor ray`` drives every clip from one process) or give each job its own root and
``synthact merge`` them.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import RootBusy, warn

LOCK = ".synthact.lock"


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} since {info.get('started')} "
            f"({info.get('command')})")


@contextmanager
def root_lock(folder: Path, wait: bool = False) -> Iterator[Path]:
    """Hold ``folder``'s lock (the folder is created); refuse with :class:`RootBusy` naming the
    holder, or with ``wait`` block until it is free."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise RootBusy(f"{folder}: in use by {holder}; wait for it (--wait) or use another folder") from None
            warn(f"{folder}: waiting for {holder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "command": " ".join(sys.argv)[:500],
              "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock; the file stays (deleting it would race a waiter)
