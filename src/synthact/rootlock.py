"""One writer per root: an exclusive advisory lock held for a stage's whole run.

Every stage that writes a rawframe root, an ablation folder or a run folder holds ``flock`` on
``<folder>/.synthact.lock`` from before its recovery of staging folders until it exits; the OS
drops the lock when the holder dies, even by ``kill -9``, so a crashed run never blocks the next.
The file also says who holds it (host, pid, command, start time) for the refusal a second writer
gets. Recovery of staging folders is the holder's alone: holding the lock proves nobody else is
writing them, and so are the temporary files a killed holder's atomic writes left in the folder.

The lock file is opened without following a link and must be a regular file of one link, still the
one at its name once locked: a lock planted as a link (even dangling), a hard link or a FIFO is
refused in one line, never written through. :func:`output_folder` adds, for folders a command
fills from scratch (export, compare), a refusal before locking of any folder it did not make.

``flock`` is reliable on local file systems and on NFSv4 and Lustre mounted with locking (Linux
maps it to byte-range locks there); it is not on NFS mounted ``nolock``/``local_lock=none`` or on
some FUSE and SMB mounts, where two hosts can both "hold" it. There use one writer per root
(``--executor ray`` drives every clip from one process) or give each job its own root and
``synthact merge`` them.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .contract import read_json, remove_stale_temps, write_json
from .errors import BadData, RootBusy, warn

LOCK = ".synthact.lock"


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info:  # a lock file written by hand or torn
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} since {info.get('started')} "
            f"({info.get('command')})")


def _check_lock(path: Path, fd: int) -> None:
    """Refuse a lock file that is not this folder's own: a FIFO or device, a file with another
    name elsewhere (a hard link), or one replaced since it was opened."""
    st = os.fstat(fd)
    why = ("not a regular file" if not stat.S_ISREG(st.st_mode) else
           f"a file with {st.st_nlink} links (a hard link to a file elsewhere)" if st.st_nlink != 1 else None)
    if why is None:
        try:
            now = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            why = "replaced while it was opened"
    if why:
        raise BadData(f"{path}: {why}; synthact's lock must be its own plain file, refusing to write "
                      f"through it (remove it)")


def _open_lock(path: Path) -> int:
    """The lock file, opened without following a link (O_NOFOLLOW) or blocking on a FIFO, and
    checked by :func:`_check_lock`: a planted lock never makes the stage write outside its folder."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadData(f"{path}: a symlink where synthact's lock belongs; refusing to write through it "
                          f"(remove it)") from None
        raise
    try:
        _check_lock(path, fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _first_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (what ``mkdir -p`` makes)."""
    top = None
    for p in (folder, *folder.parents):
        if os.path.lexists(p):
            break
        top = p
    return top


def _unmake(folder: Path, top: Path) -> None:
    """Remove the lock and the folders up to ``top`` this run created, where they hold nothing else: a
    run refused before it wrote anything leaves no empty folder behind. Called holding the lock, so
    a waiter finds its lock file gone and refuses (see :func:`_check_lock`) instead of sharing it."""
    if sorted(os.listdir(folder)) != [LOCK]:
        return
    (folder / LOCK).unlink()
    p = folder
    while True:
        try:
            p.rmdir()
        except OSError:  # not empty: someone else's now
            return
        if p == top:
            return
        p = p.parent


@contextmanager
def root_lock(folder: Path, wait: bool = False) -> Iterator[Path]:
    """Hold ``folder``'s lock (the folder is created); refuse with :class:`RootBusy` naming the
    holder, or with ``wait`` block until it is free. A folder this call created is removed again
    when the run fails while it holds nothing but the lock."""
    folder = Path(folder)
    made = _first_missing(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd = _open_lock(path)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise RootBusy(f"{folder}: in use by {holder}; wait for it (--wait) or use another folder") from None
            warn(f"{folder}: waiting for {holder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _check_lock(path, fd)  # still the file we opened: not swapped for a link while we waited
        me = {"host": socket.gethostname(), "pid": os.getpid(), "command": " ".join(sys.argv)[:500],
              "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        remove_stale_temps(folder)  # a killed holder's half-written files: nobody else writes here now
        held = True
        yield path
    except BaseException:
        if held and made is not None:
            _unmake(folder, made)
        raise
    finally:
        os.close(fd)  # releases the lock; the file stays (deleting it would race a waiter)


def _check_output(out: Path, marker: str, plan: dict, match: tuple[str, ...]) -> None:
    if out.exists() and not out.is_dir():
        raise BadData(f"--out {out}: not a folder")
    if not out.exists():
        return
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if not entries:
        return
    if marker not in entries or not stat.S_ISREG((out / marker).lstat().st_mode):
        raise BadData(f"--out {out}: not empty ({entries[0]}) and not made by {plan['made_by']}; use a new folder")
    theirs = read_json(out / marker)
    theirs = theirs if isinstance(theirs, dict) else {}
    diff = [k for k in match if theirs.get(k) != plan[k]]
    if diff:
        raise BadData(f"--out {out}: holds {', '.join(f'{k}={theirs.get(k)}' for k in diff)} ({out / marker}); "
                      f"this run makes " + ", ".join(f"{k}={plan[k]}" for k in diff) + "; use a new folder")


@contextmanager
def output_folder(out: Path, marker: str, plan: dict, match: tuple[str, ...] = ("made_by",),
                  wait: bool = False) -> Iterator[Path]:
    """Hold the lock of an output folder that is new, empty, or says in ``marker`` that it holds what
    this run makes (``plan``'s ``made_by`` and the ``match`` keys): a killed run's output, resumed, or
    the last run's, replaced. Anything else is refused before the folder is touched, so a user's
    folder never gets even a lock file; the check is repeated holding the lock."""
    out = Path(out)
    _check_output(out, marker, plan, match)
    with root_lock(out, wait) as lock:
        _check_output(out, marker, plan, match)
        write_json(out / marker, plan)
        yield lock
