import pytest
import torch
from torchvision.ops import drop_block2d

from cnnbook.regularization.dropblock import (DropBlock2d, block_mask, drop_block,
                                              dropblock_gamma, seed_mask)


@pytest.mark.parametrize("shape,p,b", [((2, 3, 16, 16), 0.1, 3), ((4, 8, 8, 8), 0.3, 5),
                                       ((1, 2, 11, 7), 0.5, 3), ((2, 2, 7, 7), 0.2, 9)])
def test_equals_torchvision_under_the_same_seed(shape, p, b):
    x = torch.randn(shape)
    torch.manual_seed(7)
    ours = drop_block(x, p, b)
    torch.manual_seed(7)
    theirs = drop_block2d(x, p, b)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_equals_torchvision_with_a_generator_and_given_seeds():
    x = torch.randn(3, 4, 12, 12, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    seeds = seed_mask(x.shape, 0.2, 3, x.dtype, generator=g)
    ours = drop_block(x, 0.2, 3, seeds=seeds)
    g.manual_seed(3)
    again = drop_block(x, 0.2, 3, generator=g)
    torch.manual_seed(11)
    other = drop_block(x, 0.2, 3)
    assert torch.equal(ours, again) and not torch.equal(ours, other)


def test_blocks_are_contiguous_squares():
    seeds = torch.zeros(1, 1, 6, 6)  # valid grid of an 8x8 map with b = 3
    seeds[0, 0, 2, 3] = 1
    mask = block_mask(seeds, 3)
    assert mask.shape == (1, 1, 8, 8)
    dropped = (mask[0, 0] == 0).nonzero().tolist()
    # the centre (2, 3) of the valid grid is (3, 4) of the map: rows 2-4, cols 3-5
    assert sorted(dropped) == [[r, c] for r in range(2, 5) for c in range(3, 6)]


def test_gamma_formula_and_measured_drop_rate():
    assert dropblock_gamma(0.1, 1, 8, 8) == pytest.approx(0.1)
    assert dropblock_gamma(0.1, 3, 16, 16) == pytest.approx(0.1 / 9 * 256 / 196)
    torch.manual_seed(0)
    x = torch.ones(64, 16, 16, 16)
    y = drop_block(x, 0.1, 3)
    dropped = (y == 0).float().mean().item()
    # overlapping blocks make the real rate a little smaller than asked
    assert 0.07 < dropped < 0.1
    assert y.sum().item() == pytest.approx(x.sum().item(), rel=1e-4)  # rescaled


def test_identity_in_eval_and_at_zero_and_errors():
    x = torch.randn(2, 3, 8, 8)
    layer = DropBlock2d(0.5, 3).eval()
    assert layer(x) is x and drop_block(x, 0.0, 3) is x
    with pytest.raises(ValueError, match="odd"):
        drop_block(x, 0.1, 4)
    with pytest.raises(ValueError, match="between 0 and 1"):
        drop_block(x, 1.5, 3)
    with pytest.raises(ValueError, match="dimensions"):
        drop_block(torch.randn(3, 8, 8), 0.1, 3)
    assert "block_size=3" in repr(layer)


def test_block_larger_than_the_map_is_clipped():
    x = torch.randn(1, 1, 5, 5)
    torch.manual_seed(1)
    ours = drop_block(x, 0.4, 7)
    torch.manual_seed(1)
    assert torch.allclose(ours, drop_block2d(x, 0.4, 7))
