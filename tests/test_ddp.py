"""train-tsn under real torchrun (gloo, CPU, 2 processes) against the single-process run.

Tolerance: DDP on 2 ranks computes the same global-batch losses, BatchNorm statistics and
dropout masks as one process (see synthact.train.distributed), so the only differences are float
summation order (gradient all-reduce, BatchNorm sums over ranks, convolutions on half batches):
per-epoch training losses agree within 1e-3 absolute (measured: 4e-5 after 3 epochs), accuracies
and predictions exactly, softmax scores within 1e-3.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from synthact.errors import BadConfig, MissingDependency
from synthact.train.distributed import RankBatches, World, share
from synthact.train.loop import TrainConfig, check, check_world

from .conftest import BIN, run_cli

pytestmark = pytest.mark.slow   # trains under torchrun: not in `make test-fast`

LOSS_TOL = 1e-3
EPOCHS = 3


def _args(data, *extra: str) -> list[str]:
    synth, target = data
    # mobilenet_v3_small from scratch: every BatchNorm trains (no partial BN), dropout 0.8; 18 clips
    # in global batches of 6 (3 per rank); the 25 x 10 protocol at the end, split over the ranks
    return ["--real", "target:split1", "--real-root", str(target), "--synthetic-root", str(synth), "--synthetic", "6",
            "--backbone", "mobilenet_v3_small", "--size", "32", "--epochs", str(EPOCHS), "--batch-size", "6",
            "--workers", "0", "--eval-protocol", "tsn", "--lr", "0.01", "--quiet", *extra]


def _torchrun(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", str(BIN / "train-tsn"),
                           *args], capture_output=True, text=True, timeout=timeout)


def _why(r: subprocess.CompletedProcess) -> str:
    """Every rank's traceback (the start of each) and stderr's tail: the rank that failed first is
    usually not the one whose error ends stderr (the others die waiting on it), and its traceback
    can sit anywhere among the others' output. A rank that exits on synthact's one-line error leaves
    no traceback: those lines come first."""
    errors = "".join(line + "\n" for line in r.stderr.splitlines() if re.match(r"(\[rank\d+\]: )?error: ", line))
    starts = [m.start() for m in re.finditer("Traceback", r.stderr)]
    heads = "".join(r.stderr[i:i + 2000] + "\n...\n" for i in starts[:4])
    return errors + heads + r.stderr[-3000:]


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """The same tiny run as one process and as two torchrun processes."""
    base = tmp_path_factory.mktemp("ddp")
    one = run_cli("train-tsn", "--out", str(base / "one"), *_args(data))
    assert one.returncode == 0, _why(one)
    two = _torchrun("--out", str(base / "two"), *_args(data))
    assert two.returncode == 0, _why(two)
    return base / "one", base / "two", two


def _same_history(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) == EPOCHS
    assert [h["train_loss"] for h in a] == pytest.approx([h["train_loss"] for h in b], abs=LOSS_TOL)
    for key in ("epoch", "train_acc", "val_top1", "val_mean_class", "lr"):
        assert [h[key] for h in a] == pytest.approx([h[key] for h in b], abs=1e-9), key


def test_two_processes_match_one_with_the_same_global_batch(runs):
    one, two, _ = runs
    m1, m2 = _metrics(one), _metrics(two)
    _same_history(m1["history"], m2["history"])
    losses = [h["train_loss"] for h in m1["history"]]
    assert losses[-1] < losses[0], losses            # it trained: the comparison is not of constants
    for key in ("top1", "mean_class", "confusion", "n", "per_class"):
        assert m1[key] == m2[key], key
    s1, s2 = np.load(one / "scores_tsn.npy"), np.load(two / "scores_tsn.npy")
    assert s1.shape == s2.shape == (6, 3)               # every validation clip scored once, in order
    np.testing.assert_allclose(s1, s2, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(np.load(one / "labels.npy"), np.load(two / "labels.npy"))
    a = torch.load(one / "model.pt", weights_only=True)["model"]
    b = torch.load(two / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()                         # plain TSN keys: no DDP "module." prefix
    for k in a:
        torch.testing.assert_close(a[k].float(), b[k].float(), rtol=0, atol=2e-3, msg=k)


def test_rank_0_alone_writes_and_world_size_is_recorded(runs):
    one, two, proc = runs
    assert json.loads((two / "config.json").read_text())["world_size"] == 2
    assert json.loads((one / "config.json").read_text())["world_size"] == 1
    assert _metrics(two)["world_size"] == 2 and _metrics(one)["world_size"] == 1
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert len(list((two / "tb").iterdir())) == 1       # one TensorBoard writer (its file names its pid)
    assert not list(two.glob("*.tmp"))
    lock = json.loads((two / ".synthact.lock").read_text())
    assert "train-tsn" in lock["command"]
    summary = [ln for ln in proc.stdout.splitlines() if "metrics.json" in ln]
    assert len(summary) == 1, proc.stdout                # one summary line, from rank 0
    assert "global batch 6 = 3 per process" in proc.stdout and proc.stdout.count("global batch") == 1


def _descendants(pid: int) -> list[int]:
    """pid and every process below it (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def test_a_killed_ddp_run_resumes_at_another_world_size(data, runs, tmp_path):
    _, whole, _ = runs
    out = tmp_path / "cut"
    proc = subprocess.Popen([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", str(BIN / "train-tsn"),
                             "--out", str(out), *_args(data)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 240
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.time() < end:
        time.sleep(0.02)
    for pid in _descendants(proc.pid):   # the whole job, as a lost node: torchrun and both ranks
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    time.sleep(0.5)
    done = torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] + 1
    assert done < EPOCHS, "the run finished before it could be killed"
    assert not (out / "metrics.json").exists()
    again = run_cli("train-tsn", "--out", str(out), "--resume", *_args(data))   # one process now
    assert again.returncode == 0, _why(again)
    _same_history(_metrics(whole)["history"], _metrics(out)["history"])
    assert _metrics(out)["top1"] == _metrics(whole)["top1"]
    assert _metrics(out)["world_size"] == 1
    assert json.loads((out / "config.json").read_text())["world_size"] == 2   # never rewritten by --resume


def test_a_batch_that_does_not_divide_is_refused_on_every_rank(data, tmp_path):
    r = _torchrun("--out", str(tmp_path / "r"), *_args(data, "--batch-size", "5"), timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 2 and len(set(lines)) == 1, r.stderr[-3000:]   # one line per rank, no traceback of ours
    assert "--batch-size 5: under torchrun it is the global batch" in lines[0] and "multiple of 2" in lines[0]
    assert "Traceback" not in "\n".join(ln for ln in r.stderr.splitlines() if "synthact" in ln)
    assert not (tmp_path / "r" / "config.json").exists()


def _cfg(tmp_path, **kw) -> TrainConfig:
    return TrainConfig(out=str(tmp_path), real="target:split1", real_root=str(tmp_path), device="cpu", **kw)


def test_world_checks(tmp_path, monkeypatch):
    two = World(size=2, rank=1)
    with pytest.raises(BadConfig, match="--batch-size 5: under torchrun it is the global batch"):
        check_world(_cfg(tmp_path, engine="mmaction2", batch_size=5), two)
    check_world(_cfg(tmp_path, batch_size=4), two)
    with pytest.raises(BadConfig, match="--compile: applies to the synthact engine only"):
        check(_cfg(tmp_path, engine="mmaction2", compile=True))
    monkeypatch.setattr("synthact.train.loop.shutil.which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(MissingDependency, match="--compile: torch.compile's inductor backend needs a C\\+\\+ compiler"):
        check_world(_cfg(tmp_path, compile=True), World())


def test_rank_batches_share_each_global_batch():
    order = list(range(19))

    class Fixed(torch.utils.data.Sampler):
        def __iter__(self):
            return iter(order)

        def __len__(self):
            return len(order)

    parts = [list(RankBatches(Fixed(), 6, True, World(size=2, rank=r))) for r in (0, 1)]
    assert parts[0] == [[0, 1, 2], [6, 7, 8], [12, 13, 14]] and parts[1] == [[3, 4, 5], [9, 10, 11], [15, 16, 17]]
    three = [list(RankBatches(Fixed(), 19 + 5, False, World(size=3, rank=r))) for r in range(3)]
    assert [b for p in three for b in p[0]] == order     # one short batch: 7 + 6 + 6, in order
    assert [share(19, World(size=3, rank=r)) for r in range(3)] == [(0, 7), (7, 13), (13, 19)]


def test_compile_flag_trains_the_model_through_torch_compile(data, tmp_path, monkeypatch):
    """--compile hands the model to torch.compile and saves plain weights. Inductor on CPU takes
    minutes for a whole TSN on 2 cores, so the test compiles with dynamo's eager backend (the same
    graph capture, no code generation); inductor itself was run by hand (see the report/README)."""
    from synthact.train.loop import fit
    real_compile, calls = torch.compile, []

    def dynamo_eager(model, **kw):
        calls.append(type(model).__name__)
        return real_compile(model, backend="eager")

    synth, target = data
    common = dict(real="target:split1", real_root=str(target), synthetic_root=str(synth), synthetic=6,
                  backbone="mobilenet_v3_small", size=32, epochs=1, batch_size=6, workers=0, eval_protocol="fast",
                  lr=0.01, device="cpu")
    eager = fit(TrainConfig(out=str(tmp_path / "eager"), **common), progress=False)
    monkeypatch.setattr(torch, "compile", dynamo_eager)
    compiled = fit(TrainConfig(out=str(tmp_path / "compiled"), compile=True, **common), progress=False)
    assert calls == ["TSN"]
    assert json.loads((tmp_path / "compiled" / "config.json").read_text())["compile"] is True
    assert json.loads((tmp_path / "eager" / "config.json").read_text())["compile"] is False
    # the captured graph runs the same ops, dropout draws included: the same losses
    assert compiled.fields["history"][0]["train_loss"] == pytest.approx(eager.fields["history"][0]["train_loss"],
                                                               abs=1e-4)
    a = torch.load(tmp_path / "eager" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "compiled" / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()                          # no "_orig_mod." prefix from the compiled wrapper


def test_mmaction2_under_torchrun_uses_mmengines_launcher_on_the_same_lists(data, tmp_path):
    """--engine mmaction2 under torchrun: mmengine's pytorch launcher in the same process group,
    each rank's dataloader taking batch / world size, rank 0 alone writing."""
    synth, target = data
    out = tmp_path / "mm"
    r = _torchrun("--out", str(out), "--real", "target:split1", "--real-root", str(target), "--synthetic-root",
                  str(synth), "--synthetic", "6", "--backbone", "resnet18", "--size", "32", "--epochs", "2",
                  "--batch-size", "6", "--workers", "0", "--eval-protocol", "fast", "--quiet", "--engine", "mmaction2")
    assert r.returncode == 0, _why(r)
    m = _metrics(out)
    assert m["engine"] == "mmaction2" and m["world_size"] == 2 and m["n"] == 6
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    logs = [p for p in (out / "mmaction2").iterdir() if p.is_dir()]
    assert len(logs) == 1                                  # one mmengine log folder: rank 0's
    steps = [json.loads(ln) for ln in (logs[0] / "vis_data" / "scalars.json").read_text().splitlines()]
    # 18 training clips, global batch 6 = 3 per rank: 3 iterations per epoch on each rank, as one process
    assert max(s.get("iter", 0) for s in steps) == 2 * 3
    assert sorted(p.name for p in (out / "mmaction2").glob("epoch_*.pth")) == ["epoch_1.pth", "epoch_2.pth"]
