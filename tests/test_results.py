"""A run's metrics.json read back typed, and refused in one line naming the file where it is not one."""
from __future__ import annotations

import json

import pytest

from synthact.errors import BadData
from synthact.train.results import RunMetrics, read_metrics

GOOD = {"top1": 0.25, "mean_class": 0.2, "n": 63, "protocol": "fast", "per_class": [0.5, 0.0],
        "history": [{"epoch": 1, "train_acc": 0.4}, {"epoch": 2, "train_acc": 0.55}], "adapt_bn": {"clips": 119}}


def test_metrics_read_back_with_the_last_training_accuracy_and_adaptation(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(GOOD))
    m = read_metrics(path)
    assert (m.top1, m.mean_class, m.n, m.protocol, m.fields) == (0.25, 0.2, 63, "fast", GOOD)
    assert m.last_train_acc == 0.55 and m.adapted
    fused = RunMetrics.of({k: GOOD[k] for k in ("top1", "mean_class", "n", "protocol")}, "x")
    assert fused.last_train_acc is None and not fused.adapted


@pytest.mark.parametrize("change, says", [
    ({"top1": "0.3"}, "top1 '0.3': expected an accuracy in 0..1"),
    ({"top1": float("nan")}, "top1 nan: expected an accuracy in 0..1"),
    ({"mean_class": 1.5}, "mean_class 1.5: expected an accuracy in 0..1"),
    ({"n": -1}, "n -1, protocol 'fast': expected a clip count"),
    ({"protocol": None}, "n 63, protocol None: expected a clip count"),
])
def test_a_metrics_file_that_is_not_a_runs_result_is_one_line_naming_it(tmp_path, change, says):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(BadData) as exc:
        read_metrics(path)
    assert str(exc.value).startswith(f"{path}: {says}") and "\n" not in str(exc.value)
    path.write_text("[1, 2]")
    with pytest.raises(BadData, match="not a run's metrics"):
        read_metrics(path)
