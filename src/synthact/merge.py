"""``synthact merge``: one rawframe root from roots rendered apart (one per machine or seed).

Clips are hard-linked where the file system allows (copied otherwise) into staging folders and
swapped in whole, then recorded, so a killed merge resumes. Roots must agree on the settings that
make clips comparable (frames, fps, size, engine, ground-truth flow) and on their flow method;
a clip name present in two sources is an error, never a silent choice.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import contract as C
from .render.clips import FIXED_SETTINGS, write_index, write_preview


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def merge_roots(out: Path, sources: list[Path]) -> dict:
    out = Path(out)
    if not sources:
        raise ValueError("give at least one source root")
    flow_infos, records, flowed, owner = {}, [], set(), {}
    for src in map(Path, sources):
        if Path(src).resolve() == out.resolve():
            raise ValueError(f"{src}: the output cannot also be a source")
        if not (src / C.MANIFEST).exists():
            raise ValueError(f"{src}: no {C.MANIFEST}: not a rawframe root")
        info = src / C.FLOW_INFO
        if info.exists():
            flow_infos[str(src)] = json.loads(info.read_text())
        for rec in C.read_manifest(src):
            if rec["clip"] in owner:
                raise ValueError(f"clip {rec['clip']} is in both {owner[rec['clip']]} and {src}: render each "
                                 f"machine's share with its own --seed")
            owner[rec["clip"]] = src
            records.append(rec)
        flowed |= {r["clip"] for r in C.read_manifest(src, C.FLOW_MANIFEST)}
    first = records[0] if records else {}
    for rec in records:
        for key in FIXED_SETTINGS:
            if rec.get(key) != first.get(key):
                raise ValueError(f"{owner[rec['clip']]}: clip {rec['clip']} has {key}={rec.get(key)}, "
                                 f"{owner[first['clip']]} has {key}={first.get(key)}: roots do not match")
    methods = {(i.get("method"), i.get("bound")) for i in flow_infos.values()}
    if len(methods) > 1 or (flow_infos and len(flow_infos) != len(sources)):
        raise ValueError("sources differ in their flow: " + ", ".join(f"{s}: {i.get('method')}" for s, i in
                                                                       flow_infos.items()) + " (and the rest none)")
    out.mkdir(parents=True, exist_ok=True)
    C.recover_staging(out)
    done = {r["clip"] for r in C.repair_manifest(out)}
    if flow_infos:
        C.write_lines(out / C.FLOW_INFO, [json.dumps(next(iter(flow_infos.values())), indent=1)])
    merged = 0
    for rec in records:
        if rec["clip"] in done:
            continue
        src_dir = C.clip_dir(owner[rec["clip"]], rec["clip"])
        with C.staged_clip(out, rec["clip"]) as tmp:
            for f in src_dir.iterdir():
                _link_or_copy(f, tmp / f.name)
        C.append_manifest(out, rec)
        if rec["clip"] in flowed:
            C.append_manifest(out, {"clip": rec["clip"], "merged_from": str(owner[rec["clip"]])}, C.FLOW_MANIFEST)
        merged += 1
    classes = write_index(out)
    write_preview(out)
    return {"clips": len(records), "merged": merged, "skipped": len(records) - merged, "classes": len(classes)}
