import pytest
import torch
from torchvision.ops import stochastic_depth as tv_stochastic_depth

from cnnbook.regularization.stochastic_depth import (StochasticDepth, linear_drop_rates,
                                                     stochastic_depth)


@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("p", [0.2, 0.5, 1.0])
def test_equals_torchvision_under_the_same_seed(mode, p):
    x = torch.randn(16, 4, 5, 5)
    for seed in range(5):
        torch.manual_seed(seed)
        ours = stochastic_depth(x, p, mode)
        torch.manual_seed(seed)
        assert torch.allclose(ours, tv_stochastic_depth(x, p, mode))


def test_row_mode_drops_whole_samples_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(20000, 3)
    y = stochastic_depth(x, 0.3, "row")
    per_row = y[:, 0]
    assert per_row.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert (y == y[:, :1]).all()  # a row is dropped or kept as a whole
    assert (per_row == 0).float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert y.mean().item() == pytest.approx(1.0, abs=0.03)


def test_batch_mode_is_all_or_nothing():
    torch.manual_seed(1)
    outs = [stochastic_depth(torch.ones(8, 2), 0.5, "batch") for _ in range(20)]
    assert all(o.unique().numel() == 1 for o in outs)
    assert {o[0, 0].item() for o in outs} == {0.0, 2.0}


def test_eval_identity_errors_and_linear_rule():
    layer = StochasticDepth(0.5).eval()
    x = torch.randn(4, 3)
    assert layer(x) is x
    with pytest.raises(ValueError, match="mode"):
        stochastic_depth(x, 0.1, "col")
    with pytest.raises(ValueError, match="between 0 and 1"):
        StochasticDepth(-0.1)
    assert linear_drop_rates(4, 0.5) == pytest.approx([0.125, 0.25, 0.375, 0.5])
    with pytest.raises(ValueError):
        linear_drop_rates(0)
