"""Where clip tasks run: this machine's process pool, or a Ray cluster.

Ray runs the same task functions as the local pool, in actors: one actor is one worker process
that runs the stage's initializer once (one bpy, one OpenCV method, one CUDA context) and then
takes clip after clip, as a local worker does. An actor that dies mid-clip (killed, out of memory,
its node lost) is restarted by Ray and its clip retried, a bounded number of times; clip commits
are atomic on the shared root, so a retried clip starts from nothing. The driver alone writes
manifests, as with the local pool, so a killed driver resumes on rerun as before.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import BadConfig, MissingDependency

KINDS = ("local", "ray")
PROBE_PREFIX = ".synthact-probe-"


@dataclass(frozen=True)
class Executor:
    """``local`` (a process pool here) or ``ray`` (the cluster at ``address``, else the one in
    ``RAY_ADDRESS``, else a Ray started on this machine for the run)."""

    kind: str = "local"
    address: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise BadConfig(f"--executor {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.address and self.kind != "ray":
            raise BadConfig("--ray-address is for --executor ray")

    @property
    def is_ray(self) -> bool:
        """True when tasks go to Ray."""
        return self.kind == "ray"

    def start(self) -> None:
        """Join or start the cluster (no-op for the local pool): called before a stage touches anything."""
        if self.is_ray:
            connect(self.address)

    def check_root(self, root: Path) -> None:
        """Refuse a root that some node of the cluster cannot see (no-op for the local pool)."""
        if self.is_ray:
            self.start()
            check_shared(Path(root))

    def resources(self) -> dict:
        """The cluster's totals as a worker asks for them (``num_cpus``, ``num_gpus``); none locally."""
        if not self.is_ray:
            return {}
        import ray
        self.start()
        have = ray.cluster_resources()
        return {key: have.get(name, 0) for key, name in _RAY_NAMES.items()}

    def require(self, per_task: dict) -> None:
        """Refuse workers of ``per_task`` resources that no node could hold (they would wait for ever)."""
        have = self.resources()
        short = [f"{v:g} {_RAY_NAMES[k]}" for k, v in per_task.items() if have and v and have[k] < v]
        if short:
            raise BadConfig(f"--executor ray: each worker needs {', '.join(short)}, more than the whole cluster "
                            f"has ({', '.join(f'{have[k]:g} {n}' for k, n in _RAY_NAMES.items())})")

    def slots(self, per_task: dict) -> int:
        """How many tasks of this size fit at once (local: 1; the stage's ``--workers`` decides)."""
        have = self.resources()
        fits = [int(have[k] // v) for k, v in per_task.items() if have and v]
        return max(1, min(fits)) if fits else max(1, int(have.get("num_cpus", 1)))


LOCAL = Executor()
_RAY_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU"}


def cluster_gpus(executor: Executor) -> int:
    """GPUs the Ray cluster offers (0 for the local pool)."""
    return int(executor.resources().get("num_gpus", 0))


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), or start a Ray on this machine."""
    try:
        import ray
    except ImportError:
        raise MissingDependency("--executor ray needs Ray, a dependency of synthact: "
                                "pip install -c constraints.txt ray==2.60.0") from None
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    # the workers' output goes to Ray's log files; the driver keeps its own progress and summary
    kwargs = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
    # Ray says on every start that its (default) token authentication is on: not news per command
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address and address != "auto":
        _reachable(address)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(include_dashboard=False, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise BadConfig(f"--executor ray: cannot start or join {where}: {str(exc).strip().splitlines()[0]}") from None


def _reachable(address: str, timeout: float = 5.0) -> None:
    """A cluster address that answers no TCP connect is refused here: Ray itself retries for minutes."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise BadConfig(f"--ray-address {address!r}: expected HOST:PORT (the head's GCS port, 6379 by default)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            answer = _grpc_answer(sock, timeout)
    except OSError as exc:
        raise BadConfig(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
                        f"with `ray start --head` or leave the address out to start a Ray on this machine") from None
    if answer is not None:
        raise BadConfig(f"--ray-address {address}: something listens there but it is not a Ray cluster's GCS "
                        f"({answer}); give the head's GCS port (6379 by default)")


# HTTP/2's client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS) must answer with a
# SETTINGS frame of its own (RFC 9113, 3.4); anything else that listens does not
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _grpc_answer(sock: socket.socket, timeout: float) -> str | None:
    """None when the peer speaks HTTP/2 as gRPC does, else what it did instead (in words), within
    ``timeout`` seconds in all. A TLS cluster (``RAY_USE_TLS``) answers only after a TLS handshake:
    the TCP check is all there."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None
    deadline = time.monotonic() + timeout
    sock.settimeout(timeout)
    sock.sendall(_H2_PREFACE)
    head = b""
    try:
        while len(head) < 9:
            sock.settimeout(max(0.01, deadline - time.monotonic()))   # a trickle cannot stretch the deadline
            chunk = sock.recv(9 - len(head))
            if not chunk:
                return "it closed the connection"
            head += chunk
    except socket.timeout:
        return f"no HTTP/2 answer within {timeout:g} s" if not head else "it answered but not in HTTP/2"
    if head[3] != 4 or head[5:9] != bytes(4):      # frame type SETTINGS on stream 0
        return "it answered but not in HTTP/2"
    return None


def node_name() -> str:
    """The name a worker reports its clips under (per-node counts in summaries)."""
    return socket.gethostname()


class _Worker:
    """One Ray worker process: the stage's initializer once, then task after task."""

    def __init__(self, initializer: Callable | None, initargs: tuple):
        if initializer is not None:
            initializer(*initargs)
        self.node = node_name()

    def run(self, call: Callable, fn: Callable, task: Any) -> tuple[Any, str | None, str]:
        result, error = call(fn, task)
        return result, error, self.node


def run_ray_tasks(call: Callable, fn: Callable, tasks: list, workers: int | None, initializer: Callable | None,
                  initargs: tuple, max_attempts: int, executor: Executor, resources: dict,
                  stop: list | None = None) -> Iterator[tuple]:
    """Yield (task, result, error, node) per task, in completion order, from ``workers`` actors of
    ``resources`` each (default: as many as the cluster holds); once ``stop`` holds a signal, end
    after yielding those finished (the actors are killed on the way out)."""
    import ray
    from ray.exceptions import RayActorError
    executor.start()
    if not tasks:
        return
    executor.require(resources)
    n = min(len(tasks), workers or executor.slots(resources))
    cls = ray.remote(_Worker).options(**resources, max_restarts=-1, max_task_retries=max_attempts - 1)
    actors = [cls.remote(initializer, initargs) for _ in range(n)]
    pending, idle = list(tasks)[::-1], list(actors)
    running: dict = {}
    try:
        while pending or running:
            while pending and idle and not stop:
                actor, task = idle.pop(), pending.pop()
                running[actor.run.remote(call, fn, task)] = (actor, task)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.25 if stop is not None else None) \
                if running else ([], [])
            if stop and not ready:
                return
            for ref in ready:
                actor, task = running.pop(ref)
                idle.append(actor)
                try:
                    result, error, node = ray.get(ref)
                except RayActorError as exc:
                    if "__init__" in str(exc) or "constructor" in str(exc).lower():
                        # the initializer itself failed: every task on this worker would fail alike
                        yield task, None, f"worker failed to start: {_first_line(exc)}", None
                    else:
                        yield task, None, f"worker process died {max_attempts} times on this task", None
                    continue
                yield task, result, error, node
    finally:
        for actor in actors:
            ray.kill(actor)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _probe(root: str, token: str, name: str) -> str | None:
    """On one node: see the driver's probe file, write this node's; a problem as text."""
    mine = Path(root) / f"{PROBE_PREFIX}{token}"
    try:
        if mine.read_text() != token:
            return "sees another file at the probe's place"
        (Path(root) / f"{PROBE_PREFIX}{token}-{name}").write_text(token)
    except OSError as exc:
        return f"{exc.strerror or exc}"
    return None


def check_shared(root: Path) -> None:
    """Every alive node must see what the driver writes in ``root`` and the driver what they write:
    clip commits and manifests live there. Else one line that points at ``synthact merge``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    token = uuid.uuid4().hex
    probe = root / f"{PROBE_PREFIX}{token}"
    probe.write_text(token)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    try:
        remote = ray.remote(num_cpus=0)(_probe)
        refs = {n["NodeID"]: remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(str(root), token, n["NodeID"][:12]) for n in nodes}
        for node_id, ref in refs.items():
            problem = ray.get(ref)
            if problem is None and not (root / f"{PROBE_PREFIX}{token}-{node_id[:12]}").exists():
                problem = "wrote a probe file the driver cannot see"
            if problem:
                address = next(n["NodeManagerAddress"] for n in nodes if n["NodeID"] == node_id)
                raise BadConfig(f"{root}: not on storage every Ray node sees (node {address}: {problem}); put the "
                                f"root on shared storage, or render on each machine into its own root and join "
                                f"them with `synthact merge`")
    finally:
        for p in root.glob(f"{PROBE_PREFIX}{token}*"):
            p.unlink(missing_ok=True)
