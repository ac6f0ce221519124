"""Run one function over many clips in worker processes, surviving the death of any worker.

Render and flow both work clip by clip; a clip is the unit of atomic completion, so the pool only
has to say, for each task, whether it finished and with what result. A worker killed mid-clip
(``kill -9``, out of memory) breaks a ``ProcessPoolExecutor``; we rebuild it and retry the clips
that were in flight, counting attempts so that a clip that kills its worker every time fails
instead of looping.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from .errors import Interrupted, SynthactError, one_line
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
    stop: list | None = None,
) -> Iterator[Outcome]:
    """Yield one :class:`Outcome` per task, in completion order.

    ``fn`` and ``initializer`` must be importable module-level functions (spawned workers).
    At most ``workers`` tasks are in flight, so a broken pool retries only those. Under Ray each
    worker reserves ``resources`` (``num_cpus``, ``num_gpus``) and ``workers=None`` means as many
    as the cluster holds. Once ``stop`` holds a signal number (see :func:`stop_signals`), the tasks
    finished so far are yielded, the workers are ended and the iteration ends early.
    """
    if executor.is_ray:
        for out in run_ray_tasks(_call, fn, list(tasks), workers, initializer, initargs, max_attempts, executor,
                                 resources or {"num_cpus": 1}, stop):
            yield Outcome(*out)
        return
    yield from _run_local(fn, tasks, workers or 1, initializer, initargs, max_attempts, stop)


def _init_local_worker(initializer: Callable | None, *initargs) -> None:
    """A local worker leaves Ctrl-C to the main process (a terminal sends it to the whole group):
    the main one records what is finished and then ends the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """Stop every worker of ``pool`` now (their unfinished clips are staged, never committed)."""
    procs = list((pool._processes or {}).values())   # the executor has no public way to end its workers
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join(5)


def _run_local(fn: Callable, tasks: Iterable[Any], workers: int, initializer: Callable | None, initargs: tuple,
               max_attempts: int, stop: list | None = None) -> Iterator[Outcome]:
    here = node_name()
    pending = list(tasks)[::-1]
    attempts: dict[int, int] = {}
    ctx = mp.get_context("spawn")  # bpy and OpenCV must not be forked
    while pending:
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_local_worker,
                                   initargs=(initializer, *initargs))
        running: dict[Future, Any] = {}
        broken = False
        try:
            while (pending or running) and not broken:
                while pending and len(running) < workers and not stop:
                    task = pending.pop()
                    running[pool.submit(_call, fn, task)] = task
                # a signal only sets ``stop``: look at it a few times a second
                done, _ = wait(running, timeout=0.25 if stop is not None else None, return_when=FIRST_COMPLETED)
                if stop and not done:
                    _end_workers(pool)
                    return
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
                for task in running.values():
                    key = id(task)
                    attempts[key] = attempts.get(key, 0) + 1
                    if attempts[key] >= max_attempts:
                        yield Outcome(task, None, f"worker process died {attempts[key]} times on this task")
                    else:
                        pending.append(task)
        finally:
            pool.shutdown(wait=not broken and not stop, cancel_futures=True)


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
    failures, work, start = [], 0, time.perf_counter()
    nodes: dict[str | None, int] = {}
    if workers is not None:
        workers = max(1, min(workers, len(tasks) or 1))
    finished = 0
    with stop_signals() as stop:
        for out in run_tasks(fn, tasks, workers, initializer, initargs, executor=executor, resources=resources,
                             stop=stop):
            done = 0
            if out.ok:
                done = on_ok(out)
                work += done
                finished += 1
                nodes[out.node] = nodes.get(out.node, 0) + 1
            else:
                failures.append((name(out.task), out.error))
                bar.write(f"failed {name(out.task)}: {out.error}")
            bar.update(1, done)
        bar.close()
    if stop:
        left = len(tasks) - finished - len(failures)
        raise Interrupted(f"{signal.Signals(stop[0]).name} during {desc or 'the batch'}: {finished} of {len(tasks)} "
                          f"{unit}s finished and recorded, {len(failures)} failed, {left} not done; rerun the same "
                          f"command to do the rest", 128 + stop[0])
    return BatchResult(failures, time.perf_counter() - start, work, nodes)


@contextmanager
def stop_signals() -> Iterator[list]:
    """While the body runs, SIGINT (Ctrl-C) and SIGTERM append their number to the list yielded
    instead of killing the process mid-record: the batch loop reads it between tasks, records what
    its workers finished, ends them and stops (:class:`~.errors.Interrupted`). Outside the main
    thread, where Python cannot take signals, the list stays empty."""
    stop: list = []
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    saved = {s: signal.signal(s, lambda signum, _frame: stop.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
