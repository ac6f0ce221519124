"""A finished run's results, as its ``metrics.json`` holds them, typed: what :func:`~.loop.fit`
returns, what a grid cell records and what a rerun of the grid reads back to skip the cell."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import contract as C
from ..errors import BadData


@dataclass(frozen=True)
class RunMetrics:
    """Top-1 and mean class accuracy over ``n`` scored clips under ``protocol`` (tsn or fast), and
    ``fields``, the whole object as written: ``per_class``, ``confusion``, and after training
    ``history``, ``timing``, ``selection``, ``adapt_bn``; after fusion ``runs`` and ``weights``."""
    top1: float
    mean_class: float
    n: int
    protocol: str
    fields: dict[str, Any]

    @classmethod
    def of(cls, m: Any, where: Any) -> RunMetrics:
        """Check a metrics object; ``where`` (its file) is named in the one-line :class:`BadData`."""
        if not isinstance(m, dict):
            raise BadData(f"{where}: not a run's metrics (expected a JSON object)")
        for key in ("top1", "mean_class"):
            if not (C.finite(m.get(key)) and 0 <= m[key] <= 1):
                raise BadData(f"{where}: {key} {m.get(key)!r}: expected an accuracy in 0..1")
        if not C.whole(m.get("n"), 0) or not isinstance(m.get("protocol"), str):
            raise BadData(f"{where}: n {m.get('n')!r}, protocol {m.get('protocol')!r}: expected a clip count and "
                          f"the protocol's name")
        return cls(float(m["top1"]), float(m["mean_class"]), m["n"], m["protocol"], m)

    @property
    def last_train_acc(self) -> float | None:
        """The last epoch's training accuracy (None for fusion): a set the model cannot fit shows
        here, not in top-1 alone."""
        history = self.fields.get("history")
        last = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else {}
        return last.get("train_acc") if C.finite(last.get("train_acc")) else None

    @property
    def adapted(self) -> bool:
        """Scored with BatchNorm statistics of the real training clips (``--adapt-bn``)."""
        return "adapt_bn" in self.fields


def read_metrics(path: Path) -> RunMetrics:
    """A run folder's ``metrics.json``, checked (see :meth:`RunMetrics.of`)."""
    return RunMetrics.of(C.read_json(Path(path)), path)
