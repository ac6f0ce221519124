"""The grid's results as the paper prints them: ``results.csv``, the top-1 table (mean ± std over
splits and seeds, then each synthetic cell's gain over real only paired by split and seed) and the
plot of top-1 against synthetic clips added."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .. import contract as C
from .config import MODALITIES


def write_results(out: Path, rows: list[dict], cfg: dict) -> None:
    """``results.csv``, ``results.md`` and the plot of the rows so far, each replaced whole."""
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    grid = C.GridLayout(out)
    C.atomic_write(grid.csv, text.getvalue())     # each whole or not at all: a reader sees old or new
    C.atomic_write(grid.table, table(rows, cfg))
    plot(rows, grid.plot, cfg)


def group_key(row: dict) -> tuple:
    """A result row's group in the table, the plot and the per-class report: (modality, synthetic
    set, real fraction, synthetic count), the set "" for the real-only baseline, which no set owns."""
    return (row["modality"], row.get("synthetic_set", "") if row["synthetic"] else "", row["real_fraction"],
            row["synthetic"])


def _groups(rows: list[dict]) -> dict:
    """Top-1 (%) per group; the real-only baseline is shared by every synthetic set's line of its
    stream and fraction (a line of the baseline alone where no set has one: RGB under
    ``rgb_synthetic: false``, or a grid without synthetic cells)."""
    groups: dict[tuple, list[float]] = {}
    sets = sorted({r.get("synthetic_set", "") for r in rows if r["synthetic"]}) or [""]
    lines = {group_key(r)[:3] for r in rows if r["synthetic"]}
    for r in rows:
        if r["top1"] is not None:
            mod, name, frac, n = group_key(r)
            shared = [name] if n else [s for s in sets if (mod, s, frac) in lines] or [""]
            for s in shared:
                groups.setdefault((mod, s, frac, n), []).append(100 * r["top1"])
    return groups


def table(rows: list[dict], cfg: dict) -> str:
    """Top-1 (%) as mean ± std over splits and seeds: one row per modality (and synthetic set) and
    real fraction, one column per synthetic count, as the paper prints it."""
    groups = _groups(rows)
    counts = sorted({r["synthetic"] for r in rows})
    sets = sorted({k[1] for k in groups})
    by_set = sets != [""]
    lines = [f"# {cfg.get('name', 'ablation')}: top-1 accuracy (%) on {cfg['real']} "
             f"({cfg['eval_protocol']} protocol), mean ± std over splits {cfg['splits']} x seeds {cfg['seeds']}", "",
             "| modality | " + ("synthetic set | " if by_set else "") + "real fraction | "
             + " | ".join(f"+{n} synthetic" for n in counts) + " |",
             "|---|" + ("---|" if by_set else "") + "---|" + "---|" * len(counts)]
    for mod in MODALITIES:
        for name in sets:
            for frac in sorted({r["real_fraction"] for r in rows}, reverse=True):
                cells_ = []
                for n in counts:
                    v = groups.get((mod, name, frac, n))
                    cells_.append("" if not v else f"{np.mean(v):.1f} ± {np.std(v):.1f} (n={len(v)})")
                if any(cells_):
                    label = "synthetic only" if frac == 0 else f"{frac:g}"
                    lines.append(f"| {mod} | " + (f"{name} | " if by_set else "") + f"{label} | "
                                 + " | ".join(cells_) + " |")
    lines += _gain_table(rows)
    if cfg.get("rgb_synthetic") is False:
        lines += ["", "rgb_synthetic: false: RGB trains on real clips alone; each fusion cell fuses that with the "
                      "flow cell of its row."]
    failed = [r for r in rows if str(r["status"]).startswith("failed")]
    if failed:
        lines += ["", f"{len(failed)} cell(s) failed: " + "; ".join(f"{r['cell']} ({r['status']})" for r in failed)]
    return "\n".join(lines) + "\n"


def paired_gains(rows: list[dict]) -> dict[tuple, list[float]]:
    """Each cell with synthetic and real clips against the real-only cell of its stream, real fraction,
    split and seed, which trained on the same real clips: its top-1 gain in points, by group (see
    :func:`group_key`). Pairing takes out how lucky a seed's real subset was, which dominates the
    spread of both cells at a few real clips a class."""
    def pair(r: dict) -> tuple:
        return r["modality"], r["real_fraction"], r.get("split"), r.get("seed")
    base = {pair(r): r["top1"] for r in rows if not r["synthetic"] and r["top1"] is not None}
    gains: dict[tuple, list[float]] = {}
    for r in rows:
        if r["synthetic"] and r["real_fraction"] and r["top1"] is not None and pair(r) in base:
            gains.setdefault(group_key(r), []).append(100 * (r["top1"] - base[pair(r)]))
    return gains


def _gain_table(rows: list[dict]) -> list[str]:
    gains = paired_gains(rows)
    if not gains:
        return []
    lines = ["", "Gain over real only, paired by split and seed (the same real clips), points of top-1:", "",
             "| modality | synthetic set | real fraction | synthetic | gain (mean ± std) | pairs gaining |",
             "|---|---|---|---|---|---|"]
    for (mod, name, frac, n), d in sorted(gains.items(), key=lambda kv: (*_line_order(kv[0]), kv[0][3])):
        lines.append(f"| {mod} | {name} | {frac:g} | +{n} | {np.mean(d):+.1f} ± {np.std(d):.1f} (n={len(d)}) | "
                     f"{sum(x > 0 for x in d)} of {len(d)} |")
    return lines


def _line_order(key: tuple) -> tuple:
    """A (modality, synthetic set, real fraction, ...) group in the order the table prints streams:
    modalities as listed, sets by name, the largest real fraction first."""
    return MODALITIES.index(key[0]), key[1], -key[2]


def plot(rows: list[dict], path: Path, cfg: dict) -> None:
    """Top-1 against synthetic clips added, one line per modality and real fraction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = _groups(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for mod, name, frac in sorted({k[:3] for k in groups}, key=_line_order):
        pts = sorted((n, np.mean(v), np.std(v)) for (m, s, f, n), v in groups.items() if (m, s, f) == (mod, name, frac))
        n, mean, std = map(np.array, zip(*pts, strict=True))
        label = f"{mod}{f' ({name})' if name else ''}, {'synthetic only' if frac == 0 else f'real x{frac:g}'}"
        ax.errorbar(n, mean, yerr=std, marker="o", capsize=3, label=label)
    ax.set_xlabel("synthetic clips added")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{cfg.get('name', 'ablation')} ({cfg['real']})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with C.atomic_output(path, ".png") as tmp:  # replaced whole
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
