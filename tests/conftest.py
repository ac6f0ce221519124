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
    return path


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a console script from this environment, capturing its output."""
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout)


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
