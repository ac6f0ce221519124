"""The order each training epoch reads its clips in: --synthetic-share's mix of real and synthetic."""
from __future__ import annotations

import pytest

from synthact.train.dataset import EpochSampler, ShareSampler
from synthact.train.mixing import share_problem


def _epoch(sampler: EpochSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    order = list(sampler)
    assert all(k // sampler.n == epoch for k in order)   # the dataset reads the epoch out of each index
    return [k % sampler.n for k in order]


def test_every_batch_holds_the_share_and_every_real_clip_comes_once_an_epoch():
    n_real, n_synthetic, batch = 31, 300, 16
    for share in (0.5, 0.25, 0.9):
        s = ShareSampler(n_real, n_synthetic, share, seed=4)
        per_epoch = round(n_real * share / (1 - share))
        assert s.per_epoch == per_epoch and len(s) == n_real + per_epoch
        for epoch in range(3):
            order = _epoch(s, epoch)
            assert sorted(i for i in order if i < n_real) == list(range(n_real))
            synthetic = [i for i in order if i >= n_real]
            assert len(synthetic) == per_epoch and len(set(synthetic)) == per_epoch   # none twice
            for lo in range(0, len(order) - batch + 1, batch):
                held = sum(i >= n_real for i in order[lo:lo + batch])
                assert abs(held - share * batch) <= 1, (share, epoch, lo, held)


def test_each_epoch_draws_its_synthetic_clips_afresh_and_the_order_is_seeded():
    s = ShareSampler(10, 25, 0.5, seed=1)   # 10 synthetic clips an epoch from a pool of 25
    epochs = [[i for i in _epoch(s, e) if i >= 10] for e in range(4)]
    assert all(len(set(d)) == 10 and set(d) <= set(range(10, 35)) for d in epochs)
    assert len({tuple(sorted(d)) for d in epochs}) == 4
    again = ShareSampler(10, 25, 0.5, seed=1)
    assert [_epoch(again, e) for e in range(4)] == [_epoch(s, e) for e in range(4)]
    other = ShareSampler(10, 25, 0.5, seed=2)
    assert _epoch(other, 0) != _epoch(s, 0) and _epoch(s, 0) != _epoch(s, 1)


def test_a_share_that_needs_a_clip_twice_an_epoch_or_none_at_all_is_refused():
    assert share_problem(0.75, 10, 30) is None and share_problem(0.75, 10, 29) is not None   # 30 an epoch
    assert "more than the 6 selected" in share_problem(0.75, 10, 6)
    assert "more than the 24 selected" in share_problem(1 - 1e-16, 12, 24)      # no endless epochs
    assert "no synthetic clip" in share_problem(0.02, 12, 24)
    assert "0 real and 24 synthetic" in share_problem(0.5, 0, 24)
    with pytest.raises(ValueError):
        ShareSampler(10, 6, 0.75, seed=1)
