"""Reading and writing a root's files safely: whole or not at all (one fsynced :func:`atomic_write`
that every writer uses), never through a link or FIFO planted in the root, never blocking on one."""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import BadData


def read_regular(path: Path) -> bytes:
    """A file's bytes, opened without blocking: a FIFO, device or folder where a file belongs is an
    ``OSError`` (never waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path, what: str, error: type[Exception] = BadData) -> str:
    """A text input (a split file, a YAML config), or one line naming it: not found, unreadable."""
    try:
        return read_regular(path).decode()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({exc})") from None


_TEMP = re.compile(r"\..+\.[0-9a-f]{16}\.tmp(\.[a-z0-9]+)?")  # atomic_output's temporary names


@contextmanager
def _atomic(path: Path, suffix: str = "") -> Iterator[tuple[Path, int]]:
    """A new temporary file beside ``path`` (and its descriptor) that replaces ``path`` whole once
    the body returns; removed if it raises.

    The file is created exclusively under a fresh name (``O_CREAT|O_EXCL|O_NOFOLLOW``), so a link,
    FIFO or file planted at a temporary name is never written through, and the rename replaces a
    link at ``path`` instead of following it.
    """
    path = Path(path)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp{suffix}")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:
            continue
    try:
        yield tmp, fd
        os.fsync(fd)
        st, now = os.fstat(fd), os.stat(tmp, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
            raise BadData(f"{tmp}: replaced while synthact wrote it; refusing to put it in place of {path}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: Path, suffix: str = "") -> Iterator[Path]:
    """A fresh temporary path for a writer that needs a file name (a video, a plot, a tar), ending
    in ``suffix`` (``.mp4``: the format); it replaces ``path`` whole when the body returns (see
    :func:`atomic_write`)."""
    with _atomic(path, suffix) as (tmp, _):
        yield tmp


def atomic_write(path: Path, data: str | bytes) -> None:
    """``data`` to ``path`` whole or not at all: a reader (or a kill) sees the old file or the new
    one, never a torn one, and nothing is written through a link planted at ``path`` or at a
    temporary name. Every file synthact replaces goes through here."""
    with _atomic(path) as (_, fd):
        view = memoryview(data.encode() if isinstance(data, str) else data)
        while view:
            view = view[os.write(fd, view):]


def remove_stale_temps(folder: Path) -> int:
    """Delete the temporary files of :func:`atomic_write` that killed runs left in ``folder`` (only
    plain files with its names; the lock holder calls this)."""
    n = 0
    for p in Path(folder).iterdir() if Path(folder).is_dir() else ():
        if _TEMP.fullmatch(p.name) and p.is_file() and not p.is_symlink():
            p.unlink()
            n += 1
    return n


def write_json(path: Path, obj: Any, indent: int | None = 1) -> None:
    """Atomically (see :func:`atomic_write`)."""
    atomic_write(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """A JSON file written by :func:`write_json` (or by hand); a torn or invalid one is named."""
    try:
        return json.loads(read_regular(path).decode())
    except FileNotFoundError:
        raise BadData(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadData(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Lines to ``path`` atomically (a reader never sees half a list)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(f"{line}\n" for line in lines))


def _open_append_once(path: Path) -> tuple[int, int]:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symlink; a FIFO nobody reads
            raise BadData(f"{path}: not a plain file (a link or a FIFO); refusing to write through it") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BadData(f"{path}: not a plain file (a FIFO or device); refusing to write through it")
    return fd, st.st_nlink


def open_append(path: Path) -> int:
    """A descriptor appending to ``path`` (a manifest, a log), created if missing. A link or a FIFO
    there is refused; a file hard-linked from elsewhere (a ``cp -al`` copy of the root) is first
    made this folder's own, so the other file never changes."""
    fd, links = _open_append_once(path)
    if links > 1:
        os.close(fd)
        atomic_write(path, read_regular(path))
        fd, _ = _open_append_once(path)
    return fd
