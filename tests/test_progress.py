"""Progress suits where it is read: plain, throttled lines in a log, a bar on a terminal."""
from __future__ import annotations

import io

import pytest

from synthact.progress import Progress

from .conftest import run_cli


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_per_tenth_and_no_redraws():
    log = io.StringIO()
    p = Progress(100, "render", "clip", "frames/s", stream=log, every=3600)
    for _ in range(100):
        p.update(1, 8)
    p.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 10, lines           # 10 %, 20 %, ... 90 %, and the final line
    assert lines[0].startswith("render: 10/100 clips (10%)") and "frames/s" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("render: 100/100 clips (100%)")


def test_a_terminal_gets_a_bar_and_quiet_gets_nothing():
    tty = Terminal()
    p = Progress(5, "flow", stream=tty)
    for _ in range(5):
        p.update()
    p.close()
    assert "\r" in tty.getvalue() and "5/5" in tty.getvalue()
    quiet = io.StringIO()
    p = Progress(5, "flow", stream=quiet, enabled=False)
    p.update(5)
    p.write("failed x: y")
    p.close()
    assert quiet.getvalue() == ""


def test_render_piped_to_a_log_writes_plain_lines(tmp_path):
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--classes", "wave", "--per-class", "2", "--frames", "2",
                "--size", "64x48")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    assert "render: 2/2 clips (100%)" in r.stderr


@pytest.mark.slow
def test_training_piped_to_a_log_writes_plain_epoch_lines(data, tmp_path):
    synth, target = data
    r = run_cli("train-tsn", "--real", "target:split1", "--real-root", str(target), "--out", str(tmp_path / "run"),
                "--epochs", "2", "--size", "32", "--workers", "0", "--eval-protocol", "fast", "--batch-size", "4")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("epoch 2/2: ")]
    assert lines and lines[-1].startswith("epoch 2/2: 3/3 batches (100%)") and "images/s" in lines[-1]
    assert "epoch 2: loss" in r.stdout


def test_library_warnings_are_one_line_each():
    import subprocess
    import sys
    code = ("import warnings\nfrom synthact.cli import _log_warnings\n_log_warnings()\n"
            "warnings.warn('deprecated thing\\nwith a second line', DeprecationWarning)")
    r = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True)
    assert r.stderr.strip() == "warning: DeprecationWarning: deprecated thing"
