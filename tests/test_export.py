"""synthact export: WebDataset shards that hold every byte of the root, mp4s with mmaction2 lists."""
from __future__ import annotations

import json
import tarfile

import cv2
import pytest

from synthact import contract as C
from synthact.export import INDEX, sample_key

from .conftest import records_of, run_cli, small_root

pytestmark = pytest.mark.slow   # renders and trains: not in `make test-fast`


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return small_root(tmp_path_factory.mktemp("export") / "synth", "wave,clap,jump")


def test_webdataset_shards_hold_every_frame_flow_and_record(root, tmp_path):
    out = tmp_path / "shards"
    r = run_cli("synthact", "export", str(root), "--format", "webdataset", "--out", str(out), "--shard-size", "4")
    assert r.returncode == 0, r.stderr
    assert "6 clips exported as webdataset in 2 shards" in r.stdout
    index = [json.loads(ln) for ln in (out / INDEX).read_text().splitlines()]
    assert [e["clip"] for e in index] == [x["clip"] for x in records_of(root)]
    for e in index:
        folder = C.clip_dir(root, e["clip"])
        assert len(e["members"]) == 4 + 2 * 3 + 1
        with open(out / e["shard"], "rb") as f:
            for name, m in e["members"].items():
                f.seek(m["offset"])
                data = f.read(m["size"])
                if name == "json":
                    meta = json.loads(data)
                    assert meta["record"]["clip"] == e["clip"] and meta["flow"]["method"] == "dis"
                else:
                    assert data == (folder / name).read_bytes(), (e["clip"], name)
    with tarfile.open(out / "shard-000000.tar") as tar:  # a plain tar any WebDataset reader takes
        names = tar.getnames()
    assert names[0].startswith(sample_key(index[0]["clip"]) + ".") and len(names) == 4 * 11
    assert (out / C.ROOT_SETTINGS).read_bytes() == (root / C.ROOT_SETTINGS).read_bytes()


def test_videos_with_mmaction2_lists_and_refusals(root, tmp_path):
    out = tmp_path / "mp4"
    assert run_cli("synthact", "export", str(root), "--format", "videos", "--out", str(out)).returncode == 0
    lines = (out / C.ANNOTATIONS / "videos.txt").read_text().splitlines()
    assert len(lines) == 6 and lines[0].endswith(".mp4 0")
    cap = cv2.VideoCapture(str(out / lines[0].split()[0]))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 4
    r = run_cli("synthact", "export", str(root), "--format", "videos", "--out", str(out))  # its own: resumed
    assert r.returncode == 0 and "(6 videos kept from an earlier run)" in r.stdout, r.stderr
    r = run_cli("synthact", "export", str(root), "--format", "webdataset", "--out", str(out))
    assert r.returncode == 2 and "format=videos" in r.stderr
    (out / "export.json").unlink()
    r = run_cli("synthact", "export", str(root), "--format", "videos", "--out", str(out))
    assert r.returncode == 2 and "not empty" in r.stderr
    r = run_cli("synthact", "export", str(root), "--format", "webdataset", "--out", str(root / "inside"))
    assert r.returncode == 2 and "outside the root" in r.stderr


def _train(target, synthetic_root, out, modality):
    r = run_cli("train-tsn", "--real", "target:split1", "--real-root", str(target), "--synthetic-root",
                str(synthetic_root), "--synthetic", "12", "--modality", modality, "--out", str(out), "--epochs", "1",
                "--size", "32", "--workers", "2", "--eval-protocol", "fast", "--batch-size", "4", "--quiet")
    assert r.returncode == 0, r.stderr
    clips = [ln.split()[0].split("/")[-2:] for ln in (out / "train_list.txt").read_text().splitlines()]
    return clips, json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_training_from_shards_selects_and_learns_as_from_folders(data, tmp_path, modality):
    synth, target = data
    shards = tmp_path / "shards"
    assert run_cli("synthact", "export", str(synth), "--format", "webdataset", "--out", str(shards),
                   "--shard-size", "5").returncode == 0
    from_folders = _train(target, synth, tmp_path / "folders", modality)
    from_shards = _train(target, shards, tmp_path / "sharded", modality)
    assert from_shards[0] == from_folders[0]                       # the same clips, in the same order
    assert from_shards[1]["history"][0]["train_loss"] == from_folders[1]["history"][0]["train_loss"]
    assert from_shards[1]["top1"] == from_folders[1]["top1"]


def test_shards_refuse_the_mmaction2_engine(data, tmp_path):
    synth, target = data
    shards = tmp_path / "shards"
    assert run_cli("synthact", "export", str(synth), "--format", "webdataset", "--out", str(shards)).returncode == 0
    r = run_cli("train-tsn", "--real", "target:split1", "--real-root", str(target), "--synthetic-root", str(shards),
                "--synthetic", "4", "--engine", "mmaction2", "--out", str(tmp_path / "r"), "--quiet")
    assert r.returncode == 2 and "WebDataset shards train with --engine synthact" in r.stderr
