"""Clip folders built in staging and swapped in whole, and the recovery after a kill."""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import BadData
from .files import read_json, remove_stale_temps, write_json, write_lines
from .layout import ANNOTATIONS, MANIFEST, RAWFRAMES, clip_dir, is_flow_name, iter_clips
from .manifest import ManifestLine, append_manifest, read_manifest, repair_manifest

_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"
_PENDING_PREFIX = ".pending-"    # a committed clip's record, until its manifest line is written


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


@contextmanager
def restaged(root: Path, clip_id: str) -> Iterator[Path]:
    """A staging copy of a committed clip without its flow (its other files hard-linked), swapped in
    whole on success: the flow stages write a clip's new flow into it."""
    final = clip_dir(root, clip_id)
    with staged_clip(root, clip_id, replace=True) as tmp:
        for f in final.iterdir():
            if not is_flow_name(f.name):
                os.link(f, tmp / f.name)  # same files, no copy: only flow is new
        yield tmp


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
    listed = {r.clip for r in read_manifest(root, name)}
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


def reconcile(root: Path) -> list[ManifestLine]:
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
    present = [r for r in lines if clip_dir(root, r.clip).is_dir()]
    if len(present) != len(lines):
        write_lines(root / MANIFEST, [json.dumps(r.fields, sort_keys=True) for r in present])
    unknown = sorted(set(iter_clips(root)) - {r.clip for r in present})
    if unknown:
        raise BadData(f"{clip_dir(root, unknown[0])}: a clip folder that {root / MANIFEST} does not list "
                      f"({len(unknown)} such); synthact never deletes or overwrites what it did not make: "
                      f"move them away or use another root")
    return present
