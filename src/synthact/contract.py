"""The one data contract that joins the stages.

A rawframe root holds ``rawframes/<class>/<clip>/img_00001.jpg`` (1-based RGB frames) and, once
flow exists, ``flow_x_00001.jpg`` / ``flow_y_00001.jpg`` where flow k is frame k -> k+1, encoded
as TSN did: clip to +-bound, ``round(255*(v+bound)/(2*bound))``, one grayscale JPEG per component.
Beside it lie ``manifest.jsonl`` (one JSON line per finished clip), ``classes.txt`` and
mmaction2-style annotation lists ``<class>/<clip> <num_frames> <label>``.
Every stage reads and writes through this module, nothing else.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import shutil
import stat
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from .errors import BadConfig, BadData, warn
from .provenance import differences, versions

RAWFRAMES = "rawframes"
MANIFEST = "manifest.jsonl"
CLASSES = "classes.txt"
ANNOTATIONS = "annotations"
FLOW_BOUND = 20.0
JPEG_QUALITY = 95
FLOW_INFO = "flow.json"          # how the flow of a root was made; one method per root
FLOW_MANIFEST = "flow.jsonl"     # one line per clip whose flow is complete
ROOT_SETTINGS = "root.json"      # the settings every clip of a root shares, recorded once
SYNTHETIC_LIST = "synthetic_rawframes.txt"  # a rendered root's annotation list, under annotations/
MISSING = "missing.txt"          # videos a split lists but the disk lacks (prepare)
FAILURES = "failures.txt"        # items of the last run that failed, one line each
PREVIEW = "preview.png"          # a contact sheet of a few clips, for looking
FLOW_ENCODING = ("clip to +-bound, round(255*(v+bound)/(2*bound)), one grayscale JPEG per component "
                 f"(quality {JPEG_QUALITY}); flow_x/flow_y_k is frame k -> k+1, 1-based")
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"
_PENDING_PREFIX = ".pending-"    # a committed clip's record, until its manifest line is written

ContractError = BadData  # the name the stages have always raised

# Class and clip names become folder names and list entries: printable ASCII without separators,
# quotes, shell or glob characters, or white space (lists are space-separated). Every real
# UCF-101 and HMDB-51 name fits (HMDB's use ! # & ( ) + ; @ [ ] ~).
_NAME = re.compile(r"[A-Za-z0-9_!#&()+;@\[\]~,=%-][A-Za-z0-9_.!#&()+;@\[\]~,=%-]{0,199}")


def check_name(name: Any, what: str, where: Any) -> str:
    """A class or clip name safe to use as one folder name; ``where`` (file:line, option) is blamed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadData(f"{where}: bad {what} name {name!r}: use letters, digits and _-.+!#&()@;[]~,=% "
                      f"(no '/', '..', leading '.', spaces or quotes)")
    return name


def check_clip_id(clip_id: Any, where: Any) -> str:
    """``<class>/<clip>``, each part a safe name: never absolute, never climbing out of its root."""
    parts = clip_id.split("/") if isinstance(clip_id, str) else []
    if len(parts) != 2:
        raise BadData(f"{where}: bad clip {clip_id!r}: expected '<class>/<clip>'")
    check_name(parts[0], "class", where)
    check_name(parts[1], "clip", where)
    return clip_id


def check_relpath(path: Any, where: Any) -> str:
    """A frame folder of an annotation list: relative, each part a safe name (mmaction2's lists
    allow ``<clip>`` or deeper than ``<class>/<clip>``)."""
    parts = path.split("/") if isinstance(path, str) else []
    if not parts or not all(_NAME.fullmatch(p) for p in parts):
        raise BadData(f"{where}: bad clip {path!r}: expected a relative folder like '<class>/<clip>' "
                      f"(no '..', no leading '/' or '.', no spaces or quotes)")
    return path


def inside(root: Path, path: Path, where: Any = None) -> Path:
    """``path`` if it resolves (symlinks followed) inside ``root``; else a refusal naming both. A
    symlink loop resolves to where the loop starts (os.path.realpath, unlike Path.resolve, does not
    raise): reading it then fails on its own file, not the whole run."""
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real != base and not real.is_relative_to(base):
        raise BadData(f"{where or path}: resolves to {real}, outside {base}; refusing to read or write there")
    return Path(path)


@dataclass(frozen=True)
class Layout:
    """File name templates of a rawframe folder (mmaction2's ``filename_tmpl``)."""

    img: str = "img_{:05d}.jpg"
    flow: str = "flow_{}_{:05d}.jpg"   # formatted with "x" / "y"

    def img_name(self, k: int) -> str:
        """File name of frame ``k`` (1-based)."""
        return self.img.format(k)

    def flow_names(self, k: int) -> tuple[str, str]:
        """File names of pair ``k``'s x and y flow images (frame k -> k+1)."""
        return self.flow.format("x", k), self.flow.format("y", k)


OURS = Layout()
MMACTION2_FLOW = Layout(flow="{}_{:05d}.jpg")  # mmaction2's test data and denseflow's default
img_name = OURS.img_name
flow_names = OURS.flow_names


def label_map_path(root: Path, dataset: str) -> Path:
    """``<dataset>_label_map.txt``: a prepared root's class names in label order."""
    return Path(root) / f"{dataset}_label_map.txt"


def split_list_path(root: Path, dataset: str, kind: str, split: int) -> Path:
    """``annotations/<dataset>_{train,val}_split_<k>_rawframes.txt``, mmaction2's names."""
    if kind not in ("train", "val"):
        raise ValueError(f"split list kind {kind!r}: train or val")
    return inside(root, Path(root) / ANNOTATIONS / f"{dataset}_{kind}_split_{split}_rawframes.txt")


def synthetic_list_path(root: Path) -> Path:
    """A rendered root's annotation list of all its clips (inside the root: an ``annotations`` link
    to another folder is refused)."""
    return inside(root, Path(root) / ANNOTATIONS / SYNTHETIC_LIST)


def clip_dir(root: Path, clip_id: str) -> Path:
    """``clip_id`` is ``<class>/<clip>``, the key used in manifests and annotation lists; the folder
    is checked to lie inside the root (no ``..``, no class folder symlinked elsewhere)."""
    check_clip_id(clip_id, Path(root) / RAWFRAMES)
    return inside(root, Path(root) / RAWFRAMES / clip_id)


# ---------------------------------------------------------------- flow encoding
def encode_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 2) float flow in pixels -> two uint8 images in TSN's encoding."""
    q = np.rint(255.0 * (np.clip(flow, -bound, bound) + bound) / (2.0 * bound))
    q = q.astype(np.uint8)
    return q[..., 0], q[..., 1]


def decode_flow(fx: np.ndarray, fy: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Inverse of :func:`encode_flow` up to the quantisation step ``2*bound/255``."""
    q = np.stack([fx, fy], axis=-1).astype(np.float32)
    return q * (2.0 * bound / 255.0) - bound


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """``image`` as JPEG bytes at the contract's quality."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode a {image.shape} {image.dtype} image as JPEG")
    return buf.tobytes()


def write_jpeg(path: Path, image: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """``image`` as a JPEG file at the contract's quality."""
    Path(path).write_bytes(encode_jpeg(image, quality))


def check_jpeg(data: bytes, path: Path) -> bytes:
    """The bytes of a stored frame, if they are a whole JPEG (libjpeg decodes a cut one, greys
    out the rest and only warns)."""
    if not data:
        raise BadData(f"{path}: empty file, not an image")
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise BadData(f"{path}: truncated JPEG (no end-of-image marker)")
    return data


def read_image(path: Path, gray: bool = False) -> np.ndarray:
    """A stored frame, decoded strictly: a JPEG cut short (libjpeg would fill the rest with grey
    and only warn) or one with bytes after its end is corrupt, not an image."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise BadData(f"{path}: missing or unreadable image") from None
    return decode_image(data, path, gray)


def decode_image(data: bytes, where: Any, gray: bool = False) -> np.ndarray:
    """A frame's bytes decoded as strictly as :func:`read_image` does; ``where`` is blamed."""
    img = cv2.imdecode(np.frombuffer(check_jpeg(data, where), np.uint8),
                       cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise BadData(f"{where}: not a decodable image")
    return img


def write_flow_pair(folder: Path, k: int, flow: np.ndarray, bound: float = FLOW_BOUND) -> None:
    """Flow ``k`` in pixels, written as the contract's two flow JPEGs in ``folder``."""
    write_flow_jpegs(folder, k, *encode_flow(flow, bound))


def write_flow_jpegs(folder: Path, k: int, fx: np.ndarray, fy: np.ndarray) -> None:
    """Pair k's two flow images, already in TSN's encoding (uint8)."""
    nx, ny = flow_names(k)
    write_jpeg(Path(folder) / nx, fx)
    write_jpeg(Path(folder) / ny, fy)


def read_flow_pair(folder: Path, k: int, bound: float = FLOW_BOUND, layout: Layout = OURS) -> np.ndarray:
    """Decoded flow in pixels, (H, W, 2)."""
    return decode_flow(*read_flow_jpegs(folder, k, layout), bound)


def read_flow_jpegs(folder: Path, k: int, layout: Layout = OURS) -> tuple[np.ndarray, np.ndarray]:
    """The two encoded uint8 flow images of pair k, as stored."""
    nx, ny = layout.flow_names(k)
    return read_image(Path(folder) / nx, True), read_image(Path(folder) / ny, True)


def count_frames(folder: Path) -> int:
    """Number of consecutive ``img_#####.jpg`` from 1; a gap is a contract error."""
    if not Path(folder).is_dir():
        raise ContractError(f"{folder}: frame folder missing")
    names = sorted(p.name for p in Path(folder).glob("img_*.jpg"))
    for k, name in enumerate(names, start=1):
        if name != img_name(k):
            raise ContractError(f"{folder}: frame {img_name(k)} missing (found {name})")
    return len(names)


# ---------------------------------------------------------------- atomic clip folders
def remove_tree(path: Path) -> None:
    """Delete a folder this package made; a symlink is unlinked, never followed."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def staging_dir(root: Path, clip_id: str) -> Path:
    """A fresh hidden folder beside the final one; renamed into place when complete."""
    final = clip_dir(root, clip_id)
    tmp = final.parent / f"{_TMP_PREFIX}{final.name}"
    if tmp.is_symlink() or (tmp.exists() and not tmp.is_dir()):
        raise BadData(f"{tmp}: in the way of the clip's staging folder and not made by synthact")
    remove_tree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_dir(tmp: Path, final: Path) -> None:
    """Put the finished ``tmp`` folder in place of ``final``.

    An existing ``final`` is first renamed aside, so a kill at any point leaves either the old or
    the new complete folder (or the old one aside, which :func:`recover_staging` puts back), never
    a mixture.
    """
    final = Path(final)
    if final.is_symlink():
        raise BadData(f"{final}: a symlink where a clip folder belongs; refusing to replace it")
    if final.exists():
        old = final.parent / f"{_OLD_PREFIX}{final.name}"
        remove_tree(old)
        os.replace(final, old)
        os.replace(tmp, final)
        remove_tree(old)
    else:
        os.replace(tmp, final)


def pending_path(root: Path, clip_id: str) -> Path:
    """Where a committed clip's record waits for its manifest line (beside its folder)."""
    final = clip_dir(root, clip_id)
    return final.parent / f"{_PENDING_PREFIX}{final.name}.json"


@contextmanager
def staged_clip(root: Path, clip_id: str, replace: bool = False, record: dict | None = None) -> Iterator[Path]:
    """Build a clip in a staging folder: committed whole on success, removed on any failure.

    Without ``replace`` a folder already at the clip's place is someone else's: refused, never
    overwritten. ``record`` (filled in by the body of the ``with``) is written beside the folder
    before it is committed, so a kill between the commit and the manifest line loses nothing:
    :func:`recover_pending` finishes the record.
    """
    final = clip_dir(root, clip_id)
    if not replace and (final.exists() or final.is_symlink()):
        raise BadData(f"{final}: already exists and no manifest line says this run made it; refusing "
                      f"to overwrite it (move it away or use another root)")
    tmp = staging_dir(root, clip_id)
    try:
        yield tmp
    except BaseException:
        remove_tree(tmp)
        raise
    if record is not None:
        write_json(pending_path(root, clip_id), record)
    commit_dir(tmp, final)


def _own_folders(root: Path, prefix: str) -> Iterator[Path]:
    """This package's hidden entries under real (not symlinked) class folders of the root."""
    base = Path(root, RAWFRAMES)
    if not base.is_dir() or base.is_symlink():
        return
    for cls in sorted(base.iterdir()):
        if cls.is_dir() and not cls.is_symlink():
            yield from sorted(p for p in cls.iterdir() if p.name.startswith(prefix) and not p.is_symlink()
                              and (p.is_dir() or prefix == _PENDING_PREFIX))


def leftovers(root: Path) -> int:
    """How many staging folders and waiting records killed runs left (the next writer recovers them)."""
    return sum(1 for prefix in (_TMP_PREFIX, _OLD_PREFIX, _PENDING_PREFIX) for _ in _own_folders(root, prefix))


def recover_staging(root: Path) -> int:
    """After a kill: restore folders left aside mid-swap, delete unfinished staging folders.

    Only the lock holder calls this (see :mod:`synthact.rootlock`), so every staging folder it
    finds is abandoned; only hidden folders with this package's prefixes are touched.
    """
    n = 0
    for old in _own_folders(root, _OLD_PREFIX):
        final = old.parent / old.name[len(_OLD_PREFIX):]
        if final.exists():
            remove_tree(old)
        else:
            os.replace(old, final)
        n += 1
    for tmp in _own_folders(root, _TMP_PREFIX):
        remove_tree(tmp)
        n += 1
    return n


def recover_pending(root: Path, name: str = MANIFEST) -> int:
    """Records of clips committed by a killed run but not yet in the manifest: append them (the
    folder is complete), or drop the record when its folder never got committed."""
    listed = {r["clip"] for r in read_manifest(root, name)}
    n = 0
    for path in _own_folders(root, _PENDING_PREFIX):
        if not path.name.endswith(".json"):  # a record torn by a kill mid-write: its clip was not committed
            path.unlink()
            continue
        rec = read_json(path)
        clip = rec.get("clip") if isinstance(rec, dict) else None
        if clip and clip not in listed and clip_dir(root, clip).is_dir():
            append_manifest(root, rec, name)
            listed.add(clip)
            n += 1
        path.unlink()
    return n


def clear_pending(root: Path, clip_id: str) -> None:
    """Drop a clip's waiting record once its manifest line is written."""
    pending_path(root, clip_id).unlink(missing_ok=True)


def reconcile(root: Path) -> list[dict]:
    """Make a root whose manifest this stage writes consistent after a kill; return the records of
    its finished clips. Call it holding the root's lock.

    Only what this package made is touched: staging folders, clips a killed run committed (their
    waiting records are appended) and manifest lines whose folder was deleted by hand (dropped).
    A clip folder that no record lists is someone else's: refused, never deleted.
    """
    root = Path(root)
    remove_stale_temps(root / ANNOTATIONS)  # the root's own: see rootlock.root_lock
    recover_staging(root)
    repair_manifest(root)
    recover_pending(root)
    lines = read_manifest(root)
    present = [r for r in lines if clip_dir(root, r["clip"]).is_dir()]
    if len(present) != len(lines):
        write_lines(root / MANIFEST, [json.dumps(r, sort_keys=True) for r in present])
    unknown = sorted(set(iter_clips(root)) - {r["clip"] for r in present})
    if unknown:
        raise BadData(f"{clip_dir(root, unknown[0])}: a clip folder that {root / MANIFEST} does not list "
                      f"({len(unknown)} such); synthact never deletes or overwrites what it did not make: "
                      f"move them away or use another root")
    return present


# ---------------------------------------------------------------- manifest
def read_manifest(root: Path, name: str = MANIFEST) -> list[dict]:
    """All complete lines, one record per clip; a torn last line (killed mid-write) is ignored.

    A clip recorded twice (two writers before roots were locked) keeps its last record, in the
    place of its first, and a warning says so.
    """
    path = Path(root) / name
    if not path.exists():
        return []
    records: dict[str, dict] = {}
    parsed = 0
    try:
        lines = read_regular(path).decode().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadData(f"{path}: cannot read ({exc})") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise BadData(f"{path}:{i + 1}: not a JSON line") from None
        if not isinstance(rec, dict) or "clip" not in rec:
            raise BadData(f"{path}:{i + 1}: record has no 'clip' key")
        check_clip_id(rec["clip"], f"{path}:{i + 1}")
        records[rec["clip"]] = rec
        parsed += 1
    if len(records) < parsed:
        warn(f"{path}: {parsed - len(records)} duplicate record(s) of the same clip; kept the last of each")
    return list(records.values())


def repair_manifest(root: Path, name: str = MANIFEST) -> list[dict]:
    """Rewrite the manifest without a torn last line, so appends start on a fresh line."""
    records = read_manifest(root, name)
    path = Path(root) / name
    if path.exists():
        atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return records


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


def finite(value: Any) -> bool:
    """A real number that is neither NaN nor infinite (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def whole(value: Any, low: int | None = None, high: int | None = None) -> bool:
    """A whole number (booleans are not numbers here) within ``low``..``high``, both inclusive, where given."""
    return (isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)
            and (high is None or value <= high))


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


def append_manifest(root: Path, record: dict, name: str = MANIFEST) -> None:
    """One line per finished clip, flushed to disk before the next clip is counted (never through
    a link: see :func:`open_append`)."""
    fd = open_append(Path(root) / name)
    try:
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- flow.json
@dataclass(frozen=True)
class FlowInfo:
    """How the flow of a root was made (``flow.json``); one method per root, never mixed."""

    method: str
    params: dict | str = ""
    opencv_call: str | None = None
    bound: float = FLOW_BOUND
    encoding: str = FLOW_ENCODING
    opencv: str | None = None
    computed_on: str | None = None
    versions: dict | None = None     # of synthact and its libraries, when the flow was first made

    def same_flow(self, other: "FlowInfo") -> bool:
        """Flow of one method and bound: the only thing a root may hold."""
        return (self.method, self.bound) == (other.method, other.bound)

    def write(self, root: Path) -> None:
        """``flow.json`` of ``root``, atomically."""
        write_json(Path(root) / FLOW_INFO, {k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def read(cls, root: Path) -> "FlowInfo | None":
        """The root's ``flow.json``, or None where it has no flow; a malformed one is named."""
        path = Path(root) / FLOW_INFO
        if not path.exists():
            return None
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("method"), str) or not finite(data.get("bound")):
            raise BadData(f"{path}: expected a flow record with 'method' and 'bound'")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


# ---------------------------------------------------------------- root settings
# what every clip of a root shares, recorded once in root.json (older roots: read off a record)
SYNTHETIC_SETTINGS = ("frames", "fps", "size", "engine", "gt_flow")
REAL_SETTINGS = ("dataset", "size")


def settings_of(record: dict) -> dict:
    """The root settings a manifest record implies (a rendered clip, or a prepared real video)."""
    if "dataset" in record:
        return {"kind": "real", **{k: record.get(k) for k in REAL_SETTINGS}}
    return {"kind": "synthetic", **{k: record.get(k) for k in SYNTHETIC_SETTINGS}}


def recorded_settings(root: Path) -> dict | None:
    """A root's settings: its ``root.json``, else those its manifest records imply, else None."""
    path = Path(root) / ROOT_SETTINGS
    if path.exists():
        settings = read_json(path)
        if not isinstance(settings, dict) or not isinstance(settings.get("kind"), str):
            raise BadData(f"{path}: expected the root's settings (a mapping with 'kind')")
        return settings
    records = read_manifest(root)
    if not records:
        return None
    settings = settings_of(records[0])
    if settings["kind"] == "synthetic":  # body models, as render records them (the mannequin before bodies)
        settings["bodies"] = sorted({(r.get("body") or {}).get("model", "mannequin") for r in records})
    return settings


def settings_diff(have: dict, want: dict) -> list[str]:
    """The keys of ``want`` that ``have`` records with another value."""
    want = json.loads(json.dumps(want))  # tuples compare as the lists JSON gives back
    return [k for k in want if k in have and have[k] != want[k] and k != "versions"]


def claim_settings(root: Path, settings: dict) -> None:
    """Refuse, before anything is written, a run whose settings differ from the root's; record
    them when the root has none yet."""
    have = recorded_settings(root)
    path = Path(root) / ROOT_SETTINGS
    if have is not None:
        diff = settings_diff(have, settings)
        if diff:
            raise BadConfig(f"{path}: this root holds clips with " + ", ".join(f"{k}={have[k]}" for k in diff)
                            + "; this run asks " + ", ".join(f"{k}={json.loads(json.dumps(settings[k]))}"
                                                            for k in diff) + "; use another root")
        changed = differences(have.get("versions"))
        if changed:
            warn(f"{path}: this root was made with other versions ({', '.join(changed)}); its clips may differ "
                 f"slightly from the ones this run adds")
    if not path.exists():
        write_json(path, {"versions": versions(), **(have or {}), **settings})  # a merge keeps its sources' versions


# ---------------------------------------------------------------- classes and annotation lists
@dataclass(frozen=True)
class Entry:
    """One line of an mmaction2 rawframe annotation list."""

    clip: str
    num_frames: int
    label: int

    def line(self) -> str:
        """The entry as one line of the list."""
        return f"{self.clip} {self.num_frames} {self.label}"


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Lines to ``path`` atomically (a reader never sees half a list)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(f"{line}\n" for line in lines))


def write_classes(root: Path, classes: list[str]) -> None:
    """``classes.txt``: one class per line, in label order."""
    write_lines(Path(root) / CLASSES, classes)


def read_classes(path: Path) -> list[str]:
    """A class list (label order); names are checked, a class listed twice is refused."""
    path = Path(path)
    if not path.exists():
        raise ContractError(f"{path}: class list not found")
    names = []
    for i, raw in enumerate(read_text(path, "class list").splitlines(), start=1):
        if raw.strip():
            names.append(check_name(raw.strip(), "class", f"{path}:{i}"))
    if len(set(names)) != len(names):
        raise BadData(f"{path}: a class is listed twice")
    return names


def write_annotations(path: Path, entries: Iterable[Entry]) -> None:
    """Each clip once (the first entry of a clip wins)."""
    unique = {}
    for e in entries:
        unique.setdefault(e.clip, e)
    write_lines(Path(path), (e.line() for e in unique.values()))


def read_annotations(path: Path, clip_ids: bool = True) -> list[Entry]:
    """An annotation list; with ``clip_ids`` (a root's lists) every entry must be a safe relative
    folder (see :func:`check_relpath`); a run folder's own lists hold absolute frame folders."""
    path = Path(path)
    if not path.exists():
        raise ContractError(f"{path}: annotation list not found")
    entries: dict[str, Entry] = {}
    text = read_text(path, "annotation list")
    for i, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise ContractError(f"{path}:{i}: expected '<class>/<clip> <num_frames> <label>', got {raw!r}")
        clip = check_relpath(parts[0], f"{path}:{i}") if clip_ids else parts[0]
        entry = Entry(clip, int(parts[1]), int(parts[2]))
        if entries.get(entry.clip, entry) != entry:
            raise BadData(f"{path}:{i}: {entry.clip} is listed twice with different frames or labels")
        entries[entry.clip] = entry
    n = sum(1 for raw in text.splitlines() if raw.split())
    if len(entries) < n:
        warn(f"{path}: {n - len(entries)} duplicate line(s); each clip is used once")
    return list(entries.values())


def iter_clips(root: Path) -> Iterator[str]:
    """``<class>/<clip>`` of every committed clip folder under ``rawframes/``."""
    base = Path(root) / RAWFRAMES
    for d in sorted(base.glob("*/*")):
        if d.is_dir() and not d.name.startswith(".") and not d.parent.name.startswith("."):
            yield check_clip_id(f"{d.parent.name}/{d.name}", d)


def write_index(root: Path) -> list[str]:
    """``classes.txt`` and the synthetic list from the manifest (labels: classes in sorted order);
    returns the classes."""
    records = read_manifest(root)
    classes = sorted({r["clip"].split("/")[0] for r in records})
    label = {c: i for i, c in enumerate(classes)}
    write_classes(root, classes)
    write_annotations(synthetic_list_path(root), [Entry(r["clip"], r["num_frames"], label[r["clip"].split("/")[0]])
                                                  for r in sorted(records, key=lambda r: r["clip"])])
    return classes
