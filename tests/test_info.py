"""synthact info, --version and the versions recorded with a root and its flow."""
from __future__ import annotations

import json

import pytest

from synthact import contract as C
from synthact.provenance import versions

from .conftest import run_cli

SMALL = ("--frames", "3", "--size", "64x48", "--quiet")


@pytest.mark.slow
def test_info_reports_a_root_and_what_is_left_to_do(tmp_path):
    root = tmp_path / "synth"
    r = run_cli("render-clips", "--out", str(root), "--classes", "wave,clap", "--per-class", "2", *SMALL)
    assert r.returncode == 0
    assert run_cli("extract-flow", "--root", str(root), "--method", "dis", "--quiet").returncode == 0
    assert run_cli("render-clips", "--out", str(root), "--classes", "wave,clap", "--per-class", "3",
                   *SMALL).returncode == 0
    r = run_cli("synthact", "info", str(root), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["clips"] == 6 and info["clips_per_class"] == {"clap": 3, "wave": 3}
    assert info["motion_sources"] == {"procedural": 6}
    assert info["settings"]["frames"] == 3 and info["settings"]["versions"] == versions()
    assert info["flow"] == {"method": "dis", "complete": 4, "of": 6}
    assert info["todo"] == ["extract-flow --resume: 2 clips without flow"]
    assert info["disk_bytes"] > 0
    text = run_cli("synthact", "info", str(root)).stdout
    assert "flow: dis, 4 of 6 clips complete" in text and "  wave: 3" in text


@pytest.mark.slow
def test_info_of_a_run_folder(data, tmp_path):
    synth, target = data
    run = tmp_path / "run"
    r = run_cli("train-tsn", "--real", "target:split1", "--real-root", str(target), "--out", str(run), "--epochs", "2",
                "--size", "32", "--workers", "0", "--eval-protocol", "fast", "--quiet")
    assert r.returncode == 0, r.stderr
    info = json.loads(run_cli("synthact", "info", str(run), "--json").stdout)
    assert info["kind"] == "run" and info["epochs_done"] == 2 and info["epochs"] == 2
    assert info["final"]["top1"] == json.loads((run / "metrics.json").read_text())["top1"]
    assert info["todo"] == []
    for name in ("config.json", "metrics.json"):
        assert json.loads((run / name).read_text())["versions"] == versions()


@pytest.mark.slow
def test_version_and_a_rerun_with_other_versions_warns(tmp_path):
    r = run_cli("synthact", "--version")
    assert r.returncode == 0 and r.stdout.startswith("synthact ") and "bpy " in r.stdout and "torch " in r.stdout
    root = tmp_path / "v"
    args = ("render-clips", "--out", str(root), "--classes", "wave", *SMALL)
    assert run_cli(*args, "--per-class", "1").returncode == 0
    settings = json.loads((root / C.ROOT_SETTINGS).read_text())
    settings["versions"]["bpy"] = "4.2.0"
    (root / C.ROOT_SETTINGS).write_text(json.dumps(settings))
    r = run_cli(*args, "--per-class", "2")
    assert r.returncode == 0
    assert "other versions (bpy 4.2.0 -> " in r.stderr
    assert not (root / C.FLOW_INFO).exists()
    assert run_cli("extract-flow", "--root", str(root), "--method", "dis", "--quiet").returncode == 0
    assert C.FlowInfo.read(root).versions == versions()


def test_a_run_folders_settings_read_back_as_the_train_config(tmp_path):
    """config.json reads back as a TrainConfig: a setting added since the run began takes its
    default, a key this version does not know is left out, a bad value is refused naming the file."""
    from dataclasses import asdict

    from synthact.errors import BadData
    from synthact.info import run_info
    from synthact.train.config import TrainConfig, read_config
    run = tmp_path / "run"
    run.mkdir()
    cfg = TrainConfig(out=str(run), real="hmdb51:split1", real_root="real", modality="flow", size=112,
                      num_classes=15, synthetic_share=0.5, info={"flow_method": "tvl1-fast"})
    old = {k: v for k, v in asdict(cfg).items() if k not in ("adapt_bn", "synthetic_share")}
    C.write_json(C.RunLayout(run).config, {**old, "versions": versions(), "a_future_setting": 1})
    back = read_config(run)
    assert back == TrainConfig(**{**asdict(cfg), "synthetic_share": None})
    info = run_info(run)
    assert info["settings"]["versions"] == versions() and info["selection"] == {"flow_method": "tvl1-fast"}
    assert info["settings"]["adapt_bn"] is False and "a_future_setting" not in info["settings"]
    C.write_json(C.RunLayout(run).config, {**old, "synthetic_share": 2})
    with pytest.raises(BadData, match=r"config.json: synthetic_share 2: must be a number in \(0, 1\)"):
        read_config(run)
    C.write_json(C.RunLayout(run).config, {k: v for k, v in old.items() if k != "real_root"})
    with pytest.raises(BadData, match="not a train-tsn run's settings"):
        run_info(run)
