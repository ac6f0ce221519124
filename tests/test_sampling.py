"""The order each training epoch reads its clips in: --synthetic-share's mix of real and synthetic."""
from __future__ import annotations

from synthact.train.dataset import EpochSampler, ShareSampler


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
    more = ShareSampler(10, 6, 0.75, seed=1)   # 30 an epoch from a pool of 6: each 5 times
    drawn = [i for i in _epoch(more, 0) if i >= 10]
    assert sorted(drawn) == sorted(list(range(10, 16)) * 5)
