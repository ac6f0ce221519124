"""Shared test helpers: the fixture folder and running the CLI as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """``$SYNTHACT_FIXTURES`` (CI: ../shared/data); tests that need it skip where it is unset."""
    value = os.environ.get("SYNTHACT_FIXTURES")
    if not value:
        pytest.skip("SYNTHACT_FIXTURES is not set: real-data fixtures unavailable")
    path = Path(value)
    assert path.is_dir(), f"SYNTHACT_FIXTURES={value} does not exist"
    return path.resolve()  # `make test` passes ../shared/data; tests write paths into files elsewhere


def run_cli(*args: str, timeout: float = 600, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run a console script from this environment, capturing its output (``env``: instead of ours)."""
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd)


def refusal(r: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2 and exactly one ``error:`` line on stderr holding ``words``, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def records_of(root: Path, name: str = "manifest.jsonl") -> list[dict]:
    """A manifest's lines as the JSON objects written (what the tests compare)."""
    from synthact.contract import read_manifest
    return [line.fields for line in read_manifest(root, name)]


def wait_for_manifest(root: Path, n: int, proc: subprocess.Popen, name: str = "manifest.jsonl",
                      timeout: float = 240) -> None:
    """Block until ``n`` clips are recorded in ``root/name`` (a run to be killed mid-way)."""
    from synthact.contract import read_manifest
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if len(read_manifest(root, name)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"run did not reach {n} finished clips in {name} (exit {proc.poll()})")


def small_root(root: Path, classes: str) -> Path:
    """Two clips per class of 4 frames at 64x48, with DIS flow: a root for tests to read or abuse."""
    from synthact.render.jobs import RenderJob, render_batch
    assert render_batch(RenderJob(out=root, classes=classes, per_class=2, frames=4, size=(64, 48), workers=2),
                        progress=False).ok
    assert run_cli("extract-flow", "--root", str(root), "--method", "dis", "--quiet").returncode == 0
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A small rendered root with flow (two classes), to be copied and abused by each test."""
    return small_root(tmp_path_factory.mktemp("safety") / "root", "wave,clap")


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """A rendered synthetic root and a target-domain root (3 classes, 12 frames, DIS flow), with
    target split lists of 4 train + 2 val clips per class; rendered once per test session."""
    from synthact.data.target_domain import write_split_lists
    from synthact.flow.extract import run_flow
    from synthact.render.jobs import RenderJob, render_batch
    base = tmp_path_factory.mktemp("train")
    synth, target = base / "synth", base / "target"
    for root, n, seed in ((synth, 8, 0), (target, 6, 100)):
        assert render_batch(RenderJob(out=root, classes="wave,squat,jumping_jack", per_class=n, frames=12,
                                      size=(128, 96), workers=2, seed=seed), progress=False).ok
        assert run_flow(root, "dis", 2, progress=False).ok
    write_split_lists(target)
    return synth, target
