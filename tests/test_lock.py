"""One writer per root: concurrent render, flow and prepare runs, --wait, killed holders, duplicates."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from synthact import contract as C
from synthact.errors import RootBusy
from synthact.render.jobs import RenderJob, render_batch
from synthact.rootlock import LOCK, root_lock

from .conftest import BIN, records_of, refusal, run_cli, wait_for_manifest

pytestmark = pytest.mark.slow   # renders in competing processes: not in `make test-fast`

RENDER = ("--classes", "wave,punch,clap", "--per-class", "2", "--frames", "4", "--size", "64x48", "--seed", "1",
          "--quiet")


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / args[0]), *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _holds(folder: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Block until ``proc`` holds ``folder``'s lock (its start-up takes longer on a loaded machine)."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        try:
            if json.loads((Path(folder) / LOCK).read_text() or "{}").get("pid") == proc.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{proc.args}: never took the lock of {folder} (exit {proc.poll()})")


def _both(folder, a: tuple, b: tuple, timeout: float = 600) -> list[tuple[int, str, str]]:
    """Start the first command, and the second as soon as the first holds ``folder``'s lock, so
    that both run at once; their (exit code, stdout, stderr), in start order."""
    first = _start(*a)
    _holds(folder, first)
    second = _start(*b)
    outs = [p.communicate(timeout=timeout) for p in (first, second)]
    return [(p.returncode, *o) for p, o in zip((first, second), outs, strict=True)]


def _refusal(err: str) -> str:
    return refusal(subprocess.CompletedProcess([], 2, "", err))


def test_two_renders_into_one_root_one_renders_the_other_refuses(tmp_path):
    out = str(tmp_path / "synth")
    (rc1, out1, err1), (rc2, _, err2) = _both(out, ("render-clips", "--out", out, *RENDER),
                                             ("render-clips", "--out", out, *RENDER))
    assert rc1 == 0, err1
    assert "6 rendered" in out1
    assert rc2 == 2
    line = _refusal(err2)
    assert f"{out}: in use by pid" in line and "render-clips" in line and "--wait" in line
    assert len((tmp_path / "synth" / C.MANIFEST).read_text().splitlines()) == 6
    assert len((tmp_path / "synth" / "annotations" / "synthetic_rawframes.txt").read_text().splitlines()) == 6


def test_with_wait_the_second_render_finds_everything_done(tmp_path):
    out = str(tmp_path / "synth")
    (rc1, out1, err1), (rc2, out2, err2) = _both(out, ("render-clips", "--out", out, *RENDER),
                                                ("render-clips", "--out", out, *RENDER, "--wait"))
    assert (rc1, rc2) == (0, 0), err1 + err2
    assert "6 rendered" in out1
    assert "0 rendered, 6 already done" in out2
    assert "waiting for pid" in out2 + err2
    assert len(records_of(tmp_path / "synth")) == 6


def test_a_killed_lock_holder_does_not_block_the_next_run(tmp_path):
    out = tmp_path / "synth"
    proc = _start("render-clips", "--out", str(out), *RENDER)
    wait_for_manifest(out, 1, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    r = run_cli("render-clips", "--out", str(out), *RENDER)
    assert r.returncode == 0, r.stderr
    assert "0 failed of 6 clips" in r.stdout
    assert len(records_of(out)) == 6


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("lock") / "synth"
    assert render_batch(RenderJob(out=root, classes="wave,punch,clap", per_class=3, frames=8, size=(96, 72),
                                  workers=2, seed=1), progress=False).ok
    return root


def test_two_flow_runs_one_computes_the_other_refuses_and_nothing_is_lost(rendered):
    root = str(rendered)
    (rc1, out1, err1), (rc2, _, err2) = _both(root, ("extract-flow", "--root", root, "--method", "tvl1-fast",
                                                     "--quiet"),
                                             ("extract-flow", "--root", root, "--method", "tvl1-fast", "--quiet"))
    assert rc1 == 0, err1
    assert "9 clips done, 0 already done, 0 failed of 9" in out1
    assert rc2 == 2 and "in use by pid" in _refusal(err2)
    assert len(records_of(rendered, C.FLOW_MANIFEST)) == 9
    r = run_cli("extract-flow", "--root", root, "--method", "tvl1-fast", "--resume", "--wait", "--quiet")
    assert r.returncode == 0 and "0 clips done, 9 already done" in r.stdout


def test_prepare_twice_at_once_one_prepares_the_other_refuses_then_waits(fixtures, tmp_path):
    out = str(tmp_path / "ucf")
    args = ("synthact", "prepare", "ucf101", "--videos", str(fixtures / "real/videos/ucf101"),
            "--splits", str(fixtures / "real/splits/ucf101"), "--out", out, "--classes", "PushUps",
            "--size", "96x72", "--flow", "tvl1", "--allow-missing", "--quiet")  # TV-L1: the first holds on
    (rc1, out1, err1), (rc2, _, err2) = _both(out, args, args)
    assert rc1 == 0, err1
    assert rc2 == 2 and "in use by pid" in _refusal(err2)
    prepared = len(records_of(tmp_path / "ucf"))
    assert prepared >= 1
    (rc1, _, err1), (rc2, out2, err2) = _both(out, args, (*args, "--wait"))
    assert (rc1, rc2) == (0, 0), err1 + err2
    assert f"0 videos prepared, {prepared} already done" in out2


def test_the_lock_names_its_holder_and_is_released(tmp_path):
    with root_lock(tmp_path):
        info = json.loads((tmp_path / ".synthact.lock").read_text())
        assert info["pid"] == os.getpid() and info["host"] and info["started"]
        r = run_cli("render-clips", "--out", str(tmp_path), *RENDER)
        assert r.returncode == 2 and f"in use by pid {os.getpid()}" in _refusal(r.stderr)
        with pytest.raises(RootBusy):
            render_batch(RenderJob(out=tmp_path, classes="wave", per_class=1, frames=2, size=(64, 48)),
                         progress=False)
    with root_lock(tmp_path):  # released on exit
        pass


def test_a_duplicated_manifest_line_gives_one_clip(tmp_path):
    out = tmp_path / "synth"
    job = RenderJob(out=out, classes="wave", per_class=2, frames=3, size=(64, 48))
    assert render_batch(job, progress=False).ok
    lines = (out / C.MANIFEST).read_text().splitlines()
    (out / C.MANIFEST).write_text("\n".join(lines + [lines[0]]) + "\n")  # appended by hand
    assert [r["clip"] for r in records_of(out)] == [json.loads(ln)["clip"] for ln in lines]
    r = run_cli("render-clips", "--out", str(out), "--classes", "wave", "--per-class", "2", "--frames", "3",
                "--size", "64x48", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "duplicate record" in r.stderr and "0 rendered, 2 already done" in r.stdout
    entries = C.read_annotations(out / C.ANNOTATIONS / "synthetic_rawframes.txt")
    assert sorted(e.clip for e in entries) == sorted(json.loads(ln)["clip"] for ln in lines)
    ann = out / C.ANNOTATIONS / "synthetic_rawframes.txt"
    ann.write_text(ann.read_text() + ann.read_text().splitlines()[0] + "\n")
    assert len(C.read_annotations(ann)) == 2
