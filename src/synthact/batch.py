"""Run one function over many clips in worker processes, surviving the death of any worker.

Render and flow both work clip by clip; a clip is the unit of atomic completion, so the pool only
has to say, for each task, whether it finished and with what result. A worker killed mid-clip
(``kill -9``, out of memory) breaks a ``ProcessPoolExecutor``; we rebuild it and retry the clips
that were in flight, counting attempts so that a clip that kills its worker every time fails
instead of looping.
"""
from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from .errors import SynthactError, one_line
from .executor import LOCAL, Executor, node_name, run_ray_tasks
from .progress import Progress


@dataclass
class Outcome:
    """What became of one task: its result, or the one-line error it failed with."""
    task: Any
    result: Any = None
    error: str | None = None
    node: str | None = None    # the machine that ran it

    @property
    def ok(self) -> bool:
        """True when the task finished."""
        return self.error is None


def _call(fn: Callable, task: Any) -> tuple[Any, str | None]:
    try:
        return fn(task), None
    except SynthactError as exc:  # a refusal already says what and where
        return None, one_line(exc)
    except Exception as exc:  # one failed clip must not stop the batch
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return None, last


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Iterable[Any],
    workers: int | None,
    initializer: Callable | None = None,
    initargs: tuple = (),
    max_attempts: int = 3,
    executor: Executor = LOCAL,
    resources: dict | None = None,
) -> Iterator[Outcome]:
    """Yield one :class:`Outcome` per task, in completion order.

    ``fn`` and ``initializer`` must be importable module-level functions (spawned workers).
    At most ``workers`` tasks are in flight, so a broken pool retries only those. Under Ray each
    worker reserves ``resources`` (``num_cpus``, ``num_gpus``) and ``workers=None`` means as many
    as the cluster holds.
    """
    if executor.is_ray:
        for out in run_ray_tasks(_call, fn, list(tasks), workers, initializer, initargs, max_attempts, executor,
                                 resources or {"num_cpus": 1}):
            yield Outcome(*out)
        return
    yield from _run_local(fn, tasks, workers or 1, initializer, initargs, max_attempts)


def _run_local(fn: Callable, tasks: Iterable[Any], workers: int, initializer: Callable | None, initargs: tuple,
               max_attempts: int) -> Iterator[Outcome]:
    here = node_name()
    pending = list(tasks)[::-1]
    attempts: dict[int, int] = {}
    ctx = mp.get_context("spawn")  # bpy and OpenCV must not be forked
    while pending:
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs)
        running: dict[Future, Any] = {}
        broken = False
        try:
            while (pending or running) and not broken:
                while pending and len(running) < workers:
                    task = pending.pop()
                    running[pool.submit(_call, fn, task)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = running.pop(fut)
                    try:
                        result, error = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        running[fut] = task  # retried below with the rest in flight
                        continue
                    yield Outcome(task, result, error, here)
            if broken:
                for fut, task in running.items():
                    key = id(task)
                    attempts[key] = attempts.get(key, 0) + 1
                    if attempts[key] >= max_attempts:
                        yield Outcome(task, None, f"worker process died {attempts[key]} times on this task")
                    else:
                        pending.append(task)
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)


@dataclass
class BatchResult:
    """A whole batch: the failures, wall time and the work counted by ``on_ok``."""
    failures: list        # (task name, error)
    seconds: float
    work: int             # frames, pairs... whatever on_ok counted
    nodes: dict           # machine -> tasks it finished


def run_batch(fn: Callable, tasks: list, workers: int | None, *, name: Callable[[Any], str],
              on_ok: Callable[[Outcome], int], initializer: Callable | None = None, initargs: tuple = (),
              desc: str = "", unit: str = "clip", rate: str = "frames/s", progress: bool = True,
              executor: Executor = LOCAL, resources: dict | None = None) -> BatchResult:
    """:func:`run_tasks` with progress (a bar on a terminal, plain lines in a log: tasks/s, ETA and a
    work rate) and a failure list.

    ``on_ok`` records a finished task (a manifest line, say) and returns how much work it was.
    """
    bar = Progress(len(tasks), desc, unit, rate, enabled=progress)
    failures, work, start, nodes = [], 0, time.perf_counter(), {}
    if workers is not None:
        workers = max(1, min(workers, len(tasks) or 1))
    for out in run_tasks(fn, tasks, workers, initializer, initargs, executor=executor, resources=resources):
        done = 0
        if out.ok:
            done = on_ok(out)
            work += done
            nodes[out.node] = nodes.get(out.node, 0) + 1
        else:
            failures.append((name(out.task), out.error))
            bar.write(f"failed {name(out.task)}: {out.error}")
        bar.update(1, done)
    bar.close()
    return BatchResult(failures, time.perf_counter() - start, work, nodes)
