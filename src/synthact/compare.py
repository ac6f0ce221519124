"""``synthact compare``: how far apart the flow of two rawframe roots is (the domain gap).

Each clip with complete flow is summarised by a vector of flow features (:data:`FEATURES`), read
from its stored TSN flow (decoded to pixels; zero motion reads as 0.11 px after quantisation):

* ``mean_flow``: mean |flow| in pixels of the stored frames,
* ``moving_share``: share of pixels moving more than 1 px, ``fast_share``: more than 4 px,
* ``box_width``, ``box_height``: the region of moving pixels (their 1st-99th percentile of x and
  of y) as a fraction of the frame's width and height; ``centroid_x``, ``centroid_y``: their mean
  position, 0-1 from the left / top,
* ``temporal_energy``: mean |(|flow_k+1| - |flow_k|)|, how much the magnitude changes from one
  pair to the next (pixels).

Up to :data:`MAX_WINDOWS` windows of two consecutive pairs are read per clip, evenly spaced. The
summary number is the Fréchet distance between Gaussians fitted to the two roots' per-clip feature
vectors, each feature first scaled by its standard deviation over both roots together:
``|mu_r - mu_s|^2 + tr(S_r + S_s - 2 (S_r S_s)^(1/2))``. Two identical roots give 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import contract as C
from .errors import BadConfig, BadData, SynthactError, one_line
from .rootlock import output_folder

FEATURES = ("mean_flow", "moving_share", "fast_share", "box_width", "box_height", "centroid_x", "centroid_y",
            "temporal_energy")
LABELS = {"mean_flow": "mean |flow| (px)", "moving_share": "moving > 1 px", "fast_share": "moving > 4 px",
          "box_width": "moving box width", "box_height": "moving box height", "centroid_x": "centroid x",
          "centroid_y": "centroid y", "temporal_energy": "temporal energy (px)"}
MOVING, FAST = 1.0, 4.0                   # px: a pixel moves, a pixel moves fast
MAX_WINDOWS = 16                          # windows of two consecutive flow pairs read per clip
HIST_EDGES = np.array([0, 0.25, 0.5, 1, 2, 4, 8, 16, 2 ** 0.5 * C.FLOW_BOUND + 1e-6])  # |flow| px
SIDES = ("real", "synthetic")
MARKER = "compare.json"                   # says a folder holds compare's output, which a rerun replaces


@dataclass
class ClipStats:
    """One clip's flow features and pixel histogram of |flow|."""

    clip: str
    features: np.ndarray     # in FEATURES order
    hist: np.ndarray         # pixel counts per HIST_EDGES bin


def pair_windows(pairs: int, windows: int = MAX_WINDOWS) -> list[int]:
    """1-based first pair of each window of two consecutive pairs (one pair alone when a clip has one)."""
    if pairs < 2:
        return [1] if pairs == 1 else []
    if pairs - 1 <= windows:
        return list(range(1, pairs))
    return sorted({int(round(x)) for x in np.linspace(1, pairs - 1, windows)})


def clip_stats(folder: Path, clip: str, pairs: int) -> ClipStats:
    """The flow features of the clip in ``folder`` (``pairs`` flow pairs)."""
    mags: dict[int, np.ndarray] = {}
    starts = pair_windows(pairs)
    for k in starts:
        for j in (k, k + 1):
            if j <= pairs and j not in mags:
                fx, fy = C.read_flow_jpegs(folder, j)
                shape = next(iter(mags.values())).shape if mags else fx.shape
                if fx.shape != shape or fy.shape != shape:  # a clip is one frame size throughout
                    raise BadData(f"{folder}: flow pair {j} is {fx.shape[1]}x{fx.shape[0]} and "
                                  f"{fy.shape[1]}x{fy.shape[0]}, the clip {shape[1]}x{shape[0]}: flow images differ "
                                  f"in size")
                f = C.decode_flow(fx, fy)
                mags[j] = np.hypot(f[..., 0], f[..., 1])
    if not mags:
        raise BadData(f"{folder}: no flow pairs")
    h, w = next(iter(mags.values())).shape
    boxes, cents, moving, fast, means = [], [], [], [], []
    hist = np.zeros(len(HIST_EDGES) - 1)
    for m in mags.values():
        means.append(m.mean())
        mask = m > MOVING
        moving.append(mask.mean())
        fast.append((m > FAST).mean())
        hist += np.histogram(m, HIST_EDGES)[0]
        if mask.any():
            ys, xs = np.nonzero(mask)
            x0, x1 = np.percentile(xs, (1, 99))
            y0, y1 = np.percentile(ys, (1, 99))
            boxes.append(((x1 - x0 + 1) / w, (y1 - y0 + 1) / h))
            cents.append(((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h))
    box = np.mean(boxes, 0) if boxes else np.zeros(2)
    cent = np.mean(cents, 0) if cents else np.full(2, 0.5)
    energy = [np.abs(mags[k + 1] - mags[k]).mean() for k in starts if k + 1 in mags]
    feats = np.array([np.mean(means), np.mean(moving), np.mean(fast), box[0], box[1], cent[0], cent[1],
                      np.mean(energy) if energy else 0.0])
    return ClipStats(clip, feats, hist)


def root_stats(root: Path, side: str, max_clips: int = 0) -> tuple[list[ClipStats], list[tuple[str, str, str]], dict]:
    """Stats of every clip of ``root`` with complete flow (at most ``max_clips`` per class, evenly
    picked), the clips skipped (side, clip, why) and what the root records (method, size)."""
    root = Path(root)
    if not (root / C.RAWFRAMES).is_dir():
        raise BadConfig(f"--{side} {root}: no {C.RAWFRAMES}/ folder: not a rawframe root")
    info = C.FlowInfo.read(root)
    if info is None:
        raise BadConfig(f"--{side} {root}: no flow here ({C.FLOW_INFO} missing): run extract-flow on it first")
    with_flow = {r.clip: r.fields for r in C.read_manifest(root, C.FLOW_MANIFEST)}
    clips = list(C.iter_clips(root))
    if max_clips:
        by_class: dict[str, list[str]] = {}
        for c in clips:
            by_class.setdefault(C.class_of(c), []).append(c)
        clips = [v[int(i)] for v in by_class.values()
                 for i in np.unique(np.linspace(0, len(v) - 1, min(max_clips, len(v))).round())]
    stats, skipped = [], []
    for clip in clips:
        rec = with_flow.get(clip)
        pairs = rec.get("pairs") if rec else None
        if not isinstance(pairs, int) or pairs < 1:
            skipped.append((side, clip, f"no complete flow (not in {C.FLOW_MANIFEST})"))
            continue
        try:
            stats.append(clip_stats(C.clip_dir(root, clip), clip, pairs))
        except SynthactError as exc:
            skipped.append((side, clip, one_line(exc)))
    settings = C.recorded_settings(root) or {}
    return stats, skipped, {"method": info.method, "size": settings.get("size"), "dataset": settings.get("dataset"),
                            "kind": settings.get("kind")}


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b`` (same columns)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False)) if len(a) > 1 else np.zeros((a.shape[1],) * 2)
    cov_b = np.atleast_2d(np.cov(b, rowvar=False)) if len(b) > 1 else np.zeros((b.shape[1],) * 2)
    # tr (A B)^(1/2) = sum of sqrt of the eigenvalues of A^(1/2) B A^(1/2), symmetric and PSD
    w, v = np.linalg.eigh(cov_a)
    sa = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(sa @ cov_b @ sa)
    d = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())
    return max(d, 0.0) if d > 1e-9 * max(1.0, np.trace(cov_a) + np.trace(cov_b)) else 0.0


def gap(real: list[ClipStats], synthetic: list[ClipStats]) -> float:
    """The domain gap: :func:`frechet` of the two roots' per-clip features, each feature divided by
    its standard deviation over both roots' clips (a constant feature is left as it is)."""
    a = np.stack([s.features for s in real])
    b = np.stack([s.features for s in synthetic])
    sd = np.concatenate([a, b]).std(0)
    sd[sd == 0] = 1.0
    return frechet(a / sd, b / sd)


def _target(cls: str, dataset: str | None, real_classes: set[str]) -> str:
    """The real class a synthetic class stands for (same name, or the class map), else itself."""
    if cls in real_classes or not dataset:
        return cls
    from .train.mixing import synthetic_target
    return synthetic_target(cls, dataset, sorted(real_classes)) or cls


@dataclass
class CompareSummary:
    """What :func:`compare_roots` found and wrote: the gap overall and per class (``per_class[c]["gap"]``,
    None where one side lacks the class), clips compared per side, (side, clip, why) per clip skipped."""

    gap: float
    clips: dict[str, int]
    skipped: list[tuple[str, str, str]]
    overall: dict
    per_class: dict[str, dict]
    report: Path        # report.md
    stats: Path         # stats.json
    plots: list[Path]


def compare_roots(real: Path, synthetic: Path, out: Path, max_clips: int = 0) -> CompareSummary:
    """Flow statistics of the two roots side by side (``report.md``, ``stats.json``, plots in
    ``out``) and the gap; clips without complete flow are listed as skipped."""
    out = Path(out)
    stats, skipped, meta = {}, [], {}
    for side, root in zip(SIDES, (real, synthetic), strict=True):
        stats[side], sk, meta[side] = root_stats(root, side, max_clips)
        skipped += sk
        if not stats[side]:
            raise BadData(f"--{side} {root}: no clip with complete flow to compare"
                          + (f" ({len(sk)} skipped, e.g. {sk[0][1]}: {sk[0][2]})" if sk else ""))
    real_classes = {C.class_of(s.clip) for s in stats["real"]}
    group: dict[str, dict[str, list[ClipStats]]] = {"real": {}, "synthetic": {}}
    for s in stats["real"]:
        group["real"].setdefault(C.class_of(s.clip), []).append(s)
    for s in stats["synthetic"]:
        group["synthetic"].setdefault(_target(C.class_of(s.clip), meta["real"]["dataset"], real_classes),
                                      []).append(s)
    classes = sorted(set(group["real"]) | set(group["synthetic"]), key=lambda c: (c.lower(), c))
    g = gap(stats["real"], stats["synthetic"])
    per_class: dict[str, dict] = {}
    for c in classes:
        both = [group[side].get(c, []) for side in SIDES]
        per_class[c] = {side: _summary(v) for side, v in zip(SIDES, both, strict=True)}
        per_class[c]["gap"] = gap(*both) if all(len(v) > 0 for v in both) else None
    overall: dict = {side: _summary(stats[side]) for side in SIDES}
    overall["gap"] = g
    with output_folder(out, MARKER, {"made_by": "synthact compare"}):
        _write(out, real, synthetic, meta, stats, group, classes, overall, per_class, skipped, g)
    return CompareSummary(g, {side: len(stats[side]) for side in SIDES}, skipped, overall, per_class,
                          out / "report.md", out / "stats.json", _plot_paths(out))


def _write(out, real, synthetic, meta, stats, group, classes, overall, per_class, skipped, g) -> None:
    plots = _plots(out, stats, group, classes)
    C.atomic_write(out / "report.md", _markdown(real, synthetic, meta, overall, per_class, skipped, plots))
    C.write_json(out / "stats.json", {
        "gap": g, "features": list(FEATURES), "hist_edges_px": HIST_EDGES.round(4).tolist(),
        "roots": {side: {"root": str(root), **meta[side]} for side, root in zip(SIDES, (real, synthetic), strict=True)},
        "overall": overall, "per_class": per_class,
        "clips": {side: [{"clip": s.clip, **dict(zip(FEATURES, s.features.round(6).tolist(), strict=True))}
                         for s in stats[side]] for side in SIDES},
        "skipped": [{"side": a, "clip": b, "why": c} for a, b, c in skipped]})


def _summary(clips: list[ClipStats]) -> dict:
    if not clips:
        return {"clips": 0}
    f = np.stack([s.features for s in clips]).mean(0)
    h = np.sum([s.hist for s in clips], 0)
    return {"clips": len(clips), **{k: float(round(v, 6)) for k, v in zip(FEATURES, f, strict=True)},
            "hist": (h / max(h.sum(), 1)).round(6).tolist()}


def _cell(summary: dict, key: str, pct: bool = False) -> str:
    if not summary.get("clips"):
        return "–"
    v = summary[key]
    return (f"{100 * v:.0f} %" if v >= 0.1 else f"{100 * v:.1f} %") if pct else f"{v:.2f}"


def _markdown(real, synthetic, meta, overall, per_class, skipped, plots) -> str:
    lines = [f"# Domain gap: {real} (real) vs {synthetic} (synthetic)", "",
             f"**Gap: {overall['gap']:.4f}** (Fréchet distance between Gaussians fitted to per-clip flow features "
             f"{', '.join(FEATURES)}, each scaled by its standard deviation over both roots; 0 = the same)", "",
             f"Flow: real {meta['real']['method']}, synthetic {meta['synthetic']['method']}; frame size real "
             f"{meta['real']['size']}, synthetic {meta['synthetic']['size']}."]
    if meta["real"]["method"] != meta["synthetic"]["method"]:
        lines.append("Warning: the two roots hold flow of different methods; part of the gap is the method's.")
    if meta["real"]["size"] and meta["synthetic"]["size"] and meta["real"]["size"] != meta["synthetic"]["size"]:
        lines.append("Warning: frame sizes differ; pixel magnitudes (mean |flow|, 1 px and 4 px thresholds, "
                     "temporal energy) are not comparable across them, shares of the frame are.")
    lines += ["", "Each cell: real / synthetic (means over clips).", "",
              "| class | clips | mean \\|flow\\| px | moving > 1 px | > 4 px | moving box w x h | centroid x, y "
              "| temporal energy px | gap |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in [("**all**", overall)] + list(per_class.items()):
        r, s = row["real"], row["synthetic"]
        g = "–" if row["gap"] is None else f"{row['gap']:.3f}"
        lines.append(
            f"| {name} | {r['clips']} / {s['clips']} | {_cell(r, 'mean_flow')} / {_cell(s, 'mean_flow')} "
            f"| {_cell(r, 'moving_share', True)} / {_cell(s, 'moving_share', True)} "
            f"| {_cell(r, 'fast_share', True)} / {_cell(s, 'fast_share', True)} "
            f"| {_box(r)} / {_box(s)} | {_centroid(r)} / {_centroid(s)} "
            f"| {_cell(r, 'temporal_energy')} / {_cell(s, 'temporal_energy')} "
            f"| {g} |")
    lines += ["", "Plots: " + ", ".join(p.name for p in plots)]
    if skipped:
        lines += ["", f"Skipped {len(skipped)} clip(s):"] + [f"- {a} {b}: {c}" for a, b, c in skipped]
    return "\n".join(lines) + "\n"


def _box(s: dict) -> str:
    return "–" if not s.get("clips") else f"{s['box_width']:.2f} x {s['box_height']:.2f}"


def _centroid(s: dict) -> str:
    return "–" if not s.get("clips") else f"{s['centroid_x']:.2f}, {s['centroid_y']:.2f}"


def _plot_paths(out: Path) -> list[Path]:
    return [out / "flow_magnitude.png", out / "flow_features.png", out / "per_class.png"]


def _plots(out: Path, stats: dict, group: dict, classes: list[str]) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colours = {"real": "tab:orange", "synthetic": "tab:blue"}
    paths = _plot_paths(out)
    # 1: share of pixels per |flow| bin, overall
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    centres = np.arange(len(HIST_EDGES) - 1)
    for i, side in enumerate(SIDES):
        h = np.sum([s.hist for s in stats[side]], 0)
        ax.bar(centres + (i - 0.5) * 0.4, h / max(h.sum(), 1), 0.4, label=f"{side} ({len(stats[side])} clips)",
               color=colours[side])
    ax.set_xticks(centres, [f"{a:g}-{b:.0f}" if i == len(centres) - 1 else f"{a:g}-{b:g}"
                            for i, (a, b) in enumerate(zip(HIST_EDGES[:-1], HIST_EDGES[1:], strict=True))], fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("|flow| (px)")
    ax.set_ylabel("share of pixels")
    ax.set_title("Flow magnitude histogram", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with C.atomic_output(paths[0], ".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    # 2: per-clip features, one panel each
    fig, axes = plt.subplots(2, 4, figsize=(12, 5.5))
    rng = np.random.default_rng(0)
    for ax, (j, key) in zip(axes.flat, enumerate(FEATURES), strict=True):
        for i, side in enumerate(SIDES):
            v = np.array([s.features[j] for s in stats[side]])
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=12, alpha=0.6, color=colours[side])
            ax.hlines(v.mean(), i - 0.3, i + 0.3, color="k", lw=1.5)
        ax.set_xticks([0, 1], SIDES, fontsize=8)
        ax.set_xlim(-0.6, 1.6)
        ax.set_title(LABELS[key], fontsize=9)
    fig.suptitle("Per-clip flow features (dots: clips, bar: mean)", fontsize=10)
    fig.tight_layout()
    with C.atomic_output(paths[1], ".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    # 3: per class: mean |flow| and moving share, side by side
    fig, axes = plt.subplots(1, 2, figsize=(max(7, 0.5 * len(classes) + 4), 4))
    x = np.arange(len(classes))
    for ax, (j, key) in zip(axes, ((0, "mean_flow"), (1, "moving_share")), strict=True):
        for i, side in enumerate(SIDES):
            vals = [np.mean([s.features[j] for s in group[side][c]]) if group[side].get(c) else 0 for c in classes]
            ax.bar(x + (i - 0.5) * 0.4, vals, 0.4, label=side, color=colours[side])
        ax.set_xticks(x, [f"{c} ({len(group['real'].get(c, []))}/{len(group['synthetic'].get(c, []))})"
                          for c in classes], rotation=60, ha="right", fontsize=8)
        ax.set_title(LABELS[key], fontsize=9)
    axes[0].legend(fontsize=8, title="clips: real/synthetic", title_fontsize=7)
    fig.tight_layout()
    with C.atomic_output(paths[2], ".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return paths
