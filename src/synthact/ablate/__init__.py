"""``synthact ablate``: a data-ablation grid of train-tsn runs, and the paper's kind of table and plot.

The grid crosses synthetic count, real fraction (0 means synthetic only), modality (rgb, flow and
their two-stream fusion), synthetic set, recipe, split and seed. Each cell is one run folder; a
cell with metrics is skipped on a rerun, a failed cell is recorded and the grid goes on.

``config`` reads and checks the YAML, ``grid`` crosses its axes into cells, ``roots`` makes the
roots a config asks for (``prepare:``, ``render:``), ``run`` trains the cells (locally, on Ray,
data-parallel), ``report`` and ``per_class`` write the tables and plots.
"""
from .config import load_config, shipped_configs
from .grid import Cell, cells
from .run import GridSummary, run_grid

__all__ = ["Cell", "GridSummary", "cells", "load_config", "run_grid", "shipped_configs"]
