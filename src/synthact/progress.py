"""Progress that suits where it is read: a redrawn bar on a terminal, plain lines in a log.

A SLURM or CI log of a redrawn bar holds thousands of carriage-return frames; when stderr is not
a terminal a step prints one line every ``every`` seconds or each tenth of the work instead, with
counts, rates and the time left, and one line when it ends.
"""
from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import TextIO

from tqdm import tqdm


def _plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


def _eta(seconds: float) -> str:
    return str(timedelta(seconds=int(max(0.0, seconds))))


class Progress:
    """Counts of a long step (items done, and a work count such as frames) shown as it goes."""

    def __init__(self, total: int, desc: str, unit: str = "clip", rate: str = "frames/s", enabled: bool = True,
                 stream: TextIO | None = None, every: float = 30.0, leave: bool = True):
        self.total, self.desc, self.unit, self.rate = total, desc, unit, rate
        self.stream = stream or sys.stderr
        self.enabled, self.every = enabled, every
        self.done = self.work = 0
        self.start = self._last = time.perf_counter()
        self._tenth = 0
        tty = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        self.bar = tqdm(total=total, unit=unit, desc=desc, file=self.stream, leave=leave) if enabled and tty else None

    def update(self, n: int = 1, work: int = 0) -> None:
        """``n`` more items finished, ``work`` more units of work (frames, pairs) done."""
        self.done += n
        self.work += work
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix({self.rate: f"{self.work / self._elapsed():.1f}"})
            return
        tenth = 10 * self.done // max(1, self.total)
        now = time.perf_counter()
        if self.enabled and (now - self._last >= self.every or tenth > self._tenth) and self.done < self.total:
            self._tenth, self._last = tenth, now
            self._line()

    def write(self, message: str) -> None:
        """A line on stdout that must not tear the bar (a failed item as it happens; the command's
        own failure list, on stderr, comes at the end)."""
        if self.bar is not None:
            self.bar.write(message, file=sys.stdout)
        elif self.enabled:
            print(message, file=sys.stdout, flush=True)

    def close(self) -> None:
        """End the bar, or print the final line."""
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.total:
            self._line()

    def _elapsed(self) -> float:
        return max(1e-9, time.perf_counter() - self.start)

    def _line(self) -> None:
        t = self._elapsed()
        left = (self.total - self.done) * t / self.done if self.done else 0.0
        units = _plural(self.unit)
        print(f"{self.desc}: {self.done}/{self.total} {units} ({100 * self.done // max(1, self.total)}%), "
              f"{self.done / t:.2f} {units}/s, {self.work / t:.1f} {self.rate}, "
              f"elapsed {_eta(t)}, ETA {_eta(left)}", file=self.stream, flush=True)
