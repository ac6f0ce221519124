"""``synthact info``: what a rawframe root or a run folder holds, without reading manifests by hand.

Reads only; never takes the lock, so it can look at a root another job is writing.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from . import contract as C
from .errors import BadConfig, BadData, warn
from .train.config import config_from


def disk_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``, links not followed (hard links counted once)."""
    seen, total = set(), 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def root_info(root: Path) -> dict:
    """Settings, clips per class, flow completeness, failures, size and the work left of a root."""
    root = Path(root)
    records = C.read_manifest(root)
    listed = {r.clip for r in records}
    flow = C.FlowInfo.read(root)
    flowed = {r.clip for r in C.read_manifest(root, C.FLOW_MANIFEST)} & listed if flow else set()
    failures_path = root / C.FAILURES
    failures = C.read_text(failures_path, "failure list").splitlines() if failures_path.exists() else []
    unlisted = sorted(set(C.iter_clips(root)) - listed)
    todo = []
    if records and flow is None:
        todo.append("extract-flow: no flow yet")
    elif flow is not None and len(flowed) < len(listed):
        todo.append(f"extract-flow --resume: {len(listed) - len(flowed)} clips without flow")
    if failures:
        todo.append(f"rerun the last command: {len(failures)} items failed (see {failures_path.name})")
    left = C.leftovers(root)
    if left:
        todo.append(f"the next run recovers {left} staging entries a killed run left")
    if unlisted:
        todo.append(f"{len(unlisted)} clip folders no manifest line lists (e.g. {unlisted[0]}): not ours")
    motions = Counter((_field(r, "motion", dict) or {}).get("file") or "procedural" for r in records)
    return {"kind": "root", "root": str(root), "settings": C.recorded_settings(root), "clips": len(records),
            "motion_sources": dict(sorted(motions.items())) if records and "class" in records[0].fields else {},
            "clips_per_class": dict(sorted(Counter(C.class_of(c) for c in listed).items())),
            "frames": sum(_field(r, "num_frames", int) or 0 for r in records),
            "flow": {"method": flow.method, "complete": len(flowed), "of": len(listed)} if flow else None,
            "failures": failures, "disk_bytes": disk_bytes(root), "todo": todo}


def _field(record: C.ManifestLine, key: str, kind: type):
    """A manifest record's optional ``key`` (None when absent), refused in one line when it is not
    a ``kind`` (a whole number >= 0 for ``int``)."""
    value = record.fields.get(key)
    ok = value is None or (isinstance(value, kind) and not isinstance(value, bool)
                           and (not isinstance(value, int) or value >= 0))
    if not ok:
        raise BadData(f"{record.where}: clip {record.clip}: {key} {value!r} is not "
                      + ("a whole number >= 0" if kind is int else "a mapping"))
    return value


def _log_rows(log: Path) -> list[dict]:
    """``log.csv``'s epochs, each validated one with a finite ``val_top1`` and a whole ``epoch``."""
    if not log.exists():
        return []
    rows = list(csv.DictReader(C.read_text(log, "training log").splitlines()))
    for i, r in enumerate(rows, start=2):
        try:
            if r.get("val_top1") and not math.isfinite(float(r["val_top1"])):
                raise ValueError
            int(r.get("epoch") or "")
        except (TypeError, ValueError):
            raise BadData(f"{log}:{i}: epoch {r.get('epoch')!r}, val_top1 {r.get('val_top1')!r}: "
                          f"expected a whole number and a finite number") from None
    return rows


def run_info(run: Path) -> dict:
    """Selection, settings, epochs done and metrics of a train-tsn run folder."""
    run = Path(run)
    files = C.RunLayout(run)
    raw = C.read_json(files.config)
    cfg = config_from(raw, files.config)   # checked as predict and --resume check it
    history = _log_rows(files.log)
    metrics = C.read_json(files.metrics) if files.metrics.exists() else None
    if metrics is not None and not isinstance(metrics, dict):
        raise BadData(f"{files.metrics}: not a run's metrics (expected a JSON object)")
    validated = [r for r in history if r.get("val_top1")]   # empty where --val-interval skipped an epoch
    best = max(validated, key=lambda r: float(r["val_top1"])) if validated else None
    settings = {k: v for k, v in asdict(cfg).items() if k != "info"}
    return {"kind": "run", "run": str(run),
            "settings": {**settings, "versions": raw.get("versions")},
            "selection": cfg.info, "epochs_done": len(history), "epochs": cfg.epochs,
            "best_val_top1": float(best["val_top1"]) if best else None,
            "best_epoch": int(best["epoch"]) if best else None,
            "final": {k: metrics[k] for k in ("top1", "mean_class", "protocol", "n") if k in metrics}
            if metrics else None,
            "todo": [] if metrics else [f"train-tsn --resume: {len(history)} of {cfg.epochs} epochs done"]}


def folder_info(folder: Path) -> dict:
    """:func:`root_info` for a rawframe root, :func:`run_info` for a run folder."""
    folder = Path(folder)
    if C.RunLayout(folder).config.exists():
        return run_info(folder)
    if (folder / C.MANIFEST).exists() or (folder / C.RAWFRAMES).is_dir():
        return root_info(folder)
    raise BadConfig(f"{folder}: neither a rawframe root (no {C.MANIFEST} or {C.RAWFRAMES}/) nor a run folder "
                    f"(no {C.RunLayout.CONFIG})")


def _strict(value, where: str, bad: list[str]):
    """``value`` with every NaN or infinity replaced by None, the places listed in ``bad``."""
    if isinstance(value, float) and not math.isfinite(value):
        bad.append(where)
        return None
    if isinstance(value, dict):
        return {k: _strict(v, f"{where}.{k}" if where else str(k), bad) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v, f"{where}[{i}]", bad) for i, v in enumerate(value)]
    return value


def as_json(info: dict) -> str:
    """The report as strict JSON (``--json``): a NaN or infinity read from a file is null, and a
    warning names the field, since JSON has no NaN and a reader would reject the whole object."""
    bad: list[str] = []
    text = json.dumps(_strict(info, "", bad), indent=1, allow_nan=False)
    if bad:
        warn(f"{', '.join(bad)}: not a finite number in {info.get('root') or info.get('run')}; written as null")
    return text


def as_text(info: dict) -> str:
    """The report a person reads."""
    lines = [f"{info['kind']}: {info.get('root') or info.get('run')}"]
    lines.append("settings: " + json.dumps(info["settings"], sort_keys=True))
    if info["kind"] == "root":
        size = info["disk_bytes"] / 2 ** 20
        lines.append(f"clips: {info['clips']} ({info['frames']} frames, {size:.1f} MiB on disk)")
        lines += [f"  {c}: {n}" for c, n in info["clips_per_class"].items()]
        f = info["flow"]
        lines.append(f"flow: {f['method']}, {f['complete']} of {f['of']} clips complete" if f else "flow: none")
        if info["motion_sources"]:
            lines.append("motion: " + ", ".join(f"{m} ({n} clips)" for m, n in info["motion_sources"].items()))
        lines.append(f"failures recorded: {len(info['failures'])}")
    else:
        lines.append(f"selection: {json.dumps(info['selection'], sort_keys=True)}")
        lines.append(f"epochs: {info['epochs_done']} of {info['epochs']} done; best val top-1 "
                     f"{info['best_val_top1']} (epoch {info['best_epoch']})")
        lines.append(f"final: {json.dumps(info['final'], sort_keys=True)}")
    lines.append("to do: " + ("; ".join(info["todo"]) if info["todo"] else "nothing"))
    return "\n".join(lines)
