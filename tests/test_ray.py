"""--executor ray: a real Ray on this machine (2 CPUs) gives what the local pool gives, survives a
killed worker, and refuses a root the workers cannot see."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from synthact import contract as C

from .conftest import BIN, records_of, refusal, run_cli, wait_for_manifest

pytestmark = pytest.mark.slow   # starts Ray clusters: not in `make test-fast`

RENDER = ("--classes", "wave,jump", "--per-class", "2", "--frames", "6", "--size", "80x60", "--quiet")
SLOW_RENDER = ("--classes", "jump,clap,kick", "--per-class", "3", "--frames", "24", "--size", "96x72", "--quiet")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray head started with `ray start` from its own folder (so its workers' working directory is
    not the driver's), joined through RAY_ADDRESS=auto."""
    head = tmp_path_factory.mktemp("head")
    r = subprocess.run([str(BIN / "ray"), "start", "--head", "--num-cpus", "2", "--include-dashboard=false",
                        "--disable-usage-stats"], cwd=head, capture_output=True, text=True, timeout=120,
                       env=_env())
    assert r.returncode == 0, r.stderr
    yield _env(RAY_ADDRESS="auto")
    subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, timeout=120)


def _pixels(root: Path) -> dict:
    """Every JPEG of a root, decoded (Blender stamps the render date into its JPEG comments)."""
    return {str(p.relative_to(root)): cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            for p in sorted((root / C.RAWFRAMES).rglob("*.jpg"))}


def _same_pixels(a: Path, b: Path) -> None:
    pa, pb = _pixels(a), _pixels(b)
    assert pa.keys() == pb.keys() and pa
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), k


def _records(root: Path, name: str = C.MANIFEST) -> list[dict]:
    drop = {"render_seconds", "seconds"}
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in records_of(root, name)),
                  key=lambda r: r["clip"])


def test_render_and_flow_on_a_local_ray_equal_the_local_pool(tmp_path):
    """No RAY_ADDRESS: the command starts a Ray on this machine for the run."""
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert run_cli("render-clips", "--out", str(local), "--workers", "2", *RENDER, env=_env()).returncode == 0
    r = run_cli("render-clips", "--out", str(on_ray), "--executor", "ray", *RENDER, env=_env())
    assert r.returncode == 0, r.stderr
    assert "4 rendered, 0 already done, 0 failed of 4 clips" in r.stdout and "; per node: " in r.stdout
    _same_pixels(local, on_ray)
    assert _records(local) == _records(on_ray)
    lists = sorted(p.relative_to(local) for p in local.rglob("*.txt"))
    assert lists
    for p in lists:
        assert (local / p).read_bytes() == (on_ray / p).read_bytes(), p
    for root, extra in ((local, ("--workers", "2")), (on_ray, ("--executor", "ray"))):
        r = run_cli("extract-flow", "--root", str(root), "--method", "tvl1-fast", "--quiet", *extra, env=_env())
        assert r.returncode == 0, r.stderr
    flows = sorted(p.relative_to(local) for p in (local / C.RAWFRAMES).rglob("flow_*.jpg"))
    assert len(flows) == 2 * 4 * 5
    for p in flows:  # OpenCV's encoder stamps nothing: the flow files are the same bytes
        assert (local / p).read_bytes() == (on_ray / p).read_bytes(), p
    assert _records(local, C.FLOW_MANIFEST) == _records(on_ray, C.FLOW_MANIFEST)


def test_prepare_on_ray_equals_the_local_pool(fixtures, tmp_path, cluster):
    args = ("prepare", "hmdb51", "--videos", str(fixtures / "real/videos/hmdb51"), "--splits",
            str(fixtures / "real/splits/hmdb51"), "--classes", "wave,punch", "--size", "64x48", "--flow", "dis",
            "--allow-missing", "--quiet")
    a, b = tmp_path / "local", tmp_path / "ray"
    ra = run_cli("synthact", *args, "--out", str(a), "--workers", "2", env=_env())
    rb = run_cli("synthact", *args, "--out", str(b), "--executor", "ray", env=cluster)
    assert ra.returncode == 0 and rb.returncode == 0, rb.stderr
    assert "per node: " in rb.stdout
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix in (".jpg", ".txt"))
    assert any(p.name.startswith("flow_x") for p in files) and any("annotations" in str(p) for p in files)
    for p in files:
        assert (a / p).read_bytes() == (b / p).read_bytes(), p
    assert _records(a) == _records(b)


def _worker_pids() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(ln.split()[0]) for ln in out.splitlines() if "ray::_Worker" in ln]


def test_a_killed_ray_worker_loses_nothing_and_its_clip_is_redone(tmp_path, cluster):
    out = tmp_path / "synth"
    proc = subprocess.Popen([str(BIN / "render-clips"), "--out", str(out), "--executor", "ray", *SLOW_RENDER],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster)
    wait_for_manifest(out, 2, proc)
    pids = _worker_pids()
    assert pids, "no Ray render worker found"
    os.kill(pids[0], signal.SIGKILL)     # mid-clip: its clip is retried on a restarted worker
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert "9 rendered, 0 already done, 0 failed of 9 clips" in stdout
    assert sorted(r["clip"] for r in records_of(out)) == sorted(C.iter_clips(out))
    assert len(records_of(out)) == 9 and C.leftovers(out) == 0
    for clip in C.iter_clips(out):
        assert C.count_frames(C.clip_dir(out, clip)) == 24


def test_a_root_the_workers_cannot_see_is_refused_before_anything_is_written(tmp_path, cluster):
    """/proc/self/cwd/... names the driver's folder for the driver and the Ray head's folder for its
    workers: one path, two storages, as a node-local /scratch would be on a cluster."""
    driver = tmp_path / "driver"
    driver.mkdir()
    r = run_cli("render-clips", "--out", "/proc/self/cwd/synth", "--executor", "ray", *RENDER, env=cluster,
                cwd=driver)
    line = refusal(r, "not on storage every Ray node sees", "synthact merge")
    assert "No such file" in line
    assert not (driver / "synth" / C.MANIFEST).exists() and not list(driver.glob("synth/.synthact-probe*"))


def test_ablate_cells_on_ray_give_the_local_results(data, tmp_path, cluster):
    synth, target = data
    cfg = {"name": "tiny", "real": "target", "real_root": str(target), "synthetic_root": str(synth),
           "synthetic": [0, 6], "real_fraction": [1.0], "modality": ["rgb", "flow"], "eval_protocol": "fast",
           "train": {"backbone": "mobilenet_v3_small", "size": 32, "epochs": 1, "batch_size": 4, "workers": 0}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(cfg))
    start = time.perf_counter()
    ra = run_cli("synthact", "ablate", "--config", str(path), "--out", str(tmp_path / "local"), "--quiet", env=_env())
    rb = run_cli("synthact", "ablate", "--config", str(path), "--out", str(tmp_path / "ray"), "--quiet",
                 "--executor", "ray", env=cluster)
    assert ra.returncode == 0 and rb.returncode == 0, (ra.stderr, rb.stderr, time.perf_counter() - start)
    rows = [list(csv.DictReader(open(tmp_path / d / "results.csv"))) for d in ("local", "ray")]
    assert len(rows[0]) == 4
    for x, y in zip(*rows, strict=True):
        x.pop("seconds"), y.pop("seconds")
        assert x == y
    assert all(x["status"] == "ok" for x in rows[1])


def test_tvl1_torch_groups_on_ray_equal_the_local_path(tmp_path):
    """tvl1-torch under Ray: groups of clips on workers (one GPU each where the cluster has GPUs;
    here, without GPUs, one CPU each) give the files the local path gives."""
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    r = run_cli("render-clips", "--out", str(local), "--classes", "wave,jump", "--per-class", "2", "--frames", "2",
                "--size", "48x36", "--quiet", "--workers", "2", env=_env())
    assert r.returncode == 0, r.stderr
    shutil.copytree(local, on_ray)
    a = run_cli("extract-flow", "--root", str(local), "--method", "tvl1-torch", "--device", "cpu", "--quiet",
                env=_env())
    b = run_cli("extract-flow", "--root", str(on_ray), "--method", "tvl1-torch", "--device", "cpu", "--quiet",
                "--executor", "ray", "--workers", "2", env=_env())
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert "4 clips done" in b.stdout and "per node: " in b.stdout
    flows = sorted(p.relative_to(local) for p in (local / C.RAWFRAMES).rglob("flow_*.jpg"))
    assert len(flows) == 2 * 4
    for p in flows:
        assert (local / p).read_bytes() == (on_ray / p).read_bytes(), p
    assert _records(local, C.FLOW_MANIFEST) == _records(on_ray, C.FLOW_MANIFEST)


def test_executor_options_are_checked_in_one_line(tmp_path):
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--ray-address", "127.0.0.1:1", *RENDER, env=_env())
    refusal(r, "--ray-address is for --executor ray")
    # a cluster address nobody answers at: refused at once (Ray itself retries for minutes)
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--executor", "ray", "--ray-address", "127.0.0.1:1",
                *RENDER, env=_env(), timeout=60)
    refusal(r, "--ray-address 127.0.0.1:1: no Ray cluster answers there")
    r = run_cli("render-clips", "--out", str(tmp_path / "o"), "--executor", "ray", "--ray-address", "nonsense",
                *RENDER, env=_env(), timeout=60)
    refusal(r, "expected HOST:PORT")
    assert not (tmp_path / "o").exists()   # refused before the root was made
    r = run_cli("extract-flow", "--root", str(tmp_path / "o"), "--executor", "slurm", env=_env())
    assert r.returncode == 2 and "'slurm' is not one of 'local', 'ray'" in r.stderr
    assert not (tmp_path / "o").exists()


def test_a_killed_driver_resumes_on_rerun(tmp_path, cluster):
    out = tmp_path / "synth"
    proc = subprocess.Popen([str(BIN / "render-clips"), "--out", str(out), "--executor", "ray", *SLOW_RENDER],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster,
                            start_new_session=True)
    wait_for_manifest(out, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)   # the driver; Ray then ends its workers wherever they were
    proc.wait()
    r = run_cli("render-clips", "--out", str(out), "--executor", "ray", *SLOW_RENDER, env=cluster)
    assert r.returncode == 0, r.stderr
    done = int(r.stdout.split(" already done")[0].rsplit(" ", 1)[1])
    assert 2 <= done < 9 and f"{9 - done} rendered" in r.stdout
    listed = sorted(x["clip"] for x in records_of(out))
    assert listed == sorted(C.iter_clips(out)) and len(listed) == 9 and C.leftovers(out) == 0


def test_a_worker_the_cluster_cannot_hold_is_refused_not_waited_for(tmp_path):
    """tvl1-torch on cuda through a Ray without GPUs: each worker would wait for a GPU for ever."""
    root = tmp_path / "r"
    assert run_cli("render-clips", "--out", str(root), "--classes", "wave", "--per-class", "1", "--frames", "2",
                   "--size", "48x36", "--quiet", env=_env()).returncode == 0
    r = run_cli("extract-flow", "--root", str(root), "--method", "tvl1-torch", "--device", "cuda", "--executor", "ray",
                "--quiet", env=_env(), timeout=120)
    refusal(r, "each worker needs 1 GPU, more than the whole cluster has (", " 0 GPU)")
    assert not (root / C.FLOW_INFO).exists()     # refused before the root was claimed for tvl1-torch
