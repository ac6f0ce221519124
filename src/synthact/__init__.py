"""synthact: synthetic action clips, TSN optical flow and training, callable without the CLI.

The stages, in pipeline order, each reading and writing the one data contract (:mod:`synthact.contract`)::

    render_batch(RenderJob(out, classes, per_class, ...)) -> RenderSummary   synthetic clips into a root
    prepare(PrepareJob(dataset, videos, splits, out, ...)) -> PrepareSummary real videos into a root
    merge_roots(out, sources) -> MergeSummary                                 roots rendered apart, joined
    run_flow(root, method, workers) -> FlowSummary                            flow for every clip of a root
    export_root(root, out, "webdataset" | "videos") -> ExportSummary          shards or mp4s of a root
    select_clips(real, real_root, synthetic_root, synthetic, ...) -> Selection which clips a run uses
    fit(TrainConfig(out, real, real_root, ...)) -> RunMetrics                 train and evaluate one TSN
    fuse_to(out, runs, weights) -> RunMetrics                                 two-stream fusion of runs
    read_metrics(run / "metrics.json") -> RunMetrics                          a finished run's results
    run_grid(config, out) -> GridSummary                                      an ablation grid, table, plot
    load_profile(name_or_path) -> Profile                                     a dataset's shot statistics
    compare_roots(real, synthetic, out) -> CompareSummary                     the flow domain gap of two roots
    predict_videos(runs, paths) -> PredictSummary                             trained runs on video files
    Executor("ray", address)                                                  where clip tasks run (executor=)

Refusals raise the types of :mod:`synthact.errors`. Names load their module on first use, so
``import synthact`` stays cheap (no bpy, torch or OpenCV until a stage needs them).
"""
from __future__ import annotations

import importlib

_API = {
    "RenderJob": "synthact.render.jobs", "RenderSummary": "synthact.render.jobs",
    "render_batch": "synthact.render.jobs",
    "PrepareJob": "synthact.data.prepare", "PrepareSummary": "synthact.data.prepare",
    "prepare": "synthact.data.prepare",
    "merge_roots": "synthact.data.merge", "MergeSummary": "synthact.data.merge",
    "FlowSummary": "synthact.flow.extract", "run_flow": "synthact.flow.extract",
    "export_root": "synthact.export", "ExportSummary": "synthact.export",
    "Selection": "synthact.train.mixing", "select_clips": "synthact.train.mixing",
    "TrainConfig": "synthact.train.loop", "fit": "synthact.train.loop",
    "fuse_to": "synthact.train.evaluate",
    "RunMetrics": "synthact.train.results", "read_metrics": "synthact.train.results",
    "run_grid": "synthact.ablate", "GridSummary": "synthact.ablate",
    "Profile": "synthact.data.profile", "load_profile": "synthact.data.profile",
    "compare_roots": "synthact.compare", "CompareSummary": "synthact.compare",
    "predict_videos": "synthact.train.predict", "PredictSummary": "synthact.train.predict",
    "Executor": "synthact.executor",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    """Load a public name's module on first access."""
    if name not in _API:
        raise AttributeError(f"module 'synthact' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    """The public API, for completion in notebooks."""
    return __all__
