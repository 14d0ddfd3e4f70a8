"""The ring all-reduce schedule (pure functions) against a plain sum."""
from __future__ import annotations

import math

import pytest
import torch

from cnnbook.train import ring


@pytest.mark.parametrize("p", [2, 3, 4, 7])
def test_simulated_ring_sums_every_tensor(p):
    g = torch.Generator().manual_seed(p)
    tensors = [torch.randn(3, 5, generator=g, dtype=torch.float64) for _ in range(p)]
    for out in ring.simulate(tensors):
        assert torch.allclose(out, sum(tensors), atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(tensors, [t.clone() for t in tensors]))


@pytest.mark.parametrize("p", [2, 3, 5])
def test_schedule_shape(p):
    full = frozenset(range(p))
    assert ring.num_steps(p) == 2 * (p - 1)
    start = ring.contributions(p, 0)
    assert all(start[r][c] == {r} for r in range(p) for c in range(p))
    middle = ring.contributions(p, p - 1)   # after reduce-scatter: rank r owns chunk r + 1
    for r in range(p):
        assert middle[r][(r + 1) % p] == full
        assert sum(c == full for c in middle[r]) == 1
    assert all(c == full for row in ring.contributions(p, ring.num_steps(p)) for c in row)
    for step in range(ring.num_steps(p)):
        moves = ring.transfers(p, step)
        assert sorted(m[0] for m in moves) == list(range(p))   # every rank sends once per step
        assert all(dst == (src + 1) % p for src, dst, _, _ in moves)


def test_traffic_and_bad_input():
    t = ring.traffic(4, 100.0)
    assert t["ring_per_rank"] == pytest.approx(150.0) and t["central_rank"] == pytest.approx(600.0)
    for bad in (1, 0, 2.5, True, "2"):
        with pytest.raises(ValueError, match="ranks"):
            ring.num_steps(bad)
    with pytest.raises(ValueError, match="step"):
        ring.transfers(3, 4)
    with pytest.raises(ValueError, match="after"):
        ring.contributions(3, 5)
    for bad in (math.nan, math.inf, -1.0):
        with pytest.raises(ValueError, match="megabytes"):
            ring.traffic(3, bad)
