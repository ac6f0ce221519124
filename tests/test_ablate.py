"""synthact ablate and the demo's code path, at tiny sizes with real bpy, OpenCV and torch."""
from __future__ import annotations

import csv
import os

import cv2
import pytest
import yaml

from synthact.ablate import cells, load_config, run_grid
from synthact.demo import run_demo

from .conftest import run_cli


def _grid(data, tmp_path, **over):
    synth, target = data
    cfg = {"name": "tiny", "real": "target", "real_root": str(target), "synthetic_root": str(synth),
           "synthetic": [0, 6], "real_fraction": [1.0], "modality": ["rgb"], "eval_protocol": "fast",
           "train": {"backbone": "mobilenet_v3_small", "size": 32, "epochs": 1, "batch_size": 4, "workers": 0}}
    cfg.update(over)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_tiny_grid_writes_csv_table_and_plot_and_rerun_skips(data, tmp_path):
    path = _grid(data, tmp_path)
    out = tmp_path / "out"
    r = run_cli("synthact", "ablate", "--config", str(path), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(x["synthetic"], x["modality"], x["status"]) for x in rows] == [("0", "rgb", "ok"), ("6", "rgb", "ok")]
    assert all(0.0 <= float(x["top1"]) <= 1.0 for x in rows)
    md = (out / "results.md").read_text()
    assert "| modality | real fraction | +0 synthetic | +6 synthetic |" in md and "| rgb | 1 |" in md
    assert cv2.imread(str(out / "accuracy_vs_synthetic.png")) is not None
    again = run_cli("synthact", "ablate", "--config", str(path), "--out", str(out), "--quiet")
    assert again.returncode == 0 and "2 cells (2 already done, 0 failed)" in again.stdout


def test_fusion_and_synthetic_only_cells(data, tmp_path):
    path = _grid(data, tmp_path, synthetic=[6], real_fraction=[0], modality=["rgb", "flow", "fusion"])
    res = run_grid(path, tmp_path / "out", progress=False, echo=lambda *_: None)
    assert res["failed"] == 0
    rows = list(csv.DictReader(open(tmp_path / "out/results.csv")))
    assert [x["modality"] for x in rows] == ["rgb", "flow", "fusion"]
    assert "synthetic only" in (tmp_path / "out/results.md").read_text()


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(data, tmp_path):
    path = _grid(data, tmp_path, synthetic=[0, 999])      # 999 synthetic clips do not exist
    r = run_cli("synthact", "ablate", "--config", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 1
    rows = list(csv.DictReader(open(tmp_path / "out/results.csv")))
    assert rows[0]["status"] == "ok" and rows[1]["status"].startswith("failed: ValueError")
    assert "1 cell(s) failed" in (tmp_path / "out/results.md").read_text()


@pytest.mark.parametrize("text, message", [
    ("real: target\nreal_root: x\nsynthetc: [1]\n", "unknown key 'synthetc'"),
    ("real: target\nreal_root: x\ntrain: {epoch: 3}\n", "unknown key 'train.epoch'"),
    ("real_root: x\n", "missing key 'real'"),
    ("real: target\nreal_root: x\nmodality: [depth]\n", "unknown modality 'depth'"),
    ("real: [target\n", "not valid YAML"),
])
def test_malformed_config_names_the_bad_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(path)
    r = run_cli("synthact", "ablate", "--config", str(path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1


def test_shipped_paper_configs_load():
    assert len(cells(load_config("hmdb51_two_stream"))) == 3 * 3 * 3      # splits x counts x modalities
    assert {c["real_fraction"] for c in cells(load_config("ucf25_synthetic_only"))} == {0}
    assert {c["synthetic"] for c in cells(load_config("ucf25_10pct"))} == {0, 5000}


def test_demo_code_path_at_a_tiny_scale(tmp_path, capsys):
    assert run_demo(tmp_path / "demo", workers=2, scale=0.09, progress=False)
    printed = capsys.readouterr().out
    if os.environ.get("SYNTHACT_FIXTURES"):   # the demo checks its models on the real fixture clips
        assert "real fixture clips (3: v_Punch_g01_c01, v_Punch_g08_c01, TrumanShow_wave_f_nm_np1_fr_med_26)" \
            in printed
        assert "| s1_seed0_syn0_real1_flow | " in printed
    rows = list(csv.DictReader(open(tmp_path / "demo/ablation/results.csv")))
    assert len(rows) == 2 * 2 * 3 and all(x["status"] == "ok" for x in rows)
    for name in ("synthetic/preview.png", "target/preview.png", "ablation/accuracy_vs_synthetic.png"):
        assert cv2.imread(str(tmp_path / "demo" / name)) is not None
