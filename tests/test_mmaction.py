"""The mmaction2 path: one environment, the config we write, the fixes we make, real training."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from importlib import metadata

import numpy as np
import pytest
import torch

from synthact.train.mmaction_engine import CONFIG, LISTS

from .conftest import BIN, run_cli


def test_one_environment_holds_bpy_opencv_contrib_and_mmaction2():
    import bpy  # noqa: F401
    import cv2
    import mmaction
    import mmcv
    import mmengine
    assert hasattr(cv2, "optflow")
    assert np.__version__.startswith("1.")
    opencv = sorted(d.metadata["Name"].lower() for d in metadata.distributions()
                    if "opencv" in d.metadata["Name"].lower())
    assert opencv == ["opencv-contrib-python-headless"], opencv
    assert (mmaction.__version__, mmengine.__version__, mmcv.__version__) == ("1.2.0", "0.10.7", "2.1.0")


def test_our_flow_flip_inverts_x_of_every_pair_where_mmaction2s_flips_y_too():
    from mmaction.datasets.transforms import Flip
    from mmaction.registry import TRANSFORMS

    from synthact.train import mmaction_plugins  # noqa: F401  (registers the transform, shims drn)
    rng = np.random.default_rng(0)
    pairs = [rng.integers(0, 256, (4, 5, 2), dtype=np.uint8) for _ in range(4)]   # RawFrameDecode's layout
    ours = TRANSFORMS.build(dict(type="SynthactFlowFlip", flip_ratio=1.0))
    out = ours.transform({"imgs": [p.copy() for p in pairs], "modality": "Flow"})["imgs"]
    for p, o in zip(pairs, out, strict=True):
        np.testing.assert_array_equal(o[..., 0], 255 - p[:, ::-1, 0])
        np.testing.assert_array_equal(o[..., 1], p[:, ::-1, 1])
    theirs = Flip(flip_ratio=1.0).transform({"imgs": [p.copy() for p in pairs], "modality": "Flow",
                                             "img_shape": (4, 5)})["imgs"]
    assert np.array_equal(theirs[0][..., 1], 255 - pairs[0][:, ::-1, 1])      # y inverted: the bug
    assert np.array_equal(theirs[1][..., 0], pairs[1][:, ::-1, 0])            # x not inverted: the bug


MM_ARGS = ("--engine", "mmaction2", "--real", "target:split1", "--synthetic", "6", "--backbone", "resnet18",
           "--size", "48", "--batch-size", "4", "--workers", "0", "--eval-protocol", "fast", "--quiet")


def _args(data, *extra):
    synth, target = data
    return (*MM_ARGS, "--real-root", str(target), "--synthetic-root", str(synth), *extra)


@pytest.mark.slow
def test_mmaction2_trains_rgb_with_our_config(data, tmp_path):
    out = tmp_path / "rgb"
    r = run_cli("train-tsn", "--out", str(out), *_args(data, "--epochs", "1", "--val-interval", "0",
                                                       "--backbone-lr-mult", "0.5"))
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    m = json.loads((out / "metrics.json").read_text())
    assert m["engine"] == "mmaction2" and m["n"] == 6 and 0.0 <= m["top1"] <= 1.0
    assert (out / "mmaction2" / "epoch_1.pth").exists()
    text = (out / CONFIG).read_text()
    assert "type='Flip'" in text and "img_{:05d}.jpg" in text
    assert "val_begin=2" in text   # --val-interval 0: mmengine's loop never validates, the test loop still runs
    assert "custom_keys=dict(backbone=dict(lr_mult=0.5))" in text
    groups = torch.load(out / "mmaction2" / "epoch_1.pth", map_location="cpu", weights_only=False)["optimizer"]
    head, backbone = sorted({g["lr"] for g in groups["param_groups"]}, reverse=True)
    assert backbone == pytest.approx(0.5 * head)


@pytest.mark.slow
def test_mmaction2_flow_uses_the_cross_modality_start_and_resumes_after_a_kill(data, tmp_path):
    weights = tmp_path / "r18.pth"
    from synthact.train.models import TSN
    donor = TSN(3, "resnet18").base.state_dict()
    torch.save(donor, weights)
    args = _args(data, "--modality", "flow", "--epochs", "3", "--pretrained", str(weights))
    whole = run_cli("train-tsn", "--out", str(tmp_path / "whole"), *args)
    assert whole.returncode == 0, whole.stderr[-2000:]
    init = torch.load(tmp_path / "whole" / "backbone_init.pth", weights_only=True)["conv1.weight"]
    assert init.shape[1] == 10
    torch.testing.assert_close(init[:, 3], donor["conv1.weight"].mean(dim=1))
    flow_list = (tmp_path / "whole" / LISTS[0]).read_text().split("\n")[0].split()
    ours = (tmp_path / "whole" / "train_list.txt").read_text().split("\n")[0].split()
    assert int(flow_list[1]) == int(ours[1]) - 1                       # mmaction2 counts flow pairs
    assert "SynthactFlowFlip" in (tmp_path / "whole" / CONFIG).read_text()
    cut = tmp_path / "cut"
    proc = subprocess.Popen([str(BIN / "train-tsn"), "--out", str(cut), *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 300
    while not (cut / "mmaction2" / "epoch_1.pth").exists() and proc.poll() is None and time.time() < end:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "mmaction2" / "epoch_3.pth").exists()
    again = run_cli("train-tsn", "--out", str(cut), "--resume", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    a = torch.load(tmp_path / "whole" / "mmaction2" / "epoch_3.pth", weights_only=False)["state_dict"]
    b = torch.load(cut / "mmaction2" / "epoch_3.pth", weights_only=False)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


class _Exec:
    def __reduce__(self):
        return exec, ("open('HACKED', 'w').close()",)


@pytest.mark.slow
def test_a_hostile_run_folder_trains_and_a_planted_checkpoint_is_not_unpickled(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)    # where `touch PWNED` or the planted pickle would write
    out = tmp_path / "it's ' + __import__('os').system('touch PWNED') + ' {{ fileDirname }}"
    args = _args(data, "--epochs", "1")
    r = run_cli("train-tsn", "--out", str(out), *args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "mmaction2" / "epoch_1.pth").exists() and not (tmp_path / "PWNED").exists()
    from mmengine.config import Config
    assert Config.fromfile(str(out / CONFIG)).work_dir == str(out / "mmaction2")
    assert not (tmp_path / "PWNED").exists()
    planted = out / "mmaction2" / "epoch_2.pth"       # the newest: resume picks it
    torch.save({"meta": _Exec(), "state_dict": {}}, planted)
    r = run_cli("train-tsn", "--out", str(out), "--resume", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {planted}: not a readable checkpoint (it pickles ")
    assert errors[0].endswith("refusing to unpickle it)")
    assert r.stderr.strip().splitlines()[-1] == errors[0]
    assert not (tmp_path / "HACKED").exists()
