"""synthact compare: flow statistics of two roots, per class and overall, and the domain-gap number."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from synthact import contract as C
from synthact.compare import compare_roots, frechet
from synthact.data.prepare import PrepareJob, prepare

from .conftest import refusal, run_cli, small_root


@pytest.fixture(scope="module")
def roots(fixtures, tmp_path_factory):
    """The fixture's UCF-101 Punch and PushUps videos prepared at 80x60 with DIS flow, and a small
    rendered root of punch and push_up (64x48, 4 frames, DIS)."""
    base = tmp_path_factory.mktemp("compare")
    real = base / "real"
    prepare(PrepareJob("ucf101", fixtures / "real/videos/ucf101", fixtures / "real/splits/ucf101", real,
                       "Punch,PushUps", "dis", (80, 60), 2), progress=False)
    return real, small_root(base / "synth", "punch,push_up")


@pytest.mark.slow
def test_identical_roots_have_no_gap(roots, tmp_path):
    real, _ = roots
    twin = tmp_path / "twin"
    shutil.copytree(real, twin)
    r = compare_roots(real, twin, tmp_path / "out")
    assert r.gap == 0.0 and r.clips == {"real": 3, "synthetic": 3}
    assert all(row["gap"] == 0.0 for row in r.per_class.values())
    assert compare_roots(real, real, tmp_path / "same").gap == 0.0
    one = compare_roots(real, twin, tmp_path / "one", max_clips=1)    # at most one clip per class and side
    assert one.clips == {"real": 2, "synthetic": 2} and one.gap == 0.0


@pytest.mark.slow
def test_real_against_synthetic_gives_a_positive_gap_with_table_and_plots(roots, tmp_path):
    real, synth = roots
    out = tmp_path / "gap"
    r = run_cli("synthact", "compare", "--real", str(real), "--synthetic", str(synth), "--out", str(out))
    assert r.returncode == 0, r.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["gap"] > 0.5, stats["gap"]
    # synthetic punch / push_up sit beside the real Punch / PushUps through the class map
    assert set(stats["per_class"]) == {"Punch", "PushUps"}
    assert stats["per_class"]["Punch"]["synthetic"]["clips"] == 2 and stats["per_class"]["Punch"]["real"]["clips"] == 2
    md = (out / "report.md").read_text()
    assert md in r.stdout and "| **all** | 3 / 4 |" in md and "| Punch | 2 / 2 |" in md
    assert "frame sizes differ" in md                       # 80x60 against 64x48: said, not hidden
    for name in ("flow_magnitude.png", "flow_features.png", "per_class.png"):
        assert (out / name).stat().st_size > 5000, name
    real_clips = {c["clip"]: c for c in stats["clips"]["real"]}
    assert set(real_clips) == set(C.iter_clips(real))
    for c in real_clips.values():   # shares and positions are fractions of the frame
        assert 0 <= c["moving_share"] <= 1 and 0 <= c["box_width"] <= 1 and 0 <= c["centroid_y"] <= 1
        assert c["mean_flow"] > 0 and c["temporal_energy"] >= 0
    assert f"gap (Fréchet distance of per-clip flow features) {stats['gap']:.4f}" in r.stdout


@pytest.mark.slow
def test_clips_without_flow_are_listed_and_a_root_without_flow_refused(roots, tmp_path):
    real, synth = roots
    part = tmp_path / "part"
    shutil.copytree(synth, part)
    lines = (part / C.FLOW_MANIFEST).read_text().splitlines()
    (part / C.FLOW_MANIFEST).write_text("\n".join(lines[1:]) + "\n")   # one clip's flow not recorded
    r = run_cli("synthact", "compare", "--real", str(real), "--synthetic", str(part), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    skipped = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(skipped) == 1 and "skipped synthetic" in skipped[0] and "no complete flow" in skipped[0], r.stderr
    assert "Skipped 1 clip(s)" in (tmp_path / "o/report.md").read_text()
    bare = tmp_path / "bare"
    shutil.copytree(synth, bare)
    (bare / C.FLOW_INFO).unlink()
    refusal(run_cli("synthact", "compare", "--real", str(real), "--synthetic", str(bare)), "--synthetic", "no flow")


def test_frechet_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal([0, 0], [1, 2], size=(200000, 2))
    b = rng.normal([1, 0], [2, 2], size=(200000, 2))
    # |mu|^2 + sum (s_a - s_b)^2 = 1 + 1 + 0
    assert frechet(a, b) == pytest.approx(2.0, abs=0.05)
    assert frechet(a, a) == 0.0
