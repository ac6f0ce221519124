"""train-tsn against careless and hostile input: every case one line on stderr, exit 2, nothing run or lost."""
from __future__ import annotations

import json
import os
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from synthact import contract as C

from .conftest import run_cli

pytestmark = pytest.mark.slow   # trains, or starts train-tsn for each refusal: not in `make test-fast`

# a run folder whose name would be code if pasted into Python source between quotes
HOSTILE = "it's ' + __import__('os').system('touch PWNED') + ' {{ fileDirname }}"
RUN_FILES = ("config.json", "train_list.txt", "val_list.txt", "classes.txt")


def _args(data, *extra):
    synth, target = data
    return ("--real", "target:split1", "--real-root", str(target), "--synthetic-root", str(synth), "--synthetic", "3",
            "--backbone", "resnet18", "--pretrained", "none", "--size", "32", "--epochs", "1", "--batch-size", "4",
            "--workers", "0", "--eval-protocol", "fast", "--quiet", *extra)


def refused(r, *needles: str) -> str:
    """Exit 2, one ``error:`` line naming what is wrong, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr and "Caught" not in r.stderr, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """One finished tiny run, in a folder with a hostile name."""
    base = tmp_path_factory.mktemp("safety")
    out = base / HOSTILE
    here = os.getcwd()
    os.chdir(base)   # where the name's `touch PWNED` would land
    try:
        r = run_cli("train-tsn", "--out", str(out), *_args(data))
    finally:
        os.chdir(here)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (base / "PWNED").exists()
    return out


@pytest.mark.parametrize("option, value, needle", [
    ("--lr", "nan", "--lr nan: must be a finite number > 0"),
    ("--lr", "-0.1", "--lr -0.1: must be a finite number > 0"),
    ("--real-fraction", "1.5", "--real-fraction 1.5: must be a number in (0, 1]"),
    ("--synthetic-share", "1", "--synthetic-share 1.0: must be a number in (0, 1)"),
    ("--synthetic-share", "-0.5", "--synthetic-share -0.5: must be a number in (0, 1)"),
    ("--device", "banana", "--device 'banana': choose auto, cpu, cuda or cuda:N"),
    ("--device", "cuda:7", "--device cuda:7: torch sees"),
])
def test_bad_settings_are_refused_before_anything_runs(data, tmp_path, option, value, needle):
    if option == "--device" and value.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    refused(run_cli("train-tsn", "--out", str(tmp_path / "r"), *_args(data, option, value)), needle)
    assert not (tmp_path / "r").exists()


def test_the_mmaction2_config_of_a_hostile_run_folder_runs_no_code(run, tmp_path, monkeypatch):
    path = run / "mmaction2_config.py"
    monkeypatch.chdir(tmp_path)
    settings = runpy.run_path(str(path))     # the file as Python runs it
    try:   # and as mmengine does: it substitutes {{ fileDirname }} in the text first
        from mmengine.config import Config
        settings = Config.fromfile(str(path)).to_dict()
    except ImportError:
        pass
    assert not (tmp_path / "PWNED").exists() and not (run.parent / "PWNED").exists()
    assert settings["work_dir"] == str(run.resolve() / "mmaction2")
    assert settings["train_dataloader"]["dataset"]["ann_file"] == str(run.resolve() / "mmaction2_train_list.txt")


def test_resume_with_other_settings_is_refused_and_the_run_kept(data, run):
    before = {name: (run / name).read_bytes() for name in RUN_FILES}
    line = refused(run_cli("train-tsn", "--out", str(run), "--resume",
                           *_args(data, "--lr", "0.5", "--seed", "1", "--real-fraction", "0.5", "--epochs", "2")),
                   str(run / "config.json"), "real_fraction=0.5", "epochs=2", "lr=0.5", "seed=1")
    assert "started with real_fraction=1.0, epochs=1, lr=0.001, seed=0" in line
    assert {name: (run / name).read_bytes() for name in RUN_FILES} == before


def test_a_run_from_before_a_setting_existed_resumes_only_with_its_default(data, run, tmp_path):
    """A config.json written before --synthetic-share existed ran without one: resuming it with a
    share is another experiment under the same name, refused like any changed setting."""
    old = tmp_path / "old"
    shutil.copytree(run, old)
    cfg = json.loads((old / "config.json").read_text())
    del cfg["synthetic_share"]
    (old / "config.json").write_text(json.dumps(cfg))
    line = refused(run_cli("train-tsn", "--out", str(old), "--resume", *_args(data, "--synthetic-share", "0.2")),
                   str(old / "config.json"), "synthetic_share=0.2")
    assert "started with synthetic_share=None" in line


class _Exec:
    def __reduce__(self):
        return exec, ("open('HACKED', 'w').close()",)


def _broken(kind: str, good: Path) -> bytes | object:
    data = good.read_bytes()
    return {"truncated": data[:len(data) // 2], "random": np.random.default_rng(0).bytes(4096), "empty": b"",
            "list": [1, 2, 3],
            "pickle": {"model": _Exec()}}[kind]


@pytest.mark.parametrize("kind, needle", [
    ("truncated", "not a readable checkpoint (corrupt"), ("random", "not a readable checkpoint ("),
    ("empty", "not a readable checkpoint (empty or cut short)"), ("list", "not a train-tsn checkpoint"),
    ("pickle", "refusing to unpickle it"),
])
def test_broken_checkpoints_are_named_for_resume_and_init_from(data, run, tmp_path, monkeypatch, kind, needle):
    monkeypatch.chdir(tmp_path)
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in RUN_FILES:
        shutil.copy(run / name, resumed / name)
    broken = _broken(kind, run / "checkpoint.pt")
    if isinstance(broken, bytes):
        (resumed / "checkpoint.pt").write_bytes(broken)
    else:
        torch.save(broken, resumed / "checkpoint.pt")
    refused(run_cli("train-tsn", "--out", str(resumed), "--resume", *_args(data)), str(resumed / "checkpoint.pt"),
            needle)
    fresh = ("--out", str(tmp_path / "fresh"), *_args(data, "--init-from", str(resumed / "checkpoint.pt")))
    refused(run_cli("train-tsn", *fresh), str(resumed / "checkpoint.pt"), needle)
    assert not (tmp_path / "HACKED").exists()
    assert not (tmp_path / "fresh" / "checkpoint.pt").exists()


def _damaged_root(data, tmp_path) -> tuple[Path, str]:
    root = tmp_path / "target"
    shutil.copytree(data[1], root)
    first = C.read_annotations(C.split_list_path(root, "target", "train", 1))[0].clip
    return root, first


def _real_only(root, *extra):
    return ("--real", "target:split1", "--real-root", str(root), "--backbone", "mobilenet_v3_small", "--pretrained",
            "none", "--size", "32", "--epochs", "1", "--batch-size", "4", "--eval-protocol", "fast", "--quiet", *extra)


@pytest.mark.parametrize("damage, needle", [
    ("cut", "truncated JPEG"),            # every frame of a training clip cut short
    ("gone", "missing or unreadable image"),   # its frames deleted, the folder kept
])
def test_errors_in_dataloader_workers_are_the_original_line(data, tmp_path, damage, needle):
    root, clip = _damaged_root(data, tmp_path)
    for frame in (root / C.RAWFRAMES / clip).glob("img_*.jpg"):
        if damage == "cut":
            frame.write_bytes(frame.read_bytes()[:300])
        else:
            frame.unlink()
    r = run_cli("train-tsn", "--out", str(tmp_path / "r"), *_real_only(root, "--workers", "1"))
    refused(r, str(root / C.RAWFRAMES / clip / "img_"), needle)


def test_a_list_line_without_a_label_is_named_with_its_line(data, tmp_path):
    root, clip = _damaged_root(data, tmp_path)
    path = C.split_list_path(root, "target", "train", 1)
    lines = path.read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[:2])
    path.write_text("\n".join(lines) + "\n")
    refused(run_cli("train-tsn", "--out", str(tmp_path / "r"), *_real_only(root, "--workers", "0")), f"{path}:2:")


@pytest.mark.parametrize("spec", ["hmdb51:split1-val1", "hmdb51:split4-val2", "hmdb51:split1-val", "hmdb51:split1val2",
                                  "hmdb51:split1-val2-val3", "hmdb51:split1-val2 ", "../x:split1", ":split1"])
def test_bad_real_specs_are_refused_in_one_line(tmp_path, spec):
    refused(run_cli("train-tsn", "--out", str(tmp_path / "r"), "--real", spec, "--real-root", str(tmp_path)),
            "--real")
    assert not (tmp_path / "r").exists()


def test_a_real_split_without_validation_clips_is_refused_not_scored_on_nothing(tmp_path):
    from synthact.errors import BadConfig
    from synthact.train.mixing import select_clips
    root = tmp_path / "real"
    C.write_lines(C.label_map_path(root, "hmdb51"), ["wave"])
    train = [C.Entry("wave/a", 8, 0), C.Entry("wave/b", 8, 0)]
    for k in (1, 2):
        C.write_annotations(C.split_list_path(root, "hmdb51", "train", k), train)
    C.write_annotations(C.split_list_path(root, "hmdb51", "val", 1), [])               # test videos not prepared
    C.write_annotations(C.split_list_path(root, "hmdb51", "val", 2), [C.Entry("wave/c", 8, 0)])  # none of ours
    with pytest.raises(BadConfig, match="split 1's test videos are not prepared here"):
        select_clips("hmdb51:split1", root)
    with pytest.raises(BadConfig, match="none of split 1's training clips here is one split 2 tests on"):
        select_clips("hmdb51:split1-val2", root)
    C.write_annotations(C.split_list_path(root, "hmdb51", "val", 2), [C.Entry("wave/b", 8, 0)])
    sel = select_clips("hmdb51:split1-val2", root)
    assert [s.clip for s in sel.train] == ["wave/a"] and [s.clip for s in sel.val] == ["wave/b"]


def test_adapt_bn_without_real_training_clips_is_refused_before_training(data, tmp_path):
    """--adapt-bn takes its statistics from the split's real training clips: a root whose training
    list is empty is refused in one line before an epoch runs, not after training."""
    synth, target = data
    root = tmp_path / "target"
    shutil.copytree(target, root)
    C.write_annotations(C.split_list_path(root, "target", "train", 1), [])
    r = run_cli("train-tsn", "--out", str(tmp_path / "r"), "--real", "target:split1", "--real-root", str(root),
                "--synthetic-root", str(synth), "--synthetic-only", "--adapt-bn", "--backbone", "resnet18",
                "--pretrained", "none", "--size", "32", "--epochs", "1", "--workers", "0", "--quiet")
    refused(r, f"--adapt-bn: {root} holds no training clips of target:split1")
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
