"""``synthact merge``: one rawframe root from roots rendered apart (one per machine or seed).

Clips are hard-linked where the file system allows (copied otherwise) into staging folders and
swapped in whole, then recorded, so a killed merge resumes. Roots must agree on the settings that
make clips comparable (frames, fps, size, engine, ground-truth flow) and on their flow method;
a clip name present in two sources is an error, never a silent choice.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import contract as C
from ..errors import BadConfig, BadData
from ..render.writer import write_preview
from ..rootlock import root_lock


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def _clip_files(src: Path, clip: str) -> list[Path]:
    """The files of a source's clip, every one checked before anything is merged: its folder and
    class folder real folders (a link, even to another clip of the source, is never followed),
    and only plain files in it."""
    folder = C.clip_dir(src, clip)
    for d in (folder.parent, folder):
        if d.is_symlink() or not d.is_dir():
            raise BadData(f"{d}: {'a link' if d.is_symlink() else 'missing'} where {src / C.MANIFEST} lists clip "
                          f"{clip}; a clip is merged only from its own folder")
    files = sorted(folder.iterdir())
    for f in files:
        if f.is_symlink() or not f.is_file():
            raise BadData(f"{f}: not a plain file; a clip folder holds only frames and flow")
    return files


def _source_settings(src: Path, records: list[C.ManifestLine]) -> dict:
    """A source's settings, and every record's agreeing with them (older roots could mix)."""
    have = C.recorded_settings(src) or {}
    for rec in records:
        diff = C.settings_diff(have, C.settings_of(rec.fields))
        if diff:
            theirs = ", ".join(f"{k}={C.settings_of(rec.fields)[k]}" for k in diff)
            raise BadConfig(f"{rec.where}: clip {rec.clip} has {theirs}, the root "
                            + ", ".join(f"{k}={have[k]}" for k in diff))
    return have


@dataclass
class MergeSummary:
    """What a :func:`merge_roots` run did: clips in the sources, merged now, already there; classes."""

    clips: int
    merged: int
    skipped: int
    classes: int


def merge_roots(out: Path, sources: list[Path], wait: bool = False) -> MergeSummary:
    """Merge rawframe roots rendered apart into ``out`` (hard links where possible), refusing roots
    whose settings or flow differ and clip names present twice; ``out`` is locked for the run."""
    out = Path(out)
    if not sources:
        raise BadConfig("give at least one source root")
    flow_infos, records, flowed, settings = {}, [], set(), {}
    owner: dict[str, Path] = {}
    for src in map(Path, sources):
        a, b = Path(src).resolve(), out.resolve()
        if a == b or b.is_relative_to(a) or a.is_relative_to(b):
            raise BadConfig(f"--out {out}: lies in or around the source {src}; merge into a folder outside every "
                            f"source")
        if not (src / C.MANIFEST).exists():
            raise BadConfig(f"{src}: no {C.MANIFEST}: not a rawframe root")
        info = C.FlowInfo.read(src)
        if info is not None:
            flow_infos[str(src)] = info
        src_records = C.read_manifest(src)
        for rec in src_records:
            if rec.clip in owner:
                raise BadConfig(f"clip {rec.clip} is in both {owner[rec.clip]} and {src}: render each "
                                f"machine's share with its own --seed")
            _clip_files(src, rec.clip)  # every clip checked before anything is committed
            owner[rec.clip] = src
            records.append(rec)
        settings[src] = _source_settings(src, src_records)
        flowed |= {r.clip for r in C.read_manifest(src, C.FLOW_MANIFEST)}
    first = next(iter(settings))
    for src, have in settings.items():
        diff = C.settings_diff(settings[first], have)
        if diff:
            raise BadConfig(f"{src} has " + ", ".join(f"{k}={have[k]}" for k in diff) + f", but {first} has "
                            + ", ".join(f"{k}={settings[first][k]}" for k in diff) + ": roots do not match")
    methods = {(i.method, i.bound) for i in flow_infos.values()}
    if len(methods) > 1 or (flow_infos and len(flow_infos) != len(sources)):
        raise BadConfig("sources differ in their flow: " + ", ".join(f"{s}: {i.method}" for s, i in
                                                                      flow_infos.items()) + " (and the rest none)")
    with root_lock(out, wait):
        return _merge_locked(out, records, owner, flowed, flow_infos, settings[first])


def _merge_locked(out: Path, records: list[C.ManifestLine], owner: dict, flowed: set, flow_infos: dict,
                  settings: dict) -> MergeSummary:
    if settings:
        C.claim_settings(out, settings)
    done = {r.clip for r in C.reconcile(out)}
    if flow_infos:
        new = next(iter(flow_infos.values()))
        old = C.FlowInfo.read(out)
        if old is None:
            new.write(out)
        elif not old.same_flow(new):
            raise BadConfig(f"{out / C.FLOW_INFO}: the output holds {old.method} flow, the sources "
                            f"{new.method}: use another --out")
    merged = 0
    out_flowed = {r.clip for r in C.read_manifest(out, C.FLOW_MANIFEST)}

    def flowed_line(clip: str) -> None:
        C.append_manifest(out, {"clip": clip, "merged_from": str(owner[clip])}, C.FLOW_MANIFEST)

    for rec in records:
        if rec.clip in done:
            if rec.clip in flowed - out_flowed:  # committed and recorded, killed before its flow line
                flowed_line(rec.clip)
            continue
        with C.staged_clip(out, rec.clip, record=rec.fields) as tmp:
            for f in _clip_files(owner[rec.clip], rec.clip):
                _link_or_copy(f, tmp / f.name)
        C.append_manifest(out, rec.fields)
        C.clear_pending(out, rec.clip)
        if rec.clip in flowed:
            flowed_line(rec.clip)
        merged += 1
    classes = C.write_index(out)
    write_preview(out)
    return MergeSummary(len(records), merged, len(records) - merged, len(classes))
